"""A trained router on disk: one directory, checked on load.

Files:

* ``config.json``   — format version, the training config (:class:`TrainConfig`), the network's shape
  (input dim, pool size, variant, whether it needs token features) and the encoder (name, dim);
* ``pool.json``     — the models in output order, their prices (mean training cost per prompt, USD),
  the cost normalisation statistics and ``c_ref``;
* ``weights.safetensors`` — the network's state dict;
* ``manifest.json`` — sha256 of every other file.

An uncertainty-aware router (:class:`router.model.ensemble.EnsemblePredictor`) is a directory of
its own format: ``ensemble.json`` (format, the members' folders, the decision rule with its chosen
τ/κ, the training priors, the training-side validation scores the choice was made on, the encoder
and pool), ``members/00``, ``members/01``, ... each a complete single-network artifact as above
(own manifest), and a ``manifest.json`` with the sha256 of ``ensemble.json`` and of every
member's ``manifest.json`` (which in turn covers that member's files). A single-network artifact
loads exactly as before.

A router with a fallback (:class:`router.model.gated.GatedPredictor`, ``TrainConfig.fallback``) is
a directory too: ``gate.json`` (format, the full training config, the chosen α and gate (d0, s),
the training priors, the validation scores, encoder and pool), ``neighbours.safetensors`` (the
training prompts' embeddings, float32, and their observed quality: the neighbour search needs them
at predict time), ``network/`` (a complete single-network artifact) and a ``manifest.json`` with
the sha256 of ``gate.json``, ``neighbours.safetensors`` and ``network/manifest.json``.

:func:`load_artifact` raises :class:`ArtifactError` with a one-line reason on a missing or corrupt
file, a checksum mismatch, another encoder, another pool, or an embedding dimension that does not
match the weights or the caller's encoder.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from router.atomic import commit_dir, discard_dir, staging_dir
from router.model.config import TrainConfig
from router.model.estimator import CostScaler, CrossAttentionPredictor

FORMAT = "llm-router/cross-attention"
FORMAT_VERSION = 1
CONFIG_FILE, POOL_FILE, WEIGHTS_FILE, MANIFEST_FILE = "config.json", "pool.json", "weights.safetensors", "manifest.json"
CONTENT_FILES = (CONFIG_FILE, POOL_FILE, WEIGHTS_FILE)
ENSEMBLE_FORMAT = "llm-router/cross-attention-ensemble"
ENSEMBLE_FORMAT_VERSION = 1
ENSEMBLE_FILE, MEMBERS_DIR = "ensemble.json", "members"
GATED_FORMAT = "llm-router/cross-attention-gated"
GATED_FORMAT_VERSION = 1
GATE_FILE, NEIGHBOURS_FILE, NETWORK_DIR = "gate.json", "neighbours.safetensors", "network"


class ArtifactError(ValueError):
    """The artifact directory cannot be used: the message says why."""


@dataclass
class RouterArtifact:
    predictor: CrossAttentionPredictor  # or an EnsemblePredictor (router.model.ensemble)
    models: tuple[str, ...]
    encoder_name: str
    encoder_dim: int
    c_ref: float
    prices: dict[str, float]
    config: TrainConfig
    path: Path
    needs_tokens: bool = False
    extra: dict = field(default_factory=dict)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_artifact(
    predictor,
    out_dir,
    encoder_name: str,
    encoder_dim: int,
    prices: dict[str, float] | None = None,
    extra: dict | None = None,
) -> Path:
    """Write ``predictor`` (a CrossAttentionPredictor or an EnsemblePredictor) to ``out_dir``
    atomically (an earlier artifact there is replaced as a whole).

    ``prices`` defaults to the predictor's mean training cost per prompt per model."""
    from router.model.ensemble import EnsemblePredictor
    from router.model.gated import GatedPredictor

    predictor._check_fitted()
    final = Path(out_dir)
    # Built in a new folder next to out_dir and renamed into place when complete (router.atomic):
    # a killed save leaves the old artifact or none, never one that load_artifact accepts half-written.
    out = staging_dir(final)
    try:
        if isinstance(predictor, EnsemblePredictor):
            _write_ensemble(predictor, out, encoder_name, encoder_dim, prices, extra)
        elif isinstance(predictor, GatedPredictor):
            _write_gated(predictor, out, encoder_name, encoder_dim, prices, extra)
        else:
            _write_single(predictor, out, encoder_name, encoder_dim, prices, extra)
    except BaseException:
        discard_dir(out)
        raise
    return commit_dir(out, final)


def _write_single(predictor: CrossAttentionPredictor, out: Path, encoder_name: str, encoder_dim: int,
                  prices: dict[str, float] | None, extra: dict | None) -> None:  # fmt: skip
    """The four files of a single-network artifact into the (existing, empty) folder ``out``."""
    from safetensors.torch import save_file

    predictor._check_fitted()
    net = predictor.network_
    if int(encoder_dim) != net.input_dim:
        raise ArtifactError(f"encoder_dim {encoder_dim} does not match the network's input dimension {net.input_dim}")
    prices = dict(predictor.prices_ if prices is None else prices)
    missing = [m for m in predictor.models if m not in prices]
    if missing:
        raise ArtifactError(f"prices missing for model(s) {missing}")
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "train_config": predictor.config.model_dump(),
        "network": {
            "input_dim": net.input_dim,
            "n_models": net.n_models,
            "hidden_dim": net.hidden_dim,
            "variant": net.variant,
            "needs_tokens": net.needs_tokens,
            "model_repr": net.model_repr,
        },
        "encoder": {"name": str(encoder_name), "dim": int(encoder_dim)},
        "training": {"best_epoch": predictor.best_epoch_, "train_seconds": predictor.train_seconds_},
        "extra": extra or {},
    }
    pool = {
        "models": list(predictor.models),
        "prices": {m: float(prices[m]) for m in predictor.models},
        "c_ref": float(predictor.c_ref_),
        "cost_normalisation": predictor.scaler_.to_dict(),
    }
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    (out / POOL_FILE).write_text(json.dumps(pool, indent=2) + "\n")
    save_file({k: v.detach().contiguous() for k, v in net.state_dict().items()}, str(out / WEIGHTS_FILE))
    _write_manifest(out, FORMAT, CONTENT_FILES)


def _member_dir(k: int) -> str:
    return f"{MEMBERS_DIR}/{k:02d}"


def _write_ensemble(predictor, out: Path, encoder_name: str, encoder_dim: int, prices, extra) -> None:
    members = []
    for k, member in enumerate(predictor.members_):
        folder = out / _member_dir(k)
        folder.mkdir(parents=True)
        _write_single(member, folder, encoder_name, encoder_dim, prices, None)
        members.append(_member_dir(k))
    ensemble = {
        "format": ENSEMBLE_FORMAT,
        "format_version": ENSEMBLE_FORMAT_VERSION,
        "members": members,
        "models": list(predictor.models),
        "encoder": {"name": str(encoder_name), "dim": int(encoder_dim)},
        "rule": predictor.rule_state(),
        "extra": extra or {},
    }
    (out / ENSEMBLE_FILE).write_text(json.dumps(ensemble, indent=2, allow_nan=False) + "\n")
    covered = [ENSEMBLE_FILE] + [f"{m}/{MANIFEST_FILE}" for m in members]
    _write_manifest(out, ENSEMBLE_FORMAT, covered)


def _write_gated(predictor, out: Path, encoder_name: str, encoder_dim: int, prices, extra) -> None:
    from safetensors.numpy import save_file

    (out / NETWORK_DIR).mkdir()
    _write_single(predictor.network_, out / NETWORK_DIR, encoder_name, encoder_dim, prices, None)
    index = predictor.neighbours_
    save_file({"embeddings": index.X, "quality": index.quality}, str(out / NEIGHBOURS_FILE))
    gate = {
        "format": GATED_FORMAT,
        "format_version": GATED_FORMAT_VERSION,
        "network": NETWORK_DIR,
        "models": list(predictor.models),
        "encoder": {"name": str(encoder_name), "dim": int(encoder_dim)},
        "gate": predictor.gate_state(),
        "extra": extra or {},
    }
    (out / GATE_FILE).write_text(json.dumps(gate, indent=2, allow_nan=False) + "\n")
    covered = [GATE_FILE, NEIGHBOURS_FILE, f"{NETWORK_DIR}/{MANIFEST_FILE}"]
    _write_manifest(out, GATED_FORMAT, covered)


def _write_manifest(out: Path, fmt: str, covered) -> None:
    """The manifest: the artifact's format and the sha256 of each covered file (read back by ``_manifest_sums``)."""
    manifest = {"format": fmt, "sha256": {name: _sha256(out / name) for name in covered}}
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path}: unreadable or corrupt JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ArtifactError(f"{path}: expected a JSON object")
    return data


def load_artifact(
    path,
    expect_encoder: str | None = None,
    expect_models: Sequence[str] | None = None,
    expect_dim: int | None = None,
) -> RouterArtifact:
    """Load and verify an artifact directory written by :func:`save_artifact`.

    ``expect_encoder``/``expect_models``/``expect_dim``: what the caller will feed it (the encoder's
    name, the pool in the caller's order, the embedding size); any difference is an ArtifactError.
    """
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from router.model.cross_attention import CrossAttentionRouter

    root = Path(path)
    if not root.is_dir():
        raise ArtifactError(f"{root}: no such artifact directory")
    if (root / ENSEMBLE_FILE).exists():
        return _load_ensemble(root, expect_encoder, expect_models, expect_dim)
    if (root / GATE_FILE).exists():
        return _load_gated(root, expect_encoder, expect_models, expect_dim)
    for name in (MANIFEST_FILE,) + CONTENT_FILES:
        if not (root / name).is_file():
            raise ArtifactError(f"{root}: missing file {name} (incomplete or not a router artifact)")
    _check_sums(root, _manifest_sums(root, FORMAT), CONTENT_FILES)

    config = _read_json(root / CONFIG_FILE)
    pool = _read_json(root / POOL_FILE)
    if config.get("format") != FORMAT or config.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{root / CONFIG_FILE}: format {config.get('format')!r} v{config.get('format_version')!r}, "
            f"this version reads {FORMAT!r} v{FORMAT_VERSION}"
        )
    try:
        enc_name, enc_dim = str(config["encoder"]["name"]), int(config["encoder"]["dim"])
        net_cfg = config["network"]
        models = tuple(str(m) for m in pool["models"])
        prices = {m: float(pool["prices"][m]) for m in models}
        scaler = CostScaler(**pool["cost_normalisation"])
        c_ref = float(pool["c_ref"])
        train_config = TrainConfig(**config["train_config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{root}: config.json/pool.json incomplete or invalid ({type(exc).__name__}: {exc})") from None

    if expect_encoder is not None and str(expect_encoder) != enc_name:
        raise ArtifactError(f"{root}: trained with encoder {enc_name!r}, but the caller uses {expect_encoder!r}")
    if expect_dim is not None and int(expect_dim) != enc_dim:
        raise ArtifactError(f"{root}: expects {enc_dim}-d embeddings, but the caller's encoder gives {expect_dim}-d")
    if expect_models is not None and tuple(expect_models) != models:
        if set(expect_models) == set(models):
            raise ArtifactError(f"{root}: same models in another order: artifact {list(models)}, caller {list(expect_models)}")
        raise ArtifactError(
            f"{root}: other pool: artifact has {sorted(models)}, caller has {sorted(expect_models)} "
            f"(missing {sorted(set(expect_models) - set(models))}, extra {sorted(set(models) - set(expect_models))})"
        )
    if int(net_cfg.get("input_dim", -1)) != enc_dim:
        raise ArtifactError(f"{root}: network input dim {net_cfg.get('input_dim')} != encoder dim {enc_dim}")
    if int(net_cfg.get("n_models", -1)) != len(models) or len(scaler.mu) != len(models) or len(scaler.sigma) != len(models):
        raise ArtifactError(f"{root}: the pool ({len(models)} models) does not match the network or the cost statistics")

    try:
        state = load_file(str(root / WEIGHTS_FILE))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ArtifactError(f"{root / WEIGHTS_FILE}: corrupt weights ({exc})") from None
    emb = state.get("model_embedding")
    if emb is None or tuple(emb.shape) != (len(models), enc_dim):
        shape = None if emb is None else tuple(emb.shape)
        raise ArtifactError(f"{root / WEIGHTS_FILE}: model embeddings have shape {shape}, expected ({len(models)}, {enc_dim})")
    model_repr = str(net_cfg.get("model_repr", "name"))  # artifacts before profiles are 'name'
    profile = {}
    if model_repr != "name":
        shapes = {k: tuple(state[k].shape) if k in state else None for k in ("model_profile", "profile_centroids", "profile_stats")}
        if None in shapes.values() or shapes["profile_stats"] != (3,):
            raise ArtifactError(f"{root / WEIGHTS_FILE}: model_repr {model_repr!r} but the profile tensors are missing or malformed ({shapes})")
        profile = {k: torch.zeros(shape) for k, shape in shapes.items()}  # shapes only: load_state_dict fills them
    try:
        net = CrossAttentionRouter(
            enc_dim, len(models), hidden_dim=int(net_cfg["hidden_dim"]), dropout=train_config.dropout, variant=str(net_cfg["variant"]),
            product=train_config.product, model_repr=model_repr, **profile,
        )
    except ValueError as exc:
        raise ArtifactError(f"{root / CONFIG_FILE}: the network cannot be built ({exc})") from None
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ArtifactError(f"{root / WEIGHTS_FILE}: weights do not fit the configured network ({first})") from None
    net.eval()
    with torch.no_grad():
        if not all(torch.isfinite(p).all() for p in net.parameters()):
            raise ArtifactError(f"{root / WEIGHTS_FILE}: weights contain NaN or infinite values")

    training = config.get("training") or {}
    pred = CrossAttentionPredictor.from_fitted(
        train_config, net, models, scaler, c_ref, prices,
        best_epoch=training.get("best_epoch"), train_seconds=float(training.get("train_seconds") or 0.0),
    )  # fmt: skip
    return RouterArtifact(
        predictor=pred,
        models=models,
        encoder_name=enc_name,
        encoder_dim=enc_dim,
        c_ref=c_ref,
        prices=prices,
        config=train_config,
        path=root,
        needs_tokens=bool(net_cfg.get("needs_tokens", False)),
        extra=dict(config.get("extra") or {}),
    )


def _manifest_sums(root: Path, fmt: str) -> dict:
    """The checksums of a ``fmt`` manifest in ``root``."""
    manifest = _read_json(root / MANIFEST_FILE)
    sums = manifest.get("sha256")
    if manifest.get("format") != fmt or not isinstance(sums, dict):
        raise ArtifactError(f"{root / MANIFEST_FILE}: not a {fmt} manifest")
    return sums


def _check_sums(root: Path, sums: dict, names) -> None:
    """Every file in ``names`` has a checksum in ``sums`` and still matches it."""
    for name in names:
        if name not in sums:
            raise ArtifactError(f"{root / MANIFEST_FILE}: no checksum for {name}")
        if _sha256(root / name) != sums[name]:
            raise ArtifactError(f"{root / name}: checksum mismatch (file changed or corrupt since it was written)")


def _load_ensemble(root: Path, expect_encoder, expect_models, expect_dim) -> RouterArtifact:
    """An ensemble directory: its manifest, then every member as a single-network artifact."""
    from router.model.ensemble import EnsemblePredictor

    if not (root / MANIFEST_FILE).is_file():
        raise ArtifactError(f"{root}: missing file {MANIFEST_FILE} (incomplete or not a router artifact)")
    sums = _manifest_sums(root, ENSEMBLE_FORMAT)
    _check_sums(root, sums, (ENSEMBLE_FILE,))
    ens = _read_json(root / ENSEMBLE_FILE)
    if ens.get("format") != ENSEMBLE_FORMAT or ens.get("format_version") != ENSEMBLE_FORMAT_VERSION:
        raise ArtifactError(
            f"{root / ENSEMBLE_FILE}: format {ens.get('format')!r} v{ens.get('format_version')!r}, "
            f"this version reads {ENSEMBLE_FORMAT!r} v{ENSEMBLE_FORMAT_VERSION}"
        )
    folders = ens.get("members")
    if not isinstance(folders, list) or not folders or not all(isinstance(f, str) for f in folders):
        raise ArtifactError(f"{root / ENSEMBLE_FILE}: 'members' must be a non-empty list of folders")
    members = []
    for folder in folders:
        if Path(folder).is_absolute() or ".." in Path(folder).parts:
            raise ArtifactError(f"{root / ENSEMBLE_FILE}: member folder {folder!r} is outside the artifact")
        key = f"{folder}/{MANIFEST_FILE}"
        if key not in sums:
            raise ArtifactError(f"{root / MANIFEST_FILE}: no checksum for {key}")
        if not (root / key).is_file():
            raise ArtifactError(f"{root}: missing file {key} (incomplete artifact)")
        if _sha256(root / key) != sums[key]:
            raise ArtifactError(f"{root / key}: checksum mismatch (file changed or corrupt since it was written)")
        members.append(load_artifact(root / folder, expect_encoder, expect_models, expect_dim))
    first = members[0]
    for folder, m in zip(folders, members):
        if (m.encoder_name, m.encoder_dim, m.models) != (first.encoder_name, first.encoder_dim, first.models):
            raise ArtifactError(f"{root / folder}: another encoder or pool than {folders[0]}")
    if list(first.models) != list(ens.get("models") or []):
        raise ArtifactError(f"{root / ENSEMBLE_FILE}: pool {ens.get('models')} differs from the members' {list(first.models)}")
    try:
        pred = EnsemblePredictor.from_rule_state(ens["rule"], [m.predictor for m in members])
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{root / ENSEMBLE_FILE}: decision rule incomplete or invalid ({type(exc).__name__}: {exc})") from None
    return _wrapping(first, pred, root, first.config, ens.get("extra"))


def _load_gated(root: Path, expect_encoder, expect_models, expect_dim) -> RouterArtifact:
    """A fallback directory: its manifest, the neighbour index, then the network as a single artifact."""
    import numpy as np
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    from router.gate import NeighbourIndex
    from router.model.gated import GatedPredictor

    for name in (MANIFEST_FILE, GATE_FILE, NEIGHBOURS_FILE, f"{NETWORK_DIR}/{MANIFEST_FILE}"):
        if not (root / name).is_file():
            raise ArtifactError(f"{root}: missing file {name} (incomplete or not a router artifact)")
    _check_sums(root, _manifest_sums(root, GATED_FORMAT), (GATE_FILE, NEIGHBOURS_FILE, f"{NETWORK_DIR}/{MANIFEST_FILE}"))
    gate = _read_json(root / GATE_FILE)
    if gate.get("format") != GATED_FORMAT or gate.get("format_version") != GATED_FORMAT_VERSION:
        raise ArtifactError(
            f"{root / GATE_FILE}: format {gate.get('format')!r} v{gate.get('format_version')!r}, "
            f"this version reads {GATED_FORMAT!r} v{GATED_FORMAT_VERSION}"
        )
    net = load_artifact(root / NETWORK_DIR, expect_encoder, expect_models, expect_dim)
    if list(net.models) != list(gate.get("models") or []):
        raise ArtifactError(f"{root / GATE_FILE}: pool {gate.get('models')} differs from the network's {list(net.models)}")
    try:
        arrays = load_file(str(root / NEIGHBOURS_FILE))
        X, quality = arrays["embeddings"], arrays["quality"]
    except (SafetensorError, OSError, ValueError, KeyError) as exc:
        raise ArtifactError(f"{root / NEIGHBOURS_FILE}: corrupt neighbour index ({type(exc).__name__}: {exc})") from None
    if X.ndim != 2 or X.shape[1] != net.encoder_dim or quality.shape != (len(X), len(net.models)):
        raise ArtifactError(f"{root / NEIGHBOURS_FILE}: embeddings {X.shape} / quality {quality.shape} do not fit "
                            f"{net.encoder_dim}-d embeddings and {len(net.models)} models")  # fmt: skip
    if not (np.isfinite(X).all() and np.isfinite(quality).all()):
        raise ArtifactError(f"{root / NEIGHBOURS_FILE}: NaN or infinite values")
    try:
        state = gate["gate"]
        cfg = TrainConfig(**state["train_config"])
        index = NeighbourIndex(X, quality, cfg.fallback_k, cfg.fallback_blend_k)
        pred = GatedPredictor.from_gate_state(state, net.predictor, index)
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{root / GATE_FILE}: gate incomplete or invalid ({type(exc).__name__}: {exc})") from None
    return _wrapping(net, pred, root, pred.config, gate.get("extra"))


def _wrapping(inner: RouterArtifact, predictor, root: Path, config, extra) -> RouterArtifact:
    """The artifact of a predictor wrapped around ``inner``'s network(s) (ensemble, gated): the
    inner artifact's facts, the wrapper's predictor, folder and extra fields."""
    return RouterArtifact(predictor=predictor, models=inner.models, encoder_name=inner.encoder_name, encoder_dim=inner.encoder_dim,
                          c_ref=inner.c_ref, prices=inner.prices, config=config, path=root, needs_tokens=inner.needs_tokens,
                          extra=dict(extra or {}))  # fmt: skip

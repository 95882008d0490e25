"""``Router``: the one way from a prompt to a decision.

    from router import Router
    r = Router.load("artifacts/router")
    r.route("What is 2+2?", lam=1.0)          # -> Decision (model, quality/cost/reward per model)
    r.predict(["a prompt", "another"])         # -> Prediction (N x M quality and USD cost)

A ``Router`` is a fitted cross-attention predictor plus the name of the encoder it was trained on.
Every stage of "artifact -> encoder -> token features (if the variant needs them) -> predict ->
decide" is a method here, and every caller goes through them: the Serve app (its Embedder calls
:meth:`embed`, its Scorer :meth:`predict_embedded`, its Dispatcher :meth:`decide`, each in its own
replica), ``router route-logs``, ``router tune --calibrate``, ``router eval``'s cross-attention rows
and the experiments.

Prompts may be given wherever a prompt is expected as a string, a chat ``messages`` list (flattened
by :mod:`router.messages`, the rule the service uses), or a list of either.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from router.decision import Decision, decide_batch
from router.messages import prompt_text
from router.prediction import Prediction
from router.rewards import Reward, decide


@dataclass(frozen=True)
class Features:
    """What the network reads for a batch of prompts."""

    X: np.ndarray  # (N, D) sentence embeddings
    tokens: np.ndarray | None = None  # (N, T, D) token features (model_queries only)
    mask: np.ndarray | None = None  # (N, T) True = real token segment


def as_prompts(prompts: Any) -> tuple[list[str], bool]:
    """(texts, single): one prompt (a string or one messages list) or a list of them."""
    if isinstance(prompts, str):
        return [prompt_text(prompts)], True
    if isinstance(prompts, (list, tuple)) and prompts and all(isinstance(p, dict) for p in prompts):
        return [prompt_text(list(prompts))], True  # one chat
    if not isinstance(prompts, (list, tuple)):
        raise TypeError(f"prompts must be a string, a messages list or a list of them, got {type(prompts).__name__}")
    if not prompts:
        raise ValueError("prompts is an empty list")
    return [prompt_text(p) for p in prompts], False


def build_encoder(artifact_encoder: str, encoder: Any = None, device: str | None = None):
    """The encoder for an artifact trained on ``artifact_encoder``: built from that name, or the
    caller's ``encoder`` (a name or an object with ``name``/``dim``/``embed`` or ``encode``), which
    must be that same encoder. The one place an encoder is matched against an artifact."""
    from router.embeddings import encoder_from_name
    from router.model.artifact import ArtifactError

    if encoder is None or isinstance(encoder, str):
        spec = encoder or artifact_encoder
        try:
            encoder = encoder_from_name(spec, device=device)
        except ValueError as exc:
            raise ArtifactError(f"bad encoder name {spec!r}: {exc}") from None
    if encoder.name != artifact_encoder:
        raise ArtifactError(
            f"the router was trained on encoder {artifact_encoder!r} but the caller's encoder is {encoder.name!r}; "
            "use that encoder (or leave it out: the router builds it from its artifact)"
        )
    return encoder


class Router:
    """A fitted cross-attention router and its encoder (built on first use, then kept)."""

    def __init__(self, predictor, encoder_name: str, encoder: Any = None, path: str | Path | None = None,
                 extra: dict | None = None, device: str | None = None, cache_dir: str | Path | None = None,
                 use_cache: bool = False):  # fmt: skip
        self.predictor = predictor
        self.encoder_name = str(encoder_name)
        self.path = None if path is None else Path(path)
        self.extra = dict(extra or {})
        self.device, self.cache_dir, self.use_cache = device, cache_dir, use_cache
        self._encoder = None if encoder is None else build_encoder(self.encoder_name, encoder, device)
        self._featurizer = None

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def load(cls, path, encoder: Any = None, device: str | None = None, cache_dir=None, use_cache: bool = False) -> "Router":
        """Open an artifact (checksums and shapes checked, see ``router.model.artifact``).

        ``encoder``: leave out to use the one the artifact names, or pass a name / encoder object
        (checked to be that encoder). ``use_cache``: look embeddings up in (and add them to) the
        on-disk cache, as training and batch routing do; off by default, so routing live traffic
        stores nothing on disk."""
        from router.model.artifact import load_artifact

        art = load_artifact(path)
        return cls(art.predictor, art.encoder_name, encoder, art.path, art.extra, device, cache_dir, use_cache)

    def use_encoder(self, encoder: Any = None, device: str | None = None) -> "Router":
        """Build (or take, checked) the encoder now, on ``device``; returns ``self``."""
        self.device = device if device is not None else self.device
        self._encoder = build_encoder(self.encoder_name, encoder, self.device)
        return self

    @classmethod
    def untrained(cls, config=None, encoder: Any = None, ensemble=None, **kwargs) -> "Router":
        """A router to :meth:`fit` (``encoder``: a name or an encoder object; default all-MiniLM-L6-v2).

        ``ensemble``: an :class:`router.uncertainty.UncertaintyConfig` (or a dict of its fields, or
        the number of members K) for the uncertainty-aware router: K networks of ``config`` with the
        shrinkage chosen on training-side folds (:mod:`router.model.ensemble`)."""
        from router.embeddings import DEFAULT_ENCODER, encoder_from_name
        from router.model.estimator import CrossAttentionPredictor

        if encoder is None or isinstance(encoder, str):
            encoder = encoder_from_name(encoder or DEFAULT_ENCODER, device=kwargs.get("device"))
        from router.model.config import as_train_config

        config = as_train_config(config)
        if ensemble is not None:
            # An ensemble's members are networks: the default fallback applies to a single network
            # only; one asked for explicitly cannot be combined with an ensemble.
            if "fallback" not in config.model_fields_set:
                config = config.model_copy(update={"fallback": "off"})
            if config.fallback != "off":
                raise ValueError(f"fallback {config.fallback!r} and an ensemble cannot be combined (set fallback 'off' for an ensemble)")
            from router.model.ensemble import EnsemblePredictor

            predictor = EnsemblePredictor(config, {"members": ensemble} if isinstance(ensemble, int) else ensemble)
        elif config.fallback != "off":
            from router.model.gated import GatedPredictor

            predictor = GatedPredictor(config)  # the network behind the distance gate / KNN blend (router.gate)
        else:
            predictor = CrossAttentionPredictor(config)
        return cls(predictor, encoder.name, encoder, **kwargs)

    @classmethod
    def train(cls, table, config=None, encoder: Any = None, progress: bool = False, on_epoch=None,
              cache_dir=None, use_cache: bool = True, ensemble=None) -> "Router":  # fmt: skip
        """Train on a :class:`router.data.RoutingTable` (every row of it: split first if you need a
        test set). Embeddings go through the on-disk cache unless ``use_cache=False``. ``ensemble``:
        see :meth:`untrained` (its leave-one-domain-out folds use the table's domains)."""
        from router.data.splits import domains

        router = cls.untrained(config, encoder, ensemble=ensemble, cache_dir=cache_dir, use_cache=use_cache)
        X = router.embed(table.prompts)
        return router.fit(X, table.quality, table.cost, table.models, prompts=table.prompts, progress=progress, on_epoch=on_epoch,
                          domains=domains(table.eval_names))  # fmt: skip

    @property
    def is_ensemble(self) -> bool:
        return hasattr(self.predictor, "members_")

    def fit(self, X, quality, cost, models: Sequence[str], prompts: Sequence[str] | None = None, model_init=None,
            progress: bool = False, on_epoch=None, domains=None) -> "Router":  # fmt: skip
        """Fit the predictor on embeddings ``X`` of ``prompts`` (the prompts are needed only by the
        ``model_queries`` variant). The model embeddings start from the encoder's embeddings of the
        model names when the config says so (``model_init`` gives them precomputed). ``domains``:
        the rows' domains, read by an ensemble or a fallback (leave-one-domain-out folds), ignored otherwise."""
        cfg = self.predictor.config
        if model_init is None and cfg.init_from_names:
            model_init = self.embed(list(models))
            if model_init.shape[1:] != np.shape(X)[1:]:
                model_init = None
        f = self.features(prompts, X=X)
        # An ensemble or a fallback chooses its knobs on leave-one-domain-out folds of these rows.
        extra = {"domains": domains} if getattr(self.predictor, "wants_domains", False) else {}
        self.predictor.fit(f.X, quality, cost, models, tokens=f.tokens, mask=f.mask, model_init=model_init,
                           on_epoch=on_epoch, progress=progress, **extra)  # fmt: skip
        return self

    def save(self, path, extra: dict | None = None) -> Path:
        from router.model.artifact import save_artifact

        out = save_artifact(self.predictor, path, self.encoder_name, self.predictor.input_dim, extra={**self.extra, **(extra or {})})
        self.path = out
        return out

    # -- facts ----------------------------------------------------------------------------------
    @property
    def models(self) -> tuple[str, ...]:
        return tuple(self.predictor.models)

    @property
    def c_ref(self) -> float:
        return float(self.predictor.c_ref_)

    @property
    def config(self):
        return self.predictor.config

    @property
    def needs_tokens(self) -> bool:
        return bool(self.predictor.needs_tokens)

    @property
    def encoder(self):
        """The encoder (built on first use; behind the on-disk cache when ``use_cache``)."""
        if self._encoder is None:
            self._encoder = build_encoder(self.encoder_name, None, self.device)
        if self.use_cache and not hasattr(self._encoder, "cache"):
            from router.embeddings import CachedEncoder

            self._encoder = CachedEncoder(self._encoder, cache_dir=self.cache_dir)
        return self._encoder

    @property
    def max_tokens(self) -> int | None:
        """The encoder's input limit in tokens (text beyond it is not read), if it has one."""
        limit = getattr(getattr(self.encoder, "encoder", self.encoder), "max_seq_length", None)
        return int(limit) if limit is not None and limit < 10**8 else None

    def __getstate__(self) -> dict:
        # Shipped to Serve replicas and Ray actors without the loaded encoder model: each process
        # builds its own on first use (on its own device).
        return {**self.__dict__, "_encoder": None, "_featurizer": None}

    def __repr__(self) -> str:
        where = f" from {self.path}" if self.path else ""
        kind = f", ensemble of {len(self.predictor.members_)}" if self.is_ensemble else ""
        return f"Router({len(self.models)} models, encoder {self.encoder_name!r}, variant {self.config.variant!r}{kind}{where})"

    # -- embed -> features -> predict -> decide -------------------------------------------------
    def embed(self, prompts: Sequence[str]) -> np.ndarray:
        """(N, D) float32 sentence embeddings of prompt texts."""
        enc = self.encoder
        texts = list(prompts)
        if hasattr(enc, "embed"):
            return np.asarray(enc.embed(texts), dtype=np.float32)
        return np.asarray(enc.encode(texts, show_progress=False), dtype=np.float32)

    def features(self, prompts: Sequence[str] | None, X: np.ndarray | None = None) -> Features:
        """Embeddings (computed unless ``X`` is given) and, for ``model_queries``, token features."""
        if X is None:
            if prompts is None:
                raise ValueError("give prompts or their embeddings X")
            X = self.embed(prompts)
        X = np.asarray(X, dtype=np.float32)
        if not self.needs_tokens:
            return Features(X)
        if prompts is None:
            raise ValueError(f"the {self.config.variant!r} variant reads token features: pass the prompts, not only embeddings")
        if len(prompts) != len(X):
            raise ValueError(f"{len(prompts)} prompts for {len(X)} embeddings")
        tokens, mask = self._token_featurizer()(list(prompts))
        return Features(X, tokens, mask)

    def _token_featurizer(self):
        if self._featurizer is None:
            if self.encoder_name.startswith("hash:"):
                raise ValueError("the model_queries variant needs a sentence-transformers encoder (token features)")
            from router.model.tokens import StaticTokenFeaturizer

            self._featurizer = StaticTokenFeaturizer(self.encoder_name, self.config.token_segments)
        return self._featurizer

    def predict_embedded(self, X: np.ndarray, prompts: Sequence[str] | None = None) -> Prediction:
        """Predictions for already embedded prompts (``prompts`` too when the variant needs tokens)."""
        f = self.features(prompts, X=X)
        return self.predictor.predict(f.X, tokens=f.tokens, mask=f.mask)

    def predict(self, prompts) -> Prediction:
        """Predicted quality and USD cost of every pool model for each prompt (N x M, N = 1 for one
        prompt), and for an ensemble router the uncertainty of each quality (the members' std)."""
        texts, _ = as_prompts(prompts)
        return self.predict_embedded(self.embed(texts), texts)

    def decide(self, prediction: Prediction, lam: float | Sequence[float] = 1.0, reward: str | Reward = "linear") -> list[Decision]:
        """One :class:`Decision` per row of ``prediction`` (``lam``: one value or one per row)."""
        return decide_batch(prediction, self.models, lam, reward, self.c_ref)

    def choose(self, prediction: Prediction, lam: float, reward: str | Reward = "linear") -> tuple[np.ndarray, np.ndarray]:
        """Vectorised :meth:`decide` for bulk work: chosen model index per row and the (N, M) rewards."""
        return decide(prediction.quality, prediction.cost, lam, reward, self.c_ref)

    def route(self, prompts, lam: float = 1.0, reward: str | Reward = "linear"):
        """The decision for one prompt, or a list of decisions for a list of prompts."""
        texts, single = as_prompts(prompts)
        decisions = self.decide(self.predict_embedded(self.embed(texts), texts), lam, reward)
        return decisions[0] if single else decisions

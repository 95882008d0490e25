"""Training the cross-attention router: config, joint loss, AdamW, early stopping, fixed seeds.

Loss = quality loss + ``cost_loss_weight`` × cost loss, where the quality loss is BCE on the
quality logit (targets may be fractional) or MSE on its sigmoid, and the cost loss is the MSE on
the normalised log cost (see :class:`router.model.predictor.CostScaler`). The paper gives neither
loss; the defaults are what the validation split preferred (README, section cross-attention).

Early stopping watches the validation loss on a seeded ``val_fraction`` of the training rows and
restores the best epoch's weights. The same seed gives the same numbers: seeded init, seeded
shuffles, a fixed thread count and ``torch.use_deterministic_algorithms`` during training (all
three restored afterwards, since they are process-wide).
"""

from __future__ import annotations

import copy
import math
import sys
import time
from typing import Callable, Literal, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from router.model.predictor import CostScaler, CrossAttentionPredictor
from router.rewards import cost_scale

EpochCallback = Callable[[int, dict], None]


class TrainConfig(BaseModel):
    """Every knob of the network and its training. Unknown fields are an error (typos fail loudly)."""

    model_config = ConfigDict(extra="forbid")

    variant: Literal["prompt_queries", "model_queries"] = Field(
        "prompt_queries",
        description="Which side is the attention query: 'prompt_queries' (the prompt attends over the model "
        "embeddings; needs sentence embeddings only) or 'model_queries' (each model attends over the prompt's "
        "token features; needs tokens).",
    )
    hidden_dim: int = Field(128, ge=4, le=4096, description="Width of the attention block and of the heads.")
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="Dropout on the attention output and inside the heads.")
    lr: float = Field(1e-3, gt=0.0, le=1.0, description="AdamW learning rate.")
    weight_decay: float = Field(1e-2, ge=0.0, le=10.0, description="AdamW weight decay.")
    cost_loss_weight: float = Field(0.5, ge=0.0, le=100.0, description="Weight of the cost loss in the joint loss.")
    # Chosen on the validation split carved from dcrouter's training data: val AIQ 0.635 with vs
    # 0.611 without (KNN k=40 on the same rows: 0.625); see README, section cross-attention.
    product: bool = Field(
        True, description="Heads also read prompt ⊙ model embedding (an explicit multiplicative interaction)."
    )
    quality_loss: Literal["bce", "mse"] = Field("bce", description="Quality loss: BCE on the logit or MSE on the sigmoid.")
    cost_norm: Literal["per_model", "pooled"] = Field(
        "per_model", description="Normalise log cost per model or with one mean/std pooled over the pool."
    )
    init_from_names: bool = Field(
        True, description="Initialise each model embedding from the encoder's embedding of the model's name (when given)."
    )
    max_epochs: int = Field(60, ge=1, le=10_000, description="Upper bound on training epochs.")
    patience: int = Field(6, ge=1, le=1000, description="Epochs without validation-loss improvement before stopping.")
    batch_size: int = Field(256, ge=1, le=1_000_000, description="Prompts per optimiser step.")
    val_fraction: float = Field(
        0.1, ge=0.0, lt=0.9, description="Share of the training rows held out (seeded) for early stopping; 0 = none."
    )
    seed: int = Field(0, ge=0, description="Seed of initialisation, validation split and shuffling.")
    # 1 thread by default: the network is tiny, and on a shared 2-core machine 2 threads were measured
    # ~7x slower than 1 (thread synchronisation under oversubscription).
    num_threads: int | None = Field(
        1, ge=1, le=256, description="torch threads while training (fixed for reproducibility); null = leave as is."
    )
    token_segments: int = Field(
        16, ge=1, le=256, description="model_queries only: token features are mean-pooled into at most this many segments."
    )

    @field_validator("variant", mode="before")
    @classmethod
    def _variant_alias(cls, v):
        aliases = {"a": "model_queries", "b": "prompt_queries"}
        return aliases.get(v, v)

    @model_validator(mode="after")
    def _check(self):
        if self.patience > self.max_epochs:
            self.patience = self.max_epochs
        return self


def _check_inputs(X, quality, cost, models) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    X = np.asarray(X, dtype=np.float32)
    quality = np.asarray(quality, dtype=np.float64)
    cost = np.asarray(cost, dtype=np.float64)
    models = tuple(str(m) for m in models)
    if X.ndim != 2:
        raise ValueError(f"X must be an (N, D) array of embeddings, got shape {X.shape}")
    n, m = len(X), len(models)
    if m == 0:
        raise ValueError("the pool of models is empty")
    if len(set(models)) != m:
        raise ValueError(f"duplicate model names in the pool: {list(models)}")
    for name, arr in (("quality", quality), ("cost", cost)):
        if arr.shape != (n, m):
            raise ValueError(f"{name} must be (N={n}, M={m}), got shape {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or infinite values")
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or infinite values")
    if (quality < 0).any() or (quality > 1).any():
        raise ValueError("quality must be in [0, 1]")
    if (cost < 0).any():
        raise ValueError("cost must be >= 0")
    if n < 2:
        raise ValueError(f"need at least 2 training prompts, got {n}")
    return X, quality, cost, models


def split_rows(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (fit rows, validation rows), both sorted; with val_fraction > 0 at least one row on each side."""
    n_val = int(round(n * val_fraction))
    if val_fraction > 0:
        n_val = min(max(n_val, 1), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _val_aiq(pred: CrossAttentionPredictor, X, tokens, mask, quality, cost) -> float | None:
    """The paper-form AIQ of the linear reward on the validation rows (None if evaluation is absent)."""
    try:
        from router.evaluation.metrics import aiq_paper, ndch
        from router.evaluation.sweep import sweep
    except ImportError:  # pragma: no cover - the evaluation package is part of the project
        return None
    prediction = pred.predict(X, tokens=tokens, mask=mask)
    return aiq_paper(ndch(sweep(prediction, quality, cost, "linear", c_ref=pred.c_ref)))


def fit_predictor(
    pred: CrossAttentionPredictor,
    X,
    quality,
    cost,
    models: Sequence[str],
    tokens=None,
    mask=None,
    model_init=None,
    on_epoch: EpochCallback | None = None,
    progress: bool = True,
) -> CrossAttentionPredictor:
    """Train ``pred.config`` on (X, quality, cost) in place; see :func:`train_router`."""
    import torch

    from router.model.cross_attention import CrossAttentionRouter

    cfg: TrainConfig = pred.config
    X, quality, cost, models = _check_inputs(X, quality, cost, models)
    if cfg.variant == "model_queries" and tokens is None:
        raise ValueError("variant 'model_queries' needs token features (tokens=...); see router.model.tokens")
    if tokens is not None:
        tokens = np.asarray(tokens, dtype=np.float32)
        mask = np.ones(tokens.shape[:2], dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        if tokens.ndim != 3 or tokens.shape[0] != len(X) or tokens.shape[2] != X.shape[1] or mask.shape != tokens.shape[:2]:
            raise ValueError(f"tokens must be (N={len(X)}, T, {X.shape[1]}) with mask (N, T); got {tokens.shape}, {mask.shape}")
    if model_init is not None and cfg.init_from_names:
        model_init = np.asarray(model_init, dtype=np.float32)
        if model_init.shape != (len(models), X.shape[1]):
            raise ValueError(f"model_init must be (M={len(models)}, D={X.shape[1]}), got {model_init.shape}")
    else:
        model_init = None

    train_idx, val_idx = split_rows(len(X), cfg.val_fraction, cfg.seed)
    scaler = CostScaler.fit(cost[train_idx], pooled=cfg.cost_norm == "pooled")
    z_cost = scaler.transform(cost).astype(np.float32)
    pred.models = models
    pred.scaler = scaler
    # c_ref: the training data's mean cost per prompt over the pool (USD), the rewards' cost scale.
    pred.c_ref = cost_scale(cost)
    pred.prices = {m: float(v) for m, v in zip(models, cost.mean(axis=0))}

    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    started = time.perf_counter()
    try:
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        torch.use_deterministic_algorithms(True)
        torch.manual_seed(cfg.seed)
        net = CrossAttentionRouter(
            X.shape[1],
            len(models),
            hidden_dim=cfg.hidden_dim,
            dropout=cfg.dropout,
            variant=cfg.variant,
            model_init=None if model_init is None else torch.from_numpy(model_init),
            product=cfg.product,
        )
        pred.network = net
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        gen = torch.Generator().manual_seed(cfg.seed)

        tX = torch.from_numpy(X)
        tQ = torch.from_numpy(quality.astype(np.float32))
        tC = torch.from_numpy(z_cost)
        tT = None if tokens is None else torch.from_numpy(tokens)
        tM = None if tokens is None else torch.from_numpy(mask)

        def loss_of(rows: torch.Tensor) -> torch.Tensor:
            q_logit, z = net(tX[rows], None if tT is None else tT[rows], None if tM is None else tM[rows])
            if cfg.quality_loss == "bce":
                lq = torch.nn.functional.binary_cross_entropy_with_logits(q_logit, tQ[rows])
            else:
                lq = torch.nn.functional.mse_loss(torch.sigmoid(q_logit), tQ[rows])
            return lq + cfg.cost_loss_weight * torch.nn.functional.mse_loss(z, tC[rows])

        t_train = torch.from_numpy(train_idx)
        t_val = torch.from_numpy(val_idx)
        best, best_state, best_epoch, bad = math.inf, None, 0, 0
        pred.history = []
        for epoch in range(1, cfg.max_epochs + 1):
            net.train()
            perm = t_train[torch.randperm(len(t_train), generator=gen)]
            total, count = 0.0, 0
            for start in range(0, len(perm), cfg.batch_size):
                rows = perm[start : start + cfg.batch_size]
                loss = loss_of(rows)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(rows)
                count += len(rows)
            metrics = {"epoch": epoch, "train_loss": total / max(count, 1)}
            if len(val_idx):
                net.eval()
                with torch.no_grad():
                    metrics["val_loss"] = float(loss_of(t_val))
                v = val_idx
                metrics["val_aiq"] = _val_aiq(
                    pred, X[v], None if tokens is None else tokens[v], None if tokens is None else mask[v], quality[v], cost[v]
                )
                watch = metrics["val_loss"]
            else:
                metrics["val_loss"] = metrics["train_loss"]
                watch = metrics["train_loss"]
            metrics["seconds"] = time.perf_counter() - started
            pred.history.append(metrics)
            improved = watch < best - 1e-6
            if improved:
                best, best_state, best_epoch, bad = watch, copy.deepcopy(net.state_dict()), epoch, 0
            else:
                bad += 1
            if progress:
                aiq = metrics.get("val_aiq")
                print(
                    f"epoch {epoch:3d}  train loss {metrics['train_loss']:.4f}  val loss {metrics['val_loss']:.4f}"
                    + (f"  val AIQ {aiq:.4f}" if aiq is not None else "")
                    + ("  *" if improved else ""),
                    file=sys.stderr,
                    flush=True,
                )
            if on_epoch is not None:
                on_epoch(epoch, dict(metrics))
            if bad >= cfg.patience:
                break
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
        pred.best_epoch = best_epoch
    finally:
        torch.use_deterministic_algorithms(old_det)
        torch.set_num_threads(old_threads)
    pred.train_seconds = time.perf_counter() - started
    if progress:
        print(f"best epoch {best_epoch} (val loss {best:.4f}), {pred.train_seconds:.1f} s", file=sys.stderr, flush=True)
    return pred


def train_router(
    X,
    quality,
    cost,
    models: Sequence[str],
    config: TrainConfig | dict | None = None,
    on_epoch: EpochCallback | None = None,
    progress: bool = True,
    tokens=None,
    mask=None,
    model_init=None,
) -> CrossAttentionPredictor:
    """Train a cross-attention router on sentence embeddings ``X`` (N, D) with observed ``quality``
    and ``cost`` (N, M, USD) in the order of ``models``.

    ``on_epoch(epoch, metrics)`` runs after each epoch (metrics: ``train_loss``, ``val_loss``,
    ``val_aiq`` (paper-form AIQ, linear reward, on the validation rows), ``seconds``).
    ``tokens``/``mask``: token features for the ``model_queries`` variant. ``model_init``: (M, D)
    encoder embeddings of the model names, used when ``config.init_from_names``.
    """
    if config is None:
        config = TrainConfig()
    elif isinstance(config, dict):
        config = TrainConfig(**config)
    return fit_predictor(
        CrossAttentionPredictor(config), X, quality, cost, models, tokens, mask, model_init, on_epoch=on_epoch, progress=progress
    )


def load_train_config(path) -> TrainConfig:
    """A :class:`TrainConfig` from a YAML or JSON file of its fields (e.g. written by ``router tune``).

    Raises ValueError naming the file and the offending field."""
    from pathlib import Path

    import yaml
    from pydantic import ValidationError

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"train config {p}: no such file")
    try:
        data = yaml.safe_load(p.read_text())  # JSON is valid YAML
    except yaml.YAMLError as exc:
        raise ValueError(f"train config {p}: not valid YAML/JSON ({exc})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"train config {p}: expected a mapping of TrainConfig fields, got {type(data).__name__}")
    try:
        return TrainConfig(**data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"train config {p}: {problems}") from None

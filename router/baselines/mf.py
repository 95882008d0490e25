"""Matrix factorisation router (``mf``): the idea of RouteLLM's MF router and LLMRouter's
``mfrouter``, written for a pool of M models with an absolute quality per (prompt, model).

Each model m has a learned vector p_m, used only through its direction u_m = p_m / |p_m| (as
RouteLLM normalises its model embeddings); the prompt embedding x is projected by a learned
W (d × D, no bias). The quality logit is the bilinear score

    s(x, m) = wᵀ (u_m ⊙ W x) + b_m

with a shared weight vector w (RouteLLM's classifier layer) and a per-model bias b_m (ours: it
starts at the logit of the model's mean training quality, so training starts from the model's
prior instead of from 0.5). RouteLLM trains on pairwise win labels between two models; here every
(prompt, model) quality is a target of a binary cross-entropy on σ(s) (targets may be fractional),
one output per pool model. Cost is the baselines' estimate: each model's mean training cost.

Training: numpy, float64, seeded, Adam with decoupled weight decay on W and w, mini-batches,
early stopping on the BCE of a seeded validation carve of the training rows (the same carve as
cross-attention's, ``router.data.splits.split_rows``), best epoch's weights restored. No
torch: asking for the baselines stays torch-free.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from router.baselines.base import BASELINE_REWARD, QualityRegressor
from router.registry import BuildContext, RouterEntry


class MFConfig(BaseModel):
    """Knobs of the matrix-factorisation router; unknown fields are an error."""

    model_config = ConfigDict(extra="forbid")

    dim: int = Field(128, ge=1, le=4096, description="Latent dimension d (RouteLLM's default 128).")
    lr: float = Field(3e-3, gt=0.0, le=1.0, description="Adam learning rate.")
    weight_decay: float = Field(1e-4, ge=0.0, le=1.0, description="Decoupled weight decay on W and w (per step, times lr).")
    batch_size: int = Field(128, ge=1, le=1_000_000, description="Prompts per step.")
    max_epochs: int = Field(100, ge=1, le=10_000, description="Upper bound on epochs.")
    patience: int = Field(8, ge=1, le=1000, description="Epochs without validation improvement before stopping.")
    val_fraction: float = Field(0.1, ge=0.0, lt=0.9, description="Seeded share of training rows for early stopping; 0 = none.")
    seed: int = Field(0, ge=0, description="Seed of initialisation, validation carve and shuffling.")


PARAMS = ("W", "P", "w", "b")


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def scores(params: dict, X: np.ndarray) -> np.ndarray:
    """(N, M) quality logits."""
    U = params["P"] / np.linalg.norm(params["P"], axis=1, keepdims=True)
    return (X @ params["W"].T) @ (U * params["w"]).T + params["b"]


def loss_and_grads(params: dict, X: np.ndarray, Q: np.ndarray) -> tuple[float, dict]:
    """Mean binary cross-entropy of σ(scores) against Q and its gradient w.r.t. every parameter."""
    W, P, w, b = (params[k] for k in PARAMS)
    norm = np.linalg.norm(P, axis=1, keepdims=True)
    U = P / norm
    V = U * w
    Z = X @ W.T
    H = Z @ V.T + b
    # log(1 + e^h) - q h, computed stably.
    loss = float(np.mean(np.logaddexp(0.0, H) - Q * H))
    G = (1.0 / (1.0 + np.exp(-H)) - Q) / H.size
    dV = G.T @ Z
    dU = dV * w
    grads = {
        "W": (G @ V).T @ X,
        "P": (dU - U * (dU * U).sum(axis=1, keepdims=True)) / norm,
        "w": (dV * U).sum(axis=0),
        "b": G.sum(axis=0),
    }
    return loss, grads


class MFRouter(QualityRegressor):
    def __init__(self, config: MFConfig | dict | None = None):
        self.config = config if isinstance(config, MFConfig) else MFConfig(**(config or {}))

    def _fit_quality(self, X: np.ndarray, quality: np.ndarray) -> None:
        from router.data.splits import split_rows

        cfg = self.config
        X = np.asarray(X, dtype=np.float64)
        n, dim_in = X.shape
        m = quality.shape[1]
        rng = np.random.default_rng(cfg.seed)
        fit_rows, val_rows = split_rows(n, cfg.val_fraction, cfg.seed) if n > 1 else (np.arange(n), np.arange(0))
        params = {
            "W": rng.normal(0.0, 1.0 / np.sqrt(dim_in), (cfg.dim, dim_in)),
            "P": rng.normal(0.0, 1.0, (m, cfg.dim)),
            "w": rng.uniform(-1.0, 1.0, cfg.dim) / np.sqrt(cfg.dim),
            "b": _logit(quality[fit_rows].mean(axis=0)),
        }
        m1 = {k: np.zeros_like(v) for k, v in params.items()}
        m2 = {k: np.zeros_like(v) for k, v in params.items()}
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        step = 0
        best, best_params, bad = np.inf, {k: v.copy() for k, v in params.items()}, 0
        self.history_ = []
        for epoch in range(1, cfg.max_epochs + 1):
            order = fit_rows[rng.permutation(len(fit_rows))]
            for start in range(0, len(order), cfg.batch_size):
                rows = order[start : start + cfg.batch_size]
                _, grads = loss_and_grads(params, X[rows], quality[rows])
                step += 1
                for k in PARAMS:
                    m1[k] = beta1 * m1[k] + (1 - beta1) * grads[k]
                    m2[k] = beta2 * m2[k] + (1 - beta2) * grads[k] ** 2
                    update = (m1[k] / (1 - beta1**step)) / (np.sqrt(m2[k] / (1 - beta2**step)) + eps)
                    if k in ("W", "w"):
                        params[k] *= 1.0 - cfg.lr * cfg.weight_decay
                    params[k] -= cfg.lr * update
            watch_rows = val_rows if len(val_rows) else fit_rows
            watch = loss_and_grads(params, X[watch_rows], quality[watch_rows])[0]
            self.history_.append(watch)
            if watch < best - 1e-6:
                best, best_params, bad = watch, {k: v.copy() for k, v in params.items()}, 0
            else:
                bad += 1
                if bad >= cfg.patience:
                    break
        self.params_ = best_params
        self.best_epoch_ = int(np.argmin(self.history_)) + 1

    def _predict_quality(self, X: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-scores(self.params_, np.asarray(X, dtype=np.float64))))


def build_family(ctx: BuildContext) -> list[RouterEntry]:
    """One row ``mf``; ``ctx.options["mf"]``: MFConfig fields (the seed defaults to ``ctx.seed``)."""
    fields = dict((ctx.options or {}).get("mf") or {})
    fields.setdefault("seed", ctx.seed)
    return [RouterEntry(MFRouter(MFConfig(**fields)), {"mf": BASELINE_REWARD})]

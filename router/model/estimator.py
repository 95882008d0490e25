"""``CrossAttentionPredictor``: the cross-attention network as an estimator behind the shared
``Predictor`` interface (``fit(X, quality, cost, models)`` / ``predict(X)``).

It owns its fitting (the loop itself is :func:`router.model.training.fit_network`) and holds, once
fitted, the network, the pool, the cost normalisation (``CostScaler``) and ``c_ref``; it turns the
network's outputs into a :class:`router.prediction.Prediction` (quality in 0..1, cost in USD).
Fitted attributes end in ``_`` (scikit-learn's convention) and are all declared in ``__init__``.
``predict(X)`` takes sentence embeddings (N, D) only; the ``model_queries`` variant also reads
token features (``tokens=``, ``mask=``; see :mod:`router.model.tokens`) and says so with
``needs_tokens``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from router.data.splits import split_rows
from router.model.config import TrainConfig, as_train_config
from router.model.training import (
    DecisionTarget,
    EpochCallback,
    check_model_init,
    check_token_inputs,
    check_training_inputs,
    fit_network,
)
from router.prediction import Prediction, Predictor
from router.rewards import cost_scale


@dataclass
class CostScaler:
    """``z = (log(cost + eps) - mu) / sigma`` per model (or one pooled mu/sigma for every model).

    ``eps`` keeps free answers (cost 0) finite. Predictions map back with ``exp(z·sigma + mu) - eps``
    (the exponential of a predicted mean log cost: a median-like estimate, not a mean; our choice)."""

    mu: list[float]
    sigma: list[float]
    eps: float
    pooled: bool = False

    @classmethod
    def fit(cls, cost: np.ndarray, pooled: bool = False, min_sigma: float = 1e-3) -> "CostScaler":
        cost = np.asarray(cost, dtype=np.float64)
        positive = cost[cost > 0]
        eps = float(positive.min() * 0.01) if positive.size else 1e-12
        logc = np.log(cost + eps)
        m = cost.shape[1]
        if pooled:
            mu, sigma = np.full(m, logc.mean()), np.full(m, logc.std())
        else:
            mu, sigma = logc.mean(axis=0), logc.std(axis=0)
        return cls([float(v) for v in mu], [float(max(s, min_sigma)) for s in sigma], eps, pooled)

    def transform(self, cost: np.ndarray) -> np.ndarray:
        return (np.log(np.asarray(cost, dtype=np.float64) + self.eps) - np.asarray(self.mu)) / np.asarray(self.sigma)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        return np.maximum(np.exp(np.asarray(z, dtype=np.float64) * np.asarray(self.sigma) + np.asarray(self.mu)) - self.eps, 0.0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class CrossAttentionPredictor(Predictor):
    """Unfitted until :meth:`fit` (or :meth:`from_fitted`, used by artifacts and ``add_model``)."""

    def __init__(self, config: TrainConfig | dict | None = None):
        self.config: TrainConfig = as_train_config(config)
        # Fitted attributes.
        self.network_ = None  # CrossAttentionRouter
        self.models_: tuple[str, ...] = ()
        self.scaler_: CostScaler | None = None
        self.c_ref_: float = 1.0  # USD: the training set's mean cost per prompt over the pool
        self.prices_: dict[str, float] = {}  # model -> mean training cost per prompt, USD
        self.history_: list[dict] = []  # per epoch: train_loss, val_loss, val_aiq, seconds
        self.best_epoch_: int | None = None
        self.train_seconds_: float = 0.0

    @classmethod
    def from_fitted(cls, config: TrainConfig, network, models, scaler: CostScaler, c_ref: float, prices: dict[str, float],
                    best_epoch: int | None = None, train_seconds: float = 0.0) -> "CrossAttentionPredictor":  # fmt: skip
        """A fitted predictor from its parts (a loaded artifact, a grown pool)."""
        pred = cls(config)
        pred.network_, pred.models_, pred.scaler_ = network.eval(), tuple(models), scaler
        pred.c_ref_, pred.prices_ = float(c_ref), {m: float(prices[m]) for m in models}
        pred.best_epoch_, pred.train_seconds_ = best_epoch, float(train_seconds)
        return pred

    @property
    def models(self) -> tuple[str, ...]:
        return self.models_

    @property
    def needs_tokens(self) -> bool:
        return self.config.needs_tokens

    @property
    def input_dim(self) -> int:
        self._check_fitted()
        return int(self.network_.input_dim)

    # -- fitting --------------------------------------------------------------------------------
    def fit(self, X, quality, cost, models: Sequence[str], tokens=None, mask=None, model_init=None,
            on_epoch: EpochCallback | None = None, progress: bool = False) -> "CrossAttentionPredictor":  # fmt: skip
        """Train on embeddings ``X`` (N, D) with observed ``quality`` and ``cost`` (N, M, USD) in
        the order of ``models``.

        ``tokens``/``mask``: token features for the ``model_queries`` variant
        (:mod:`router.model.tokens`). ``model_init``: (M, D) encoder embeddings of the model names,
        used when ``config.init_from_names``. ``on_epoch(epoch, metrics)`` runs after each epoch
        (``train_loss``, ``val_loss``, ``val_aiq`` — paper-form AIQ of the linear reward on the
        validation rows —, ``seconds``); ``progress`` prints one line per epoch to stderr."""
        cfg = self.config
        X, quality, cost, models = check_training_inputs(X, quality, cost, models)
        if self.needs_tokens and tokens is None:
            raise ValueError("variant 'model_queries' needs token features (tokens=...); see router.model.tokens")
        tokens, mask = check_token_inputs(tokens, mask, len(X), X.shape[1])
        model_init = check_model_init(model_init, models, X.shape[1], cfg.init_from_names)

        train_rows, val_rows = split_rows(len(X), cfg.val_fraction, cfg.seed)
        self.models_ = models
        self.scaler_ = CostScaler.fit(cost[train_rows], pooled=cfg.cost_norm == "pooled")
        self.c_ref_ = cost_scale(cost)
        self.prices_ = {m: float(v) for m, v in zip(models, cost.mean(axis=0))}

        def val_aiq(network, rows) -> float:
            self.network_ = network
            sel = (lambda a: None if a is None else a[rows])
            prediction = self.predict(X[rows], tokens=sel(tokens), mask=sel(mask))
            return validation_aiq(prediction, quality[rows], cost[rows], self.c_ref_)

        profile = None
        if cfg.model_repr != "name":
            from router.model.profile import Profiler

            # Clusters and profiles from the fitting rows only: the early-stopping rows stay unseen.
            profiler = Profiler.fit(X[train_rows], cost[train_rows], cfg.profile_clusters, cfg.seed, self.scaler_.eps)
            profile = (profiler, profiler.profiles(X[train_rows], quality[train_rows], cost[train_rows]))
        decision = None
        if cfg.loss == "listwise":
            decision = DecisionTarget(cost, self.c_ref_, np.asarray(self.scaler_.mu), np.asarray(self.scaler_.sigma), self.scaler_.eps)
        result = fit_network(
            cfg, X, quality, self.scaler_.transform(cost).astype(np.float32), len(models), train_rows, val_rows,
            tokens=tokens, mask=mask, model_init=model_init, val_score=val_aiq, on_epoch=on_epoch, progress=progress,
            profile=profile, decision=decision,
        )  # fmt: skip
        self.network_, self.history_ = result.network, result.history
        self.best_epoch_, self.train_seconds_ = result.best_epoch, result.seconds
        return self

    # -- predicting -----------------------------------------------------------------------------
    def predict(self, X: np.ndarray, tokens: np.ndarray | None = None, mask: np.ndarray | None = None, batch_size: int = 8192) -> Prediction:
        z_q, z_c = self.predict_raw(X, tokens, mask, batch_size)
        quality = 1.0 / (1.0 + np.exp(-z_q))
        return Prediction(quality=quality, cost=self.scaler_.inverse(z_c))

    def predict_raw(self, X, tokens=None, mask=None, batch_size: int = 8192, model_embedding=None) -> tuple[np.ndarray, np.ndarray]:
        """Quality logits and normalised log costs, (N, M) float64 each."""
        import torch

        self._check_fitted()
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.network_.input_dim:
            raise ValueError(f"X must be (N, {self.network_.input_dim}) embeddings, got shape {X.shape}")
        if self.needs_tokens and tokens is None:
            raise ValueError("this predictor (variant 'model_queries') needs token features (tokens=...)")
        if tokens is not None and len(tokens) != len(X):
            raise ValueError(f"tokens has {len(tokens)} rows for {len(X)} embeddings")
        # eval() walks every submodule: once, not on every call (the serving path predicts per request).
        net = self.network_ if not self.network_.training else self.network_.eval()
        outs_q, outs_c = [], []
        emb = None if model_embedding is None else torch.as_tensor(model_embedding, dtype=torch.float32)
        with torch.inference_mode():
            for start in range(0, len(X), batch_size):
                sl = slice(start, start + batch_size)
                tok = None if tokens is None else torch.as_tensor(np.asarray(tokens[sl], dtype=np.float32))
                msk = None if mask is None else torch.as_tensor(np.asarray(mask[sl], dtype=bool))
                q, c = net(torch.from_numpy(X[sl]), tok, msk, model_embedding=emb)
                outs_q.append(q.double().numpy())
                outs_c.append(c.double().numpy())
        m = len(self.models_) if emb is None else emb.shape[0]
        if not outs_q:
            return np.zeros((0, m)), np.zeros((0, m))
        return np.concatenate(outs_q), np.concatenate(outs_c)

    def _check_fitted(self) -> None:
        if self.network_ is None or self.scaler_ is None:
            raise RuntimeError("CrossAttentionPredictor is not fitted: call fit() first")


def validation_aiq(prediction: Prediction, quality: np.ndarray, cost: np.ndarray, c_ref: float) -> float:
    """Paper-form AIQ of the linear reward's λ sweep (the number training reports per epoch)."""
    from router.evaluation.metrics import aiq_paper, ndch
    from router.evaluation.sweep import sweep

    return aiq_paper(ndch(sweep(prediction, quality, cost, "linear", c_ref=c_ref)))

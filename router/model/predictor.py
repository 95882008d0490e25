"""``CrossAttentionPredictor``: the trained network behind the shared ``Predictor`` interface.

It holds the network, the pool, the cost normalisation (``CostScaler``) and ``c_ref``, and turns
the network's outputs into a :class:`router.predictor.Prediction` (quality in 0..1, cost in USD).
``predict(X)`` takes sentence embeddings (N, D) only; the ``model_queries`` variant also reads
token features (``tokens=``, ``mask=``; see :mod:`router.model.tokens`) and says so with
``needs_tokens``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from router.predictor import Prediction, Predictor


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
    """Use :func:`router.model.training.train_router` (or ``fit``) to get a trained one."""

    def __init__(self, config=None):
        from router.model.training import TrainConfig

        self.config = config if config is not None else TrainConfig()
        self.network = None
        self.models: tuple[str, ...] = ()
        self.scaler: CostScaler | None = None
        self.c_ref: float = 1.0
        self.prices: dict[str, float] = {}
        self.history: list[dict] = []
        self.train_seconds: float = 0.0
        # Optional encoder (anything with ``.embed(texts)``) used by ``fit`` to initialise the model
        # embeddings from the model names when ``config.init_from_names`` (set by the family).
        self.name_encoder = None

    # -- Predictor interface -------------------------------------------------------------------
    def fit(self, X, quality, cost, models: Sequence[str], tokens=None, mask=None, model_init=None) -> "CrossAttentionPredictor":
        from router.model.training import fit_predictor

        if model_init is None and self.config.init_from_names and self.name_encoder is not None:
            model_init = np.asarray(self.name_encoder.embed(list(models)), dtype=np.float32)
            if model_init.shape[1:] != np.shape(X)[1:]:
                model_init = None  # another encoder than the prompts': no name initialisation
        return fit_predictor(self, X, quality, cost, models, tokens=tokens, mask=mask, model_init=model_init, progress=False)

    @property
    def needs_tokens(self) -> bool:
        return self.config.variant == "model_queries"

    @property
    def input_dim(self) -> int:
        self._check_fitted()
        return int(self.network.input_dim)

    def predict(self, X: np.ndarray, tokens: np.ndarray | None = None, mask: np.ndarray | None = None, batch_size: int = 8192) -> Prediction:
        z_q, z_c = self.predict_raw(X, tokens, mask, batch_size)
        quality = 1.0 / (1.0 + np.exp(-z_q))
        return Prediction(quality=quality, cost=self.scaler.inverse(z_c))

    def predict_raw(self, X, tokens=None, mask=None, batch_size: int = 8192, model_embedding=None) -> tuple[np.ndarray, np.ndarray]:
        """Quality logits and normalised log costs, (N, M) float64 each."""
        import torch

        self._check_fitted()
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.network.input_dim:
            raise ValueError(f"X must be (N, {self.network.input_dim}) embeddings, got shape {X.shape}")
        if tokens is not None and len(tokens) != len(X):
            raise ValueError(f"tokens has {len(tokens)} rows for {len(X)} embeddings")
        net = self.network.eval()
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
        m = len(self.models) if emb is None else emb.shape[0]
        if not outs_q:
            return np.zeros((0, m)), np.zeros((0, m))
        return np.concatenate(outs_q), np.concatenate(outs_c)

    def _check_fitted(self) -> None:
        if self.network is None or self.scaler is None:
            raise RuntimeError("CrossAttentionPredictor is not fitted: call fit() or train_router() first")

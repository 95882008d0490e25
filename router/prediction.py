"""What every router predicts: per prompt and per model in the pool, quality and USD cost.

A decision is then a reward (``router.rewards``) applied to these predictions at the caller's
λ, so the baselines and the cross-attention router are swept and scored by the same code.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class Prediction:
    quality: np.ndarray  # (N, M) predicted quality in [0, 1]
    cost: np.ndarray  # (N, M) predicted cost in USD
    # (N, M) how unsure the predicted quality is: the std of an ensemble's members' predicted
    # quality (``router.model.ensemble``); None for a predictor without an estimate.
    uncertainty: np.ndarray | None = None

    def __post_init__(self):
        if self.quality.shape != self.cost.shape or self.quality.ndim != 2:
            raise ValueError(f"quality {self.quality.shape} and cost {self.cost.shape} must be equal (N, M) arrays")
        if self.uncertainty is not None and np.shape(self.uncertainty) != self.quality.shape:
            raise ValueError(f"uncertainty {np.shape(self.uncertainty)} must have quality's shape {self.quality.shape}")

    def columns(self, idx) -> "Prediction":
        """The same prediction with the model columns ``idx`` (reordered or a subset)."""
        unc = None if self.uncertainty is None else self.uncertainty[:, idx]
        return Prediction(quality=self.quality[:, idx], cost=self.cost[:, idx], uncertainty=unc)


class Predictor(ABC):
    """Fits on embeddings with observed quality/cost, predicts both for new embeddings."""

    models: tuple[str, ...] = ()

    @abstractmethod
    def fit(self, X: np.ndarray, quality: np.ndarray, cost: np.ndarray, models: Sequence[str]) -> "Predictor":
        """X: (N, D) embeddings; quality, cost: (N, M) in the order of ``models``."""

    @abstractmethod
    def predict(self, X: np.ndarray) -> Prediction:
        """Predictions for (N, D) embeddings, columns in the order of ``self.models``."""


def mean_cost_prediction(mean_cost: np.ndarray, n: int) -> np.ndarray:
    """The baselines' cost estimate: each model's mean cost per prompt in training, for every prompt."""
    return np.broadcast_to(np.asarray(mean_cost, dtype=np.float64), (n, len(mean_cost))).copy()

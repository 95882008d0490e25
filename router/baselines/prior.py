"""The deployable no-router: each model's mean TRAINING quality and mean training cost, the same
for every prompt. Under any reward and λ it therefore sends every prompt to one model, the one
best on the training rows at that λ: what a team without a router deploys. (RouterBench's zero
router instead picks its fixed models on the test rows, in hindsight.) It is also each model's
prior, the point an uncertainty-aware router shrinks toward."""

from __future__ import annotations

import numpy as np

from router.baselines.base import QualityRegressor


class PriorPredictor(QualityRegressor):
    def _fit_quality(self, X: np.ndarray, quality: np.ndarray) -> None:
        self.mean_quality_ = quality.mean(axis=0)

    def _predict_quality(self, X: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.mean_quality_, (len(X), len(self.mean_quality_))).copy()

"""RouterBench's KNN router: the cosine k nearest training prompts; a model's predicted quality is
its mean quality on those neighbours. k = 5, 10, 40 as in RouterBench's configuration."""

from __future__ import annotations

import numpy as np

from router.baselines.base import BASELINE_REWARD, QualityRegressor
from router.registry import BuildContext, RouterEntry

K_VALUES = (5, 10, 40)


class KNNRouter(QualityRegressor):
    def __init__(self, k: int = 10):
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.k = k

    def _fit_quality(self, X: np.ndarray, quality: np.ndarray) -> None:
        from sklearn.neighbors import NearestNeighbors

        # Brute force: exact cosine neighbours; trees do not support the cosine metric.
        self.index_ = NearestNeighbors(n_neighbors=min(self.k, len(X)), metric="cosine", algorithm="brute").fit(X)
        self.train_quality_ = quality

    def _predict_quality(self, X: np.ndarray) -> np.ndarray:
        idx = self.index_.kneighbors(X, return_distance=False)
        return self.train_quality_[idx].mean(axis=1)


def build_family(ctx: BuildContext) -> list[RouterEntry]:
    return [RouterEntry(KNNRouter(k), {f"knn_k{k}": BASELINE_REWARD}) for k in K_VALUES]

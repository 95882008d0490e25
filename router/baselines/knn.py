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

    def neighbours(self, X: np.ndarray, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(N, k) cosine distances to the ``k`` (default ``self.k``) nearest training prompts, nearest
        first, and their training-row indices (also read by the distance gate, ``router.gate``)."""
        if not hasattr(self, "index_"):
            raise RuntimeError("KNNRouter is not fitted")
        k = min(self.k if k is None else int(k), self.index_.n_samples_fit_)
        dist, idx = self.index_.kneighbors(np.asarray(X, dtype=np.float32), n_neighbors=k)
        return dist, idx

    def _predict_quality(self, X: np.ndarray) -> np.ndarray:
        _, idx = self.neighbours(X)
        return self.train_quality_[idx].mean(axis=1)


def build_family(ctx: BuildContext) -> list[RouterEntry]:
    return [RouterEntry(KNNRouter(k), {f"knn_k{k}": BASELINE_REWARD}) for k in K_VALUES]

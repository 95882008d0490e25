"""Performance-profile model embeddings (``TrainConfig.model_repr`` ``profile``/``both``).

The training prompts' embeddings are clustered by k-means (scikit-learn, seeded). A model is then
described by what it did on each cluster: its mean quality and its mean log cost there, a vector
of 2·K numbers. Projected, these vectors are the keys and values of the single head
(:mod:`router.model.cross_attention`). Unlike a learned per-model vector, a profile can be computed
for a model the network never saw, from a small labelled probe set and without a gradient step
(:func:`router.model.extend.place_model`): the probe prompts are assigned to the nearest
centroids and averaged per cluster.

Each cluster mean is shrunk toward the model's overall mean with a pseudo-count ``ALPHA``
(``(sum + α·overall) / (count + α)``), the same rule on training rows (hundreds per cluster: a
negligible pull) and on a probe set (a handful per cluster: a strong one), so that a cluster the
probe barely covers falls back to the model's average. Log costs are standardised with the
training rows' pooled mean and std of log cost (kept with the profile) so both halves of the
vector have unit scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ALPHA = 5.0  # pseudo-count of the shrinkage toward the model's overall mean (our choice)


@dataclass
class Profiler:
    """Centroids (K, D) and the log-cost standardisation of the training rows."""

    centroids: np.ndarray
    logc_mu: float
    logc_sigma: float
    eps: float

    @classmethod
    def fit(cls, X: np.ndarray, cost: np.ndarray, clusters: int, seed: int, eps: float) -> "Profiler":
        from sklearn.cluster import KMeans
        from threadpoolctl import threadpool_limits

        X = np.asarray(X, dtype=np.float32)
        k = int(min(clusters, len(X)))
        with threadpool_limits(1):  # small problem; one thread is kind to a shared machine
            km = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(X)
        logc = np.log(np.asarray(cost, dtype=np.float64) + eps)
        return cls(km.cluster_centers_.astype(np.float32), float(logc.mean()), float(max(logc.std(), 1e-3)), float(eps))

    @property
    def clusters(self) -> int:
        return int(len(self.centroids))

    @property
    def dim(self) -> int:
        """Length of one model's profile vector."""
        return 2 * self.clusters

    def assign(self, X: np.ndarray) -> np.ndarray:
        """Nearest centroid (Euclidean, as k-means) of each row."""
        X = np.asarray(X, dtype=np.float32)
        d = (X**2).sum(1)[:, None] - 2.0 * X @ self.centroids.T + (self.centroids**2).sum(1)[None, :]
        return d.argmin(axis=1)

    def profiles(self, X: np.ndarray, quality: np.ndarray, cost: np.ndarray) -> np.ndarray:
        """(M, 2K) float32 profiles of the models whose quality/cost (N, M) on prompts ``X`` are given."""
        quality = np.asarray(quality, dtype=np.float64).reshape(len(X), -1)
        z = (np.log(np.asarray(cost, dtype=np.float64).reshape(len(X), -1) + self.eps) - self.logc_mu) / self.logc_sigma
        labels = self.assign(X)
        onehot = np.zeros((len(X), self.clusters))
        onehot[np.arange(len(X)), labels] = 1.0
        count = onehot.sum(axis=0)[:, None]  # (K, 1)

        def shrunk(values: np.ndarray) -> np.ndarray:  # (N, M) -> (M, K)
            overall = values.mean(axis=0)[None, :]
            return ((onehot.T @ values + ALPHA * overall) / (count + ALPHA)).T

        return np.concatenate([shrunk(quality), shrunk(z)], axis=1).astype(np.float32)

"""Distance-gated fallback and KNN blend: "right where it is confident, modest where it is not".

Both act on a fitted predictor's (N, M) quality q̂ and cost ĉ, per prompt:

* **KNN blend**: q̂_b = α·q̂ + (1 − α)·q̂_knn, with q̂_knn the mean observed quality of the prompt's
  ``blend_k`` nearest (cosine) training prompts: RouterBench's KNN router, which the bundled data
  showed as good as the network on prompts like the training prompts. α = 1 is the network alone.
* **Distance gate**: d = the mean cosine distance of the prompt's embedding to its ``k`` nearest
  training prompts; w(d) = sigmoid((d − d0)/s); q̃ = (1 − w)·q̂_b + w·p̄_m and c̃ = (1 − w)·ĉ + w·c̄_m,
  with p̄_m, c̄_m model m's mean training quality and cost. Cost is shrunk with the same w so that
  at w = 1 every prompt gets the same (p̄, c̄): the deployable no-router
  (:class:`router.baselines.prior.PriorPredictor`), which sends every prompt to the model best on
  the training rows at that λ. d0 = +∞ (w = 0) is the predictor alone, d0 = −∞ (w = 1) that floor;
  both are in the grid, so the choice on validation can only fall below the floor by as much as
  validation misjudges it.

The knobs are chosen on TRAINING-side folds only (:func:`router.data.splits.training_folds`): α on
the random carve (where the neighbours' mean can be right: prompts like the training prompts), then
(d0, s) with α fixed by the mean AIQ (paper form, linear reward's λ sweep) over the random carve and
the leave-one-domain-out folds (objective ``all_folds``, the default; ``domain_folds`` counts the
domain folds only). A held-out training domain is what unseen traffic looks like; the
random carve is in the mean so that the gate does not buy the domain folds' floor at the price of
the in-distribution gain (on the domain folds alone a gate that always falls back would win
whenever the network is worse than the floor there, and it would then fall back on every prompt).

d0 and s are chosen *relative* to the training rows' own neighbour distances (``reference``: each
training prompt's mean distance to its k nearest OTHER training prompts): d0 = that distribution's
``quantile``, s = ``scale`` × its std. Relative knobs carry from a fold's fitting rows to all
training rows, which are denser (more rows: smaller distances), where absolute ones would not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

MODES = ("off", "gate", "blend", "gate_blend")
ALPHAS = (1.0, 0.75, 0.5, 0.25, 0.0)  # network weight in the blend; 1.0 first: ties keep the network
QUANTILES = (0.5, 0.75, 0.9, 0.95, 0.99)  # d0 as a quantile of the reference distances
SCALES = (0.1, 0.3, 1.0)  # s as a multiple of the reference distances' std
NEVER, ALWAYS = math.inf, -math.inf  # "quantiles" of the two ends: w = 0 and w = 1 everywhere


def gates(mode: str) -> bool:
    return mode in ("gate", "gate_blend")


def blends(mode: str) -> bool:
    return mode in ("blend", "gate_blend")


def gate_weight(d: np.ndarray, d0: float, s: float) -> np.ndarray:
    """w(d) = sigmoid((d − d0)/s), exactly 0 for d0 = +∞ and exactly 1 for d0 = −∞."""
    d = np.asarray(d, dtype=np.float64)
    if d0 == NEVER:
        return np.zeros_like(d)
    if d0 == ALWAYS:
        return np.ones_like(d)
    if not s > 0:
        raise ValueError(f"gate scale s must be > 0, got {s}")
    return 0.5 * (1.0 + np.tanh((d - d0) / (2.0 * s)))  # = sigmoid, without overflow


def combine(q_net, c_net, q_knn, d, prior, prior_cost, alpha: float, d0: float, s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(quality, cost, w) after the blend and the gate (see the module docstring)."""
    q = q_net if alpha == 1.0 else alpha * q_net + (1.0 - alpha) * q_knn
    w = gate_weight(d, d0, s)[:, None]
    quality = (1.0 - w) * q + w * np.asarray(prior, dtype=np.float64)
    cost = (1.0 - w) * c_net + w * np.asarray(prior_cost, dtype=np.float64)
    return quality, cost, w[:, 0]


def absolute(reference: np.ndarray, quantile: float, scale: float) -> tuple[float, float]:
    """(d0, s) of relative knobs on ``reference`` distances (the ends ±∞ stay as they are)."""
    if quantile in (NEVER, ALWAYS):
        return float(quantile), 1.0
    ref = np.asarray(reference, dtype=np.float64)
    return float(np.quantile(ref, quantile)), max(float(scale) * float(ref.std()), 1e-6)


class NeighbourIndex:
    """The training prompts' embeddings and observed quality behind an exact cosine neighbour search:
    d and q̂_knn for new prompts.

    The search is a matrix product of unit vectors and ``torch.topk`` (unsorted, then the k
    sorted), in chunks of ``CHUNK`` queries, at the caller's torch threads. It finds the same
    neighbours as the KNN baseline's scikit-learn brute-force cosine search (the two differ only in
    the order of exact ties). Measured with ``load_tests.bench_scorer`` (two runs, before and
    after): the default router's predict for one prompt 4.15 -> 1.85 ms; at a batch of 1,024 about
    the same at 1 thread (121.5 -> 119.5 ms), 126.7 -> 71.0 ms at 2."""

    CHUNK = 1024

    def __init__(self, X: np.ndarray, quality: np.ndarray, k: int = 10, blend_k: int = 40):
        self.X = np.ascontiguousarray(X, dtype=np.float32)
        # C order: safetensors writes the raw buffer (a Fortran-ordered table would come back transposed).
        self.quality = np.ascontiguousarray(quality, dtype=np.float64)
        if self.X.ndim != 2 or self.quality.shape[0] != len(self.X) or len(self.X) < 2:
            raise ValueError(f"neighbour index: embeddings {self.X.shape} and quality {self.quality.shape} must be (N >= 2) rows")
        self.k, self.blend_k = int(k), int(blend_k)
        self._unit = _unit_rows(self.X)

    def neighbours(self, X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(N, k) cosine distances to the ``k`` nearest training prompts, nearest first, and their
        training-row indices."""
        import torch

        k = min(int(k), len(self.X))
        train = torch.from_numpy(self._unit)
        Q = _unit_rows(np.asarray(X, dtype=np.float32))
        dist, idx = np.empty((len(Q), k)), np.empty((len(Q), k), dtype=np.int64)
        for lo in range(0, len(Q), self.CHUNK):
            sims = torch.from_numpy(Q[lo : lo + self.CHUNK]) @ train.T
            v, i = torch.topk(sims, k, dim=1, sorted=False)
            order = torch.argsort(v, dim=1, descending=True, stable=True)
            dist[lo : lo + self.CHUNK] = 1.0 - v.gather(1, order).double().numpy()
            idx[lo : lo + self.CHUNK] = i.gather(1, order).numpy()
        return dist, idx

    def query(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(d, q̂_knn): (N,) mean distance to the k nearest training prompts, (N, M) the mean
        observed quality of the blend_k nearest."""
        dist, idx = self.neighbours(X, max(self.k, self.blend_k))
        return dist[:, : self.k].mean(axis=1), self.quality[idx[:, : self.blend_k]].mean(axis=1)

    def reference(self) -> np.ndarray:
        """Each training prompt's mean distance to its k nearest other training prompts."""
        dist, _ = self.neighbours(self.X, self.k + 1)
        return dist[:, 1:].mean(axis=1)  # column 0: the prompt itself (or an exact duplicate), distance 0


def _unit_rows(X: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero: cosine distance 1 to everything, as in
    scikit-learn)."""
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return np.ascontiguousarray(X / np.where(norms > 0, norms, 1.0), dtype=np.float32)


@dataclass
class FoldData:
    """One training-side fold's held-out rows: what the predictor, the neighbours and the prior
    say there, and what was observed (kept by a fitted gated predictor to re-choose its knobs)."""

    label: str
    q_net: np.ndarray
    c_net: np.ndarray
    q_knn: np.ndarray
    d: np.ndarray
    reference: np.ndarray  # the fold's fitting rows' reference distances
    prior: np.ndarray
    prior_cost: np.ndarray
    quality: np.ndarray  # observed
    cost: np.ndarray  # observed
    c_ref: float

    def aiq(self, alpha: float, quantile: float, scale: float) -> float:
        from router.evaluation.metrics import aiq_paper, ndch
        from router.evaluation.sweep import sweep
        from router.prediction import Prediction

        d0, s = absolute(self.reference, quantile, scale)
        q, c, _ = combine(self.q_net, self.c_net, self.q_knn, self.d, self.prior, self.prior_cost, alpha, d0, s)
        # The number training reports per epoch (router.model.estimator.validation_aiq).
        return float(aiq_paper(ndch(sweep(Prediction(quality=q, cost=c), self.quality, self.cost, "linear", c_ref=self.c_ref))))


def gate_grid(mode: str) -> list[tuple[float, float]]:
    """(quantile, scale) candidates: never first (ties keep the predictor), then always, then the grid."""
    if not gates(mode):
        return [(NEVER, 0.0)]
    return [(NEVER, 0.0), (ALWAYS, 0.0)] + [(q, s) for q in QUANTILES for s in SCALES]


OBJECTIVES = ("all_folds", "domain_folds")


def choose(folds: Sequence[FoldData], mode: str, objective: str = "all_folds") -> dict:
    """α on the random fold (``folds[0]``), then (quantile, scale) with α fixed by the mean AIQ over
    every fold (``all_folds``) or over the domain folds only (``domain_folds``; the random fold when
    there are none); ties go to the first candidate (α = 1, never gate). Returns the choice and the
    validation scores it was made on."""
    if mode not in MODES:
        raise ValueError(f"unknown fallback mode {mode!r}; choose one of {MODES}")
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown fallback objective {objective!r}; choose one of {OBJECTIVES}")
    if not folds or folds[0].label != "random":
        raise ValueError("choose needs the random fold first")
    alphas = ALPHAS if blends(mode) else (1.0,)
    alpha_aiq = [folds[0].aiq(a, NEVER, 0.0) for a in alphas]
    alpha = alphas[int(np.argmax(alpha_aiq))]
    grid = gate_grid(mode)
    scores = np.array([[f.aiq(alpha, q, s) for q, s in grid] for f in folds])
    counted = scores[1:] if objective == "domain_folds" and len(folds) > 1 else scores
    best = int(np.argmax(counted.mean(axis=0)))
    quantile, scale = grid[best]
    return {
        "mode": mode,
        "objective": objective,
        "alpha": float(alpha),
        "quantile": float(quantile),
        "scale": float(scale),
        "folds": [f.label for f in folds],
        "alpha_grid": [float(a) for a in alphas],
        "alpha_val_aiq": alpha_aiq,
        "gate_grid": [[float(q), float(s)] for q, s in grid],
        "gate_val_aiq": scores.tolist(),
        "mean_gate_val_aiq": counted.mean(axis=0).tolist(),
    }

"""What the RouterBench baselines share: a quality regressor on prompt embeddings, each model's
mean training cost per prompt as the cost estimate, and RouterBench's decision rule (the
``routerbench`` reward, λ·q̂ − ĉ with λ the willingness to pay in USD)."""

from __future__ import annotations

import logging
import time
import warnings
from abc import abstractmethod
from typing import Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from router.prediction import Prediction, Predictor, mean_cost_prediction

log = logging.getLogger(__name__)

# The reward every baseline row is scored with (RouterBench's willingness-to-pay rule).
BASELINE_REWARD = "routerbench"


class QualityRegressor(Predictor):
    """Predicts each model's quality with ``_fit_quality``/``_predict_quality`` (clipped to
    [0, 1]) and its cost as the model's mean cost per prompt in training.

    BLAS runs single-threaded inside fit/predict: these models multiply small matrices, where
    thread hand-offs cost more than they save, and far more on a busy machine (measured: an
    MLP (100, 100) on 210 prompts took 12.1 s with OpenBLAS's 2 threads at load 12, 1.1 s with 1).
    """

    blas_threads: int = 1

    def fit(self, X: np.ndarray, quality: np.ndarray, cost: np.ndarray, models: Sequence[str]) -> "QualityRegressor":
        X = np.asarray(X, dtype=np.float32)
        quality = np.asarray(quality, dtype=np.float64)
        cost = np.asarray(cost, dtype=np.float64)
        if X.ndim != 2 or quality.shape != (len(X), len(models)) or cost.shape != quality.shape:
            raise ValueError(
                f"fit: X {X.shape}, quality {quality.shape}, cost {cost.shape} do not match {len(models)} models"
            )
        if len(X) == 0:
            raise ValueError("fit: no training rows")
        self.models = tuple(models)
        self.mean_cost_ = cost.mean(axis=0)
        with threadpool_limits(self.blas_threads):
            self._fit_quality(X, quality)
        return self

    def predict(self, X: np.ndarray) -> Prediction:
        if not hasattr(self, "mean_cost_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted")
        X = np.asarray(X, dtype=np.float32)
        with threadpool_limits(self.blas_threads):
            q = np.clip(np.asarray(self._predict_quality(X), dtype=np.float64), 0.0, 1.0)
        return Prediction(quality=q, cost=mean_cost_prediction(self.mean_cost_, len(X)))

    @abstractmethod
    def _fit_quality(self, X: np.ndarray, quality: np.ndarray) -> None: ...

    @abstractmethod
    def _predict_quality(self, X: np.ndarray) -> np.ndarray:
        """(N, M) quality estimates, any range (clipped by ``predict``)."""


class PerModelRegressor(QualityRegressor):
    """One scikit-learn regressor per model, as RouterBench fits its MLP and SVM routers."""

    def __init__(self, make_regressor):
        self.make_regressor = make_regressor

    def _fit_quality(self, X: np.ndarray, quality: np.ndarray) -> None:
        from sklearn.exceptions import ConvergenceWarning

        self.regressors_ = []
        self.converged_ = []
        for j in range(quality.shape[1]):
            y = quality[:, j]
            if np.ptp(y) == 0:
                # A constant target (e.g. a model right on every training prompt): predict it as is.
                self.regressors_.append(float(y[0]))
                self.converged_.append(True)
                continue
            # RouterBench's settings stop at a fixed iteration budget, which scikit-learn reports
            # as a ConvergenceWarning; we keep the budget and record the fact instead of warning.
            t0 = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                self.regressors_.append(self.make_regressor().fit(X, y))
            self.converged_.append(not any(issubclass(w.category, ConvergenceWarning) for w in caught))
            log.info("  model %d/%d fitted in %.1fs%s", j + 1, quality.shape[1], time.perf_counter() - t0,
                     "" if self.converged_[-1] else " (iteration budget reached)")  # fmt: skip

    def _predict_quality(self, X: np.ndarray) -> np.ndarray:
        cols = [np.full(len(X), r) if isinstance(r, float) else r.predict(X) for r in self.regressors_]
        return np.stack(cols, axis=1)

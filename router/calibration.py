"""Calibration of predicted quality: how well q̂ matches observed quality, and post-hoc fixes.

* :func:`calibration_report`: expected calibration error (ECE) over every (prompt, model) pair —
  10 equal-width bins of q̂, ECE = Σ_b (n_b / n)·|mean q̂_b − mean q_b| — plus the Brier score
  (mean (q̂ − q)²), per-model ECE and the bins of a reliability diagram. Observed quality may be
  fractional; the bin's mean is then a mean score, not a frequency.
* :class:`CalibratedPredictor`: wraps any predictor; ``fit`` carves a seeded validation share of
  the TRAINING rows it is given (never test rows), fits the base on the rest and a calibrator
  on the base's predictions for the validation rows, then maps every prediction through it.
  Methods: ``temperature`` (q̂ ← σ(logit(q̂)/T), one T for the pool, by binary cross-entropy) and
  ``isotonic`` (one monotone map for the pool, scikit-learn). One map for the whole pool because
  the validation carve has few rows per model; both keep the ranking of q̂ within a model.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from router.prediction import Prediction, Predictor

log = logging.getLogger(__name__)

METHODS = ("temperature", "isotonic")
N_BINS = 10
_EPS = 1e-4


def calibration_report(predicted: np.ndarray, observed: np.ndarray, models: Sequence[str] | None = None, n_bins: int = N_BINS,
                       uncertainty: np.ndarray | None = None) -> dict:
    """``{"ece", "brier", "per_model": {model: ece}, "bins": [[lo, hi, count, mean q̂, mean q], ...]}``
    of (N, M) predicted vs observed quality (empty bins are left out); with the predictor's (N, M)
    ``uncertainty`` also ``"uncertainty"``: whether σ ranks the errors (:func:`uncertainty_report`)."""
    p = np.asarray(predicted, dtype=np.float64)
    o = np.asarray(observed, dtype=np.float64)
    if p.shape != o.shape or p.ndim != 2 or p.size == 0:
        raise ValueError(f"predicted {p.shape} and observed {o.shape} must be equal non-empty (N, M) arrays")

    def ece_and_bins(pp: np.ndarray, oo: np.ndarray) -> tuple[float, list]:
        idx = np.clip((pp * n_bins).astype(int), 0, n_bins - 1)
        ece, bins = 0.0, []
        for b in range(n_bins):
            sel = idx == b
            n = int(sel.sum())
            if n == 0:
                continue
            mp, mo = float(pp[sel].mean()), float(oo[sel].mean())
            ece += n / pp.size * abs(mp - mo)
            bins.append([b / n_bins, (b + 1) / n_bins, n, mp, mo])
        return float(ece), bins

    ece, bins = ece_and_bins(p.ravel(), o.ravel())
    names = list(models) if models is not None else [str(j) for j in range(p.shape[1])]
    report = {
        "ece": ece,
        "brier": float(np.mean((p - o) ** 2)),
        "per_model": {m: ece_and_bins(p[:, j], o[:, j])[0] for j, m in enumerate(names)},
        "bins": bins,
    }
    if uncertainty is not None:
        report["uncertainty"] = uncertainty_report(p, o, uncertainty)
        report["sigma_error_spearman"] = report["uncertainty"]["error_spearman"]
    return report


def summary_keys(reports: Sequence[Mapping]) -> tuple[str, ...]:
    """The numbers of calibration reports that are averaged over seeds and domains: ECE, Brier and,
    where every report has a defined one, σ's rank correlation with the error."""
    extra = ("sigma_error_spearman",) if reports and all(r.get("sigma_error_spearman") is not None for r in reports) else ()
    return ("ece", "brier") + extra


def uncertainty_report(predicted: np.ndarray, observed: np.ndarray, sigma: np.ndarray) -> dict:
    """Does σ say where the predicted quality is wrong? Over all (prompt, model) pairs: the mean σ,
    Spearman's ρ between σ and |q̂ − q|, and the mean |q̂ − q| in each quartile of σ (lowest
    first). ρ > 0 and rising quartiles: σ is informative; ρ ≈ 0: it is noise."""
    from scipy.stats import spearmanr

    s = np.asarray(sigma, dtype=np.float64).ravel()
    err = np.abs(np.asarray(predicted, dtype=np.float64) - np.asarray(observed, dtype=np.float64)).ravel()
    if s.shape != err.shape:
        raise ValueError(f"uncertainty {np.shape(sigma)} must have predicted's shape {np.shape(predicted)}")
    # None where ρ is undefined (σ or the error constant): JSON has no NaN.
    rho = float(spearmanr(s, err).statistic) if s.size > 1 and np.ptp(s) > 0 and np.ptp(err) > 0 else None
    quartile = np.minimum((np.argsort(np.argsort(s, kind="stable"), kind="stable") * 4) // s.size, 3)
    return {
        "mean_sigma": float(s.mean()),
        "error_spearman": rho,
        "error_by_sigma_quartile": [float(err[quartile == k].mean()) if np.any(quartile == k) else None for k in range(4)],
    }


def plot_reliability(reports: Mapping[str, dict], path: Path, title: str = "") -> None:
    """Reliability diagram: mean observed vs mean predicted quality per bin, one line per label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 6))
    ax.plot([0, 1], [0, 1], "--", color="black", lw=1, label="perfectly calibrated")
    for label, rep in reports.items():
        bins = np.asarray(rep["bins"], dtype=float)
        if len(bins):
            ax.plot(bins[:, 3], bins[:, 4], "o-", ms=3, label=f"{label} (ECE {rep['ece']:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean predicted quality (bin)")
    ax.set_ylabel("mean observed quality (bin)")
    ax.set_title(title or "reliability of predicted quality")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


class Calibrator:
    """A monotone map of predicted quality fitted on (q̂, q) pairs pooled over the models."""

    def __init__(self, method: str):
        if method not in METHODS:
            raise ValueError(f"unknown calibration method {method!r}; choose from {', '.join(METHODS)}")
        self.method = method

    def fit(self, predicted: np.ndarray, observed: np.ndarray) -> "Calibrator":
        p = np.asarray(predicted, dtype=np.float64).ravel()
        o = np.asarray(observed, dtype=np.float64).ravel()
        if p.shape != o.shape or p.size == 0:
            raise ValueError("calibrator: predicted and observed must be equal non-empty arrays")
        if self.method == "temperature":
            from scipy.optimize import minimize_scalar

            z = _logit(p)

            def bce(log_t: float) -> float:
                h = z / np.exp(log_t)
                return float(np.mean(np.logaddexp(0.0, h) - o * h))

            self.temperature_ = float(np.exp(minimize_scalar(bce, bounds=(-4.0, 4.0), method="bounded").x))
        else:
            from sklearn.isotonic import IsotonicRegression

            self.isotonic_ = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, o)
        return self

    def transform(self, predicted: np.ndarray) -> np.ndarray:
        p = np.asarray(predicted, dtype=np.float64)
        if self.method == "temperature":
            return 1.0 / (1.0 + np.exp(-_logit(p) / self.temperature_))
        return self.isotonic_.predict(p.ravel()).reshape(p.shape)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1.0 - _EPS)  # KNN and clipped regressors predict exact 0 and 1
    return np.log(p / (1.0 - p))


class CalibratedPredictor(Predictor):
    """``base`` with its quality mapped through a calibrator fitted on a validation carve of the
    training rows (``val_fraction``, seeded). The base is fitted on the remaining rows only, so the
    calibrator sees predictions for rows the base has not seen. Extra ``fit``/``predict`` keyword
    arguments (e.g. token features) are passed to the base; in ``fit``, arrays with one row per
    prompt are carved along with X."""

    def __init__(self, base: Predictor, method: str = "temperature", val_fraction: float = 0.2, seed: int = 0):
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
        self.base = base
        self.calibrator = Calibrator(method)
        self.val_fraction = val_fraction
        self.seed = seed

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(getattr(self.base, "models", ()))

    @property
    def needs_tokens(self) -> bool:
        return bool(getattr(self.base, "needs_tokens", False))

    def fit(self, X, quality, cost, models: Sequence[str], **kwargs) -> "CalibratedPredictor":
        from router.data.splits import split_rows

        X = np.asarray(X)
        quality = np.asarray(quality, dtype=np.float64)
        cost = np.asarray(cost, dtype=np.float64)
        n = len(X)
        if n < 4:
            raise ValueError(f"calibration needs at least 4 training rows (fit + validation), got {n}")
        fit_rows, val_rows = split_rows(n, self.val_fraction, self.seed)

        def carve(rows):
            return {k: v[rows] if isinstance(v, np.ndarray) and len(v) == n else v for k, v in kwargs.items()}

        self.base.fit(X[fit_rows], quality[fit_rows], cost[fit_rows], models, **carve(fit_rows))
        pv = self.base.predict(X[val_rows], **carve(val_rows))
        self.calibrator.fit(pv.quality, quality[val_rows])
        log.info("calibrated %s with %s on %d validation rows", type(self.base).__name__, self.calibrator.method, len(val_rows))
        return self

    def predict(self, X, **kwargs) -> Prediction:
        pred = self.base.predict(X, **kwargs)
        return Prediction(quality=np.clip(self.calibrator.transform(pred.quality), 0.0, 1.0), cost=pred.cost)


def parse_methods(text: str | None) -> list[str]:
    """``temperature,isotonic`` -> the list; ``None``/empty -> no calibration."""
    methods = [m.strip() for m in (text or "").split(",") if m.strip()]
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"--calibrate: unknown method {m!r}; choose from {', '.join(METHODS)}")
    return methods


def calibrated_entries(entries: list, method: str, seed: int = 0) -> list:
    """The unfitted registry entries wrapped in ``method`` calibration, rows renamed
    ``<row>+<method>``; entries that arrive fitted (an artifact) have no training rows to carve a
    validation set from and are left out."""
    from router.registry import RouterEntry

    out = []
    for e in entries:
        if e.fitted:
            log.info("calibration %s: skipping the pre-fitted %s (no training rows to carve)", method, ",".join(e.rows))
            continue
        out.append(RouterEntry(CalibratedPredictor(e.predictor, method, seed=seed), {f"{r}+{method}": rw for r, rw in e.rows.items()}))
    return out

"""``GatedPredictor``: the cross-attention network behind the distance gate and the KNN blend of
:mod:`router.gate` (``TrainConfig.fallback``), as one fitted predictor.

Fitting: on each training-side fold (:func:`router.data.splits.training_folds`: the random carve,
and for the gate up to ``fallback_domain_folds`` leave-one-domain-out folds) a network of the same
config is fitted on the fold's other rows and, with the neighbour index of those rows, predicts
the held-out rows; :func:`router.gate.choose` picks α and (d0, s) on them; then the network and the
index are fitted on every row. Cost: 1 + (number of folds) network fits. With fewer than two
training domains the gate's domain folds are leave-one-cluster-out folds of k-means clusters of
the embeddings (a held-out region of the training prompts stands in for a held-out domain).

The held-out predictions are kept (``inner_``, not saved) so :meth:`with_mode` can re-choose the
knobs for another mode on the same networks: the variant study compares gate / blend / both
without refitting. ``predict`` needs the training prompts' embeddings and quality for the
neighbour search: the artifact stores them (:mod:`router.model.artifact`).

It has the surface the rest of the product reads from a predictor (``models``, ``config``,
``c_ref_``, ``prices_``, ``input_dim``, ``needs_tokens``), so a :class:`router.core.Router`, its
artifact and the Serve app carry it like a single network.
"""

from __future__ import annotations

import copy
import logging
import time
from typing import Sequence

import numpy as np

from router.gate import MODES, FoldData, NeighbourIndex, absolute, choose, combine, gates
from router.model.config import TrainConfig, as_train_config
from router.model.estimator import CrossAttentionPredictor
from router.model.wrapping import WrapsNetworks
from router.prediction import Prediction, Predictor

log = logging.getLogger(__name__)


def _rows(a, rows):
    return None if a is None else np.asarray(a)[rows]


class GatedPredictor(WrapsNetworks, Predictor):
    """Unfitted until :meth:`fit` (or :meth:`from_fitted`, used by artifacts)."""

    wants_domains = True  # fit takes the training rows' domains (the gate's leave-one-domain-out folds)

    def __init__(self, config: TrainConfig | dict | None = None):
        self.config = as_train_config(config)
        # Fitted attributes.
        self.network_: CrossAttentionPredictor | None = None
        self.neighbours_: NeighbourIndex | None = None
        self.params_: dict = {}  # alpha, quantile, scale (relative) and d0, s (absolute)
        self.prior_: np.ndarray | None = None  # (M,) mean training quality
        self.prior_cost_: np.ndarray | None = None  # (M,) mean training cost, USD
        self.selection_: dict = {}  # router.gate.choose's record
        self.inner_: list[FoldData] = []  # held-out predictions of the folds (not saved)
        self.fitted_mode_: str | None = None  # the mode the folds were made for (with_mode re-chooses on them)
        self.train_seconds_: float = 0.0

    @property
    def network_config(self) -> TrainConfig:
        """The network's own config: this one without the fallback."""
        return self.config.model_copy(update={"fallback": "off"})

    @classmethod
    def from_fitted(cls, config: TrainConfig, network: CrossAttentionPredictor, neighbours: NeighbourIndex, params: dict,
                    prior, prior_cost, selection: dict | None = None, train_seconds: float = 0.0) -> "GatedPredictor":  # fmt: skip
        pred = cls(config)
        pred.network_, pred.neighbours_ = network, neighbours
        pred.params_ = {k: float(params[k]) for k in ("alpha", "quantile", "scale", "d0", "s")}
        pred.prior_, pred.prior_cost_ = np.asarray(prior, dtype=np.float64), np.asarray(prior_cost, dtype=np.float64)
        pred.selection_, pred.train_seconds_ = dict(selection or {}), float(train_seconds)
        pred._check_consistent()
        return pred

    # -- facts (the surface CrossAttentionPredictor has: router.model.wrapping) -----------------
    def _first_network(self):
        return self.network_

    @property
    def best_epoch_(self):
        return None if self.network_ is None else self.network_.best_epoch_

    def _check_fitted(self) -> None:
        if self.network_ is None or self.neighbours_ is None or not self.params_:
            raise RuntimeError("GatedPredictor is not fitted: call fit() first")

    def _check_consistent(self) -> None:
        self._check_fitted()
        m, n = len(self.network_.models), len(self.neighbours_.X)
        if self.neighbours_.X.shape[1] != self.network_.input_dim or self.neighbours_.quality.shape != (n, m):
            raise ValueError(f"neighbour index {self.neighbours_.X.shape} / {self.neighbours_.quality.shape} does not fit the "
                             f"network ({self.network_.input_dim}-d, {m} models)")  # fmt: skip
        if np.shape(self.prior_) != (m,) or np.shape(self.prior_cost_) != (m,):
            raise ValueError(f"gate priors must have one entry per model ({m})")

    # -- fitting ------------------------------------------------------------------------------
    def _fold_domains(self, X: np.ndarray, domains) -> np.ndarray | None:
        """The rows' domains for the gate's folds; k-means clusters when there are fewer than two."""
        cfg = self.config
        if not gates(cfg.fallback) or cfg.fallback_domain_folds == 0:
            return None
        if domains is not None and len(set(np.asarray(domains).tolist())) >= 2:
            return np.asarray(domains)
        from sklearn.cluster import KMeans

        k = min(cfg.fallback_domain_folds + 1, len(X) // 10)
        if k < 2:
            return None
        log.info("fallback gate: fewer than 2 training domains; %d k-means clusters stand in for them", k)
        labels = KMeans(n_clusters=k, n_init=3, random_state=cfg.seed).fit_predict(np.asarray(X, dtype=np.float64))
        return np.array([f"cluster{j}" for j in labels], dtype=object)

    def _fit_network(self, X, quality, cost, models, tokens, mask, model_init, **kwargs) -> CrossAttentionPredictor:
        return CrossAttentionPredictor(self.network_config).fit(X, quality, cost, models, tokens=tokens, mask=mask,
                                                                model_init=model_init, **kwargs)  # fmt: skip

    def _neighbours(self, X, quality) -> NeighbourIndex:
        return NeighbourIndex(X, quality, self.config.fallback_k, self.config.fallback_blend_k)

    def fit(self, X, quality, cost, models: Sequence[str], tokens=None, mask=None, model_init=None, domains=None,
            on_epoch=None, progress: bool = False) -> "GatedPredictor":  # fmt: skip
        """Choose the knobs on training-side folds, then fit the network and the index on every
        row (``on_epoch``/``progress`` report that last fit only)."""
        from router.data.splits import training_folds
        from router.rewards import cost_scale

        cfg = self.config
        if cfg.fallback not in MODES:  # TrainConfig validates it; a guard for hand-built configs
            raise ValueError(f"fallback: unknown mode {cfg.fallback!r}")
        X = np.asarray(X, dtype=np.float32)
        quality, cost = np.asarray(quality, dtype=np.float64), np.asarray(cost, dtype=np.float64)
        n = len(X)
        if domains is not None and len(domains) != n:
            raise ValueError(f"domains has {len(domains)} entries for {n} training rows")
        t0 = time.perf_counter()
        self.inner_, self.fitted_mode_ = [], cfg.fallback
        if cfg.fallback != "off":
            dom = self._fold_domains(X, domains)
            for label, tr, va in training_folds(n, dom, cfg.fallback_val_fraction, cfg.fallback_domain_folds, cfg.seed):
                net = self._fit_network(X[tr], quality[tr], cost[tr], models, _rows(tokens, tr), _rows(mask, tr), model_init)
                p = net.predict(X[va], tokens=_rows(tokens, va), mask=_rows(mask, va))
                index = self._neighbours(X[tr], quality[tr])
                d, q_knn = index.query(X[va])
                self.inner_.append(FoldData(label, p.quality, p.cost, q_knn, d, index.reference(), quality[tr].mean(axis=0),
                                            cost[tr].mean(axis=0), quality[va], cost[va], cost_scale(cost[tr])))  # fmt: skip
                log.info("fallback fold %s: %d fitting rows, %d held out", label, len(tr), len(va))
        self.network_ = self._fit_network(X, quality, cost, models, tokens, mask, model_init, on_epoch=on_epoch, progress=progress)
        self.neighbours_ = self._neighbours(X, quality)
        self.prior_, self.prior_cost_ = quality.mean(axis=0), cost.mean(axis=0)
        self._choose(cfg.fallback)
        self.train_seconds_ = time.perf_counter() - t0
        log.info("fallback: %s (%.1f s)", self.summary(), self.train_seconds_)
        return self

    def _choose(self, mode: str) -> None:
        if mode == "off":
            sel = {"mode": "off", "alpha": 1.0, "quantile": float("inf"), "scale": 0.0}
        else:
            if gates(mode) and not any(f.label != "random" for f in self.inner_):
                log.warning("fallback gate: no domain (or cluster) folds; the gate is chosen on the random carve alone")
            sel = choose(self.inner_, mode, self.config.fallback_objective)
        d0, s = absolute(self.neighbours_.reference(), sel["quantile"], sel["scale"])
        self.params_ = {"alpha": sel["alpha"], "quantile": sel["quantile"], "scale": sel["scale"], "d0": d0, "s": s}
        self.selection_ = sel

    def with_mode(self, mode: str, objective: str | None = None) -> "GatedPredictor":
        """A copy with the knobs re-chosen for ``mode`` (and ``objective``, default this one's) on
        the same networks and held-out predictions (``off`` = the final network alone)."""
        self._check_fitted()
        if mode not in MODES:
            raise ValueError(f"fallback: unknown mode {mode!r}; choose one of {MODES}")
        if mode != "off" and not self.inner_:
            raise ValueError("with_mode: no held-out fold predictions (a loaded artifact, or fitted with fallback 'off')")
        if gates(mode) and not gates(self.fitted_mode_ or "off"):
            raise ValueError(f"with_mode({mode!r}): fitted with fallback {self.fitted_mode_!r}, whose folds have no domain folds")
        other = copy.copy(self)
        other.config = self.config.model_copy(update={"fallback": mode, "fallback_objective": objective or self.config.fallback_objective})
        other._choose(mode)
        return other

    def summary(self) -> str:
        self._check_fitted()
        p, sel = self.params_, self.selection_
        mean = sel.get("mean_gate_val_aiq")
        best = f", mean validation AIQ {max(mean):.4f}" if mean else ""
        return (f"fallback {sel.get('mode')}: α = {p['alpha']}, gate quantile {p['quantile']} scale {p['scale']} "
                f"(d0 = {p['d0']:.4g}, s = {p['s']:.3g}) on folds {sel.get('folds', [])}{best}")  # fmt: skip

    # -- predicting ---------------------------------------------------------------------------
    def gate(self, X) -> tuple[np.ndarray, np.ndarray]:
        """(d, w): each prompt's mean distance to its nearest training prompts and its gate weight."""
        from router.gate import gate_weight

        self._check_fitted()
        d, _ = self.neighbours_.query(np.asarray(X, dtype=np.float32))
        return d, gate_weight(d, self.params_["d0"], self.params_["s"])

    def predict(self, X, tokens=None, mask=None) -> Prediction:
        self._check_fitted()
        X = np.asarray(X, dtype=np.float32)
        p = self.network_.predict(X, tokens=tokens, mask=mask)
        d, q_knn = self.neighbours_.query(X)
        # σ: how far apart the router's two estimates of each model's quality are, the network's and
        # the nearest training prompts' observed mean (the std of a two-member ensemble,
        # |q̂_net − q̂_knn| / 2). Reported as is, also where α or the gate leaves one of them out, as
        # the ensemble reports its members' spread before shrinkage (router.uncertainty).
        sigma = np.abs(p.quality - q_knn) / 2.0
        if self.params_["alpha"] == 1.0 and self.params_["d0"] == float("inf"):
            return Prediction(quality=p.quality, cost=p.cost, uncertainty=sigma)  # the network alone
        q, c, _ = combine(p.quality, p.cost, q_knn, d, self.prior_, self.prior_cost_, **{k: self.params_[k] for k in ("alpha", "d0", "s")})
        return Prediction(quality=q, cost=c, uncertainty=sigma)

    # -- artifacts ----------------------------------------------------------------------------
    def gate_state(self) -> dict:
        """What an artifact stores besides the network and the index (JSON-safe: ±∞ as strings)."""
        from router.model.ensemble import _json_float

        self._check_fitted()
        sel = {k: v for k, v in self.selection_.items() if k not in ("gate_grid",)}
        sel = {k: _json_float(v) if isinstance(v, float) else v for k, v in sel.items()}
        if "gate_grid" in self.selection_:
            sel["gate_grid"] = [[_json_float(q), s] for q, s in self.selection_["gate_grid"]]
        return {
            "train_config": self.config.model_dump(),
            "params": {k: _json_float(v) for k, v in self.params_.items()},
            "prior": [float(v) for v in self.prior_],
            "prior_cost": [float(v) for v in self.prior_cost_],
            "selection": sel,
            "train_seconds": self.train_seconds_,
        }

    @classmethod
    def from_gate_state(cls, state: dict, network: CrossAttentionPredictor, neighbours: NeighbourIndex) -> "GatedPredictor":
        from router.model.ensemble import _from_json_float

        params = {k: _from_json_float(v) for k, v in state["params"].items()}
        return cls.from_fitted(TrainConfig(**state["train_config"]), network, neighbours, params, state["prior"], state["prior_cost"],
                               state.get("selection"), float(state.get("train_seconds") or 0.0))  # fmt: skip

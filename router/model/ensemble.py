"""``EnsemblePredictor``: the uncertainty-aware cross-attention router as one fitted predictor.

K :class:`router.model.estimator.CrossAttentionPredictor` members (the same :class:`TrainConfig`,
seeds ``seed .. seed+K-1``) behind the decision rule of :mod:`router.uncertainty` (shrinkage of
q̂ toward each model's training prior with w = σ²/(σ² + τ²), or q̂ − κ·σ), with τ/κ chosen on
training-side folds only: a seeded validation carve and leave-one-domain-out folds of the training
domains. The selection itself is :class:`router.uncertainty.UncertaintyRouter`'s (one place for
it); this class gives it the surface the rest of the product reads from a predictor — ``models``,
``config``, ``c_ref_``, ``prices_``, ``input_dim``, ``needs_tokens`` — so a :class:`router.core.Router`,
its artifact (``router.model.artifact``) and the Serve app carry an ensemble like a single network.

``predict`` fills :attr:`router.prediction.Prediction.uncertainty` with σ, the std of the members'
predicted quality (before the rule is applied).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from router.model.config import TrainConfig, as_train_config
from router.model.estimator import CrossAttentionPredictor
from router.model.wrapping import WrapsNetworks
from router.prediction import Prediction, Predictor
from router.uncertainty import UncertaintyConfig, UncertaintyRouter


class _Member(Predictor):
    """One member as :class:`UncertaintyRouter` fits it: a CrossAttentionPredictor that gets the
    model-name initialisation from here (not through the wrapper's per-row keyword arguments)."""

    def __init__(self, predictor: CrossAttentionPredictor, model_init=None):
        self.predictor, self.model_init = predictor, model_init

    @property
    def models(self) -> tuple[str, ...]:
        return self.predictor.models

    def fit(self, X, quality, cost, models, tokens=None, mask=None) -> "_Member":
        self.predictor.fit(X, quality, cost, models, tokens=tokens, mask=mask, model_init=self.model_init)
        return self

    def predict(self, X, tokens=None, mask=None) -> Prediction:
        return self.predictor.predict(X, tokens=tokens, mask=mask)


def _json_float(v: float):
    return "inf" if math.isinf(v) else float(v)


def _from_json_float(v) -> float:
    return float("inf") if v == "inf" else float(v)


class EnsemblePredictor(WrapsNetworks, Predictor):
    """Unfitted until :meth:`fit` (or :meth:`from_fitted`, used by artifacts)."""

    wants_domains = True  # fit takes the training rows' domains (leave-one-domain-out folds)

    def __init__(self, config: TrainConfig | dict | None = None, uncertainty: UncertaintyConfig | dict | None = None):
        self.config = as_train_config(config)
        self.uncertainty = uncertainty if isinstance(uncertainty, UncertaintyConfig) else UncertaintyConfig(**(uncertainty or {}))
        # Fitted attributes.
        self.members_: list[CrossAttentionPredictor] = []
        self.value_: float | None = None  # the chosen τ (shrink) or κ (risk)
        self.prior_: np.ndarray | None = None  # (M,) mean training quality
        self.prior_cost_: np.ndarray | None = None  # (M,) mean training cost, USD
        self.selection_: dict = {}  # validation AIQ per fold and grid value (UncertaintyRouter.selection_)
        self.train_seconds_: float = 0.0
        self._rule: UncertaintyRouter | None = None

    @classmethod
    def from_fitted(cls, config: TrainConfig, uncertainty: UncertaintyConfig, members: Sequence[CrossAttentionPredictor],
                    value: float, prior, prior_cost, selection: dict | None = None, train_seconds: float = 0.0) -> "EnsemblePredictor":  # fmt: skip
        pred = cls(config, uncertainty)
        pred.members_ = list(members)
        pred.value_, pred.prior_, pred.prior_cost_ = float(value), np.asarray(prior, dtype=np.float64), np.asarray(prior_cost, dtype=np.float64)
        pred.selection_, pred.train_seconds_ = dict(selection or {}), float(train_seconds)
        pred._check_consistent()
        return pred

    # -- facts (the surface CrossAttentionPredictor has: router.model.wrapping) -----------------
    def _first_network(self):
        return self.members_[0] if self.members_ else None

    @property
    def best_epoch_(self) -> list[int | None]:
        return [m.best_epoch_ for m in self.members_]

    def _check_fitted(self) -> None:
        if not self.members_ or self.value_ is None:
            raise RuntimeError("EnsemblePredictor is not fitted: call fit() first")

    def _check_consistent(self) -> None:
        self._check_fitted()
        first = self.members_[0]
        for k, m in enumerate(self.members_[1:], start=1):
            if m.models != first.models or m.input_dim != first.input_dim or m.config.variant != first.config.variant:
                raise ValueError(f"ensemble member {k} has another pool, input size or variant than member 0")
        if np.shape(self.prior_) != (len(first.models),) or np.shape(self.prior_cost_) != (len(first.models),):
            raise ValueError(f"ensemble priors must have one entry per model ({len(first.models)})")

    # -- fitting ------------------------------------------------------------------------------
    def _wrapper(self) -> UncertaintyRouter:
        """The rule (fitted state copied in), so prediction runs :mod:`router.uncertainty`'s code."""
        if self._rule is None:
            rule = UncertaintyRouter(factory=None, config=self.uncertainty, seed=self.config.seed)
            rule.members_ = [_Member(m) for m in self.members_]
            rule.value_, rule.prior_, rule.prior_cost_ = self.value_, self.prior_, self.prior_cost_
            self._rule = rule
        return self._rule

    def fit(self, X, quality, cost, models: Sequence[str], tokens=None, mask=None, model_init=None, domains=None,
            on_epoch=None, progress: bool = False) -> "EnsemblePredictor":  # fmt: skip
        """Choose τ/κ on training-side folds (a seeded carve + leave-one-domain-out folds of
        ``domains``, the training rows' domains), then fit the K members on every row.
        ``on_epoch``/``progress`` are not passed to the members (K × folds trainings); the
        choice is in :meth:`summary`."""
        cfg = self.config

        def factory(seed: int) -> _Member:
            return _Member(CrossAttentionPredictor(cfg.model_copy(update={"seed": seed})), model_init)

        rule = UncertaintyRouter(factory, self.uncertainty, seed=cfg.seed)
        kwargs = {} if tokens is None else {"tokens": np.asarray(tokens), "mask": None if mask is None else np.asarray(mask)}
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        rule.fit(np.asarray(X, dtype=np.float32), quality, cost, models, domains=domains, **kwargs)
        self.members_ = [m.predictor for m in rule.members_]
        self.value_, self.prior_, self.prior_cost_ = rule.value_, rule.prior_, rule.prior_cost_
        self.selection_, self.train_seconds_ = rule.selection_, rule.fit_seconds_
        self._rule = None
        return self

    def summary(self) -> str:
        """One line: the chosen τ/κ and the training-side validation it was chosen on."""
        self._check_fitted()
        name = "τ" if self.uncertainty.rule == "shrink" else "κ"
        sel = self.selection_
        per = ", ".join(f"{v}: {a:.4f}" for v, a in zip(sel.get("grid", []), sel.get("mean_val_aiq", [])))
        return (f"ensemble of {len(self.members_)}, {name} = {self.value_} chosen on folds {sel.get('folds')} "
                f"(mean validation AIQ per {name}: {per}), {self.train_seconds_:.1f} s")  # fmt: skip

    # -- predicting ---------------------------------------------------------------------------
    def predict(self, X, tokens=None, mask=None) -> Prediction:
        """Quality after the rule, the members' mean cost, and σ in ``uncertainty``."""
        self._check_fitted()
        kwargs = {} if tokens is None else {"tokens": tokens, "mask": mask}
        return self._wrapper().predict(np.asarray(X, dtype=np.float32), **kwargs)

    # -- artifacts ----------------------------------------------------------------------------
    def rule_state(self) -> dict:
        """What an artifact stores besides the members (JSON-safe: τ = ∞ is the string "inf")."""
        self._check_fitted()
        sel = dict(self.selection_)
        if "grid" in sel:
            sel["grid"] = [_json_float(v) for v in sel["grid"]]
        if "chosen" in sel:
            sel["chosen"] = _json_float(sel["chosen"])
        return {
            "uncertainty": {**self.uncertainty.model_dump(), "grid": None if self.uncertainty.grid is None else [_json_float(v) for v in self.uncertainty.grid]},
            "value": _json_float(self.value_),
            "prior": [float(v) for v in self.prior_],
            "prior_cost": [float(v) for v in self.prior_cost_],
            "selection": sel,
            "train_seconds": self.train_seconds_,
        }

    @classmethod
    def from_rule_state(cls, state: dict, members: Sequence[CrossAttentionPredictor]) -> "EnsemblePredictor":
        unc = dict(state["uncertainty"])
        if unc.get("grid") is not None:
            unc["grid"] = [_from_json_float(v) for v in unc["grid"]]
        sel = dict(state.get("selection") or {})
        if "grid" in sel:
            sel["grid"] = [_from_json_float(v) for v in sel["grid"]]
        if "chosen" in sel:
            sel["chosen"] = _from_json_float(sel["chosen"])
        return cls.from_fitted(members[0].config, UncertaintyConfig(**unc), members, _from_json_float(state["value"]),
                               state["prior"], state["prior_cost"], sel, float(state.get("train_seconds") or 0.0))  # fmt: skip

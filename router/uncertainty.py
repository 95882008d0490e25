"""Uncertainty-aware routing as a wrapper around any predictor: a small deep ensemble and a
decision rule that falls back to each model's training prior where the ensemble disagrees.

* **Ensemble**: K members built by ``factory(seed)`` for seeds ``seed .. seed+K-1`` (for the
  cross-attention router: the registry's ``cross_attention`` family, so its training code is used
  as is), all fitted on the same rows (optionally on bootstrap resamples of them, ``bagging``, for
  members without randomness of their own). Per prompt and model: the mean q̂ and the std σ of
  the members' predicted quality; cost is the members' mean.
* **Rule** ``shrink`` (default): q̃ = (1 − w)·q̂ + w·p̄_m with w = σ² / (σ² + τ²) and p̄_m the
  model's mean training quality. τ = ∞ is the plain ensemble; τ = 0 is full shrinkage, where every
  prompt gets the same q̃ = p̄ and the same cost, each model's mean training cost (a per-prompt
  cost estimate such as cross-attention's would otherwise still move the choice), so the router
  sends all prompts to the model best on the training rows at that λ: the deployable no-router
  row, and that floor is in the grid by design.
  Rule ``risk``: q̃ = q̂ − κ·σ (κ = 0 is the plain ensemble).
* **Choosing τ / κ** on the TRAINING side only: the folds are a seeded validation carve of the
  training rows and up to ``domain_folds`` leave-one-domain-out folds of the training domains
  (when ``fit`` gets ``domains``); on each fold an ensemble is fitted on the rest and every grid
  value is scored by the AIQ (paper form) of its λ sweep under ``reward`` on the held-out rows; the
  value with the best mean over folds wins (ties: the first in the grid). Then the ensemble is
  refitted on all training rows. Cost: (folds + 1) × K fits of the base predictor.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Literal, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from router.prediction import Prediction, Predictor

log = logging.getLogger(__name__)

# τ for ``shrink`` (inf = no shrinkage, 0 = the training prior) and κ for ``risk``.
SHRINK_GRID = (float("inf"), 0.3, 0.1, 0.05, 0.02, 0.01, 0.0)
RISK_GRID = (0.0, 0.5, 1.0, 2.0, 4.0)


class UncertaintyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    members: int = Field(5, ge=1, le=64, description="Ensemble size K (members differ by seed).")
    rule: Literal["shrink", "risk"] = Field("shrink", description="shrink toward the training prior, or q̂ − κ·σ.")
    grid: list[float] | None = Field(None, description="τ (shrink) or κ (risk) candidates; default SHRINK_GRID / RISK_GRID.")
    reward: str = Field("linear", description="Reward whose λ-sweep AIQ scores the candidates on validation.")
    val_fraction: float = Field(0.2, gt=0.0, lt=0.9, description="Seeded validation carve of the training rows (one fold).")
    domain_folds: int = Field(3, ge=0, le=100, description="At most this many leave-one-domain-out folds of the training domains.")
    bagging: bool = Field(False, description="Fit each member on a bootstrap resample of the rows (for deterministic members).")


def adjust(mean: np.ndarray, std: np.ndarray, prior: np.ndarray, rule: str, value: float) -> np.ndarray:
    """q̃ under ``rule`` with τ or κ = ``value`` (see the module docstring)."""
    if rule == "risk":
        return np.clip(mean - value * std, 0.0, 1.0)
    if np.isinf(value):
        return mean
    if value == 0:
        return np.broadcast_to(prior, mean.shape).copy()
    var = std**2
    w = var / (var + value**2)
    return (1.0 - w) * mean + w * prior


class UncertaintyRouter(Predictor):
    """An ensemble of ``factory(seed)`` predictors with the shrinkage/risk decision rule."""

    wants_domains = True  # the runner passes the training rows' domains to fit
    uses_prompts = True  # ... and the prompts, handed on to members that read them (token features)

    def __init__(self, factory: Callable[[int], Predictor], config: UncertaintyConfig | dict | None = None, seed: int = 0):
        self.factory = factory
        self.config = config if isinstance(config, UncertaintyConfig) else UncertaintyConfig(**(config or {}))
        self.seed = seed
        self.members_: list[Predictor] = []

    @property
    def grid(self) -> tuple[float, ...]:
        if self.config.grid is not None:
            return tuple(float(v) for v in self.config.grid)
        return SHRINK_GRID if self.config.rule == "shrink" else RISK_GRID

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(getattr(self.members_[0], "models", ())) if self.members_ else ()

    def _fit_members(self, X, q, c, models, kwargs, seed_offset: int = 0) -> list[Predictor]:
        n = len(X)
        members = []
        for k in range(self.config.members):
            seed = self.seed + k
            rows = np.arange(n)
            if self.config.bagging:
                rows = np.random.default_rng([self.seed, k, seed_offset]).integers(0, n, n)
            kw = {key: v[rows] if isinstance(v, np.ndarray) and len(v) == n else v for key, v in kwargs.items()}
            member = self.factory(seed)
            members.append(member.fit(X[rows], q[rows], c[rows], models, **_for(member, kw)))
        return members

    @staticmethod
    def _predict_members(members, X, kwargs) -> tuple[Prediction, np.ndarray]:
        preds = [m.predict(X, **_for(m, kwargs)) for m in members]
        qs = np.stack([p.quality for p in preds])
        return Prediction(quality=qs.mean(axis=0), cost=np.mean([p.cost for p in preds], axis=0)), qs.std(axis=0)

    def fit(self, X, quality, cost, models: Sequence[str], domains=None, prompts=None, **kwargs) -> "UncertaintyRouter":
        from router.evaluation.metrics import aiq_paper, ndch
        from router.evaluation.sweep import sweep
        from router.data.splits import training_folds
        from router.rewards import cost_scale

        X = np.asarray(X)
        if prompts is not None:  # an array, so that the folds below subset it like the others
            kwargs["prompts"] = np.asarray(list(prompts), dtype=object)
        quality = np.asarray(quality, dtype=np.float64)
        cost = np.asarray(cost, dtype=np.float64)
        n = len(X)
        cfg = self.config
        t0 = time.perf_counter()
        folds = training_folds(n, domains, cfg.val_fraction, cfg.domain_folds, self.seed)
        scores = np.zeros((len(folds), len(self.grid)))
        for f, (label, tr, va) in enumerate(folds):
            sub = lambda rows: {k: v[rows] if isinstance(v, np.ndarray) and len(v) == n else v for k, v in kwargs.items()}  # noqa: E731
            members = self._fit_members(X[tr], quality[tr], cost[tr], models, sub(tr), seed_offset=f + 1)
            mean, std = self._predict_members(members, X[va], sub(va))
            prior, prior_cost = quality[tr].mean(axis=0), cost[tr].mean(axis=0)
            c_ref = cost_scale(cost[tr])
            for g, value in enumerate(self.grid):
                pred = self._decide(mean, std, prior, prior_cost, value)
                scores[f, g] = aiq_paper(ndch(np.array(sweep(pred, quality[va], cost[va], cfg.reward, c_ref=c_ref))[:, :2]))
            log.info("uncertainty fold %s: AIQ per %s %s", label, "τ" if cfg.rule == "shrink" else "κ", np.round(scores[f], 4).tolist())
        best = int(np.argmax(scores.mean(axis=0)))
        self.value_ = self.grid[best]
        self.selection_ = {
            "rule": cfg.rule,
            "grid": list(self.grid),
            "folds": [label for label, _, _ in folds],
            "val_aiq": scores.tolist(),
            "mean_val_aiq": scores.mean(axis=0).tolist(),
            "chosen": self.value_,
        }
        self.prior_, self.prior_cost_ = quality.mean(axis=0), cost.mean(axis=0)
        self.members_ = self._fit_members(X, quality, cost, models, kwargs)
        self.fit_seconds_ = time.perf_counter() - t0
        log.info("uncertainty: chose %s = %s on %d training-side folds (%.1f s)", "τ" if cfg.rule == "shrink" else "κ", self.value_, len(folds), self.fit_seconds_)
        return self

    def predict_uncertainty(self, X, **kwargs) -> tuple[Prediction, np.ndarray]:
        """The ensemble's mean prediction and the (N, M) std of the members' predicted quality."""
        if not self.members_:
            raise RuntimeError("UncertaintyRouter is not fitted")
        return self._predict_members(self.members_, X, kwargs)

    def _decide(self, mean: Prediction, std: np.ndarray, prior, prior_cost, value: float) -> Prediction:
        quality = adjust(mean.quality, std, prior, self.config.rule, value)
        full = self.config.rule == "shrink" and value == 0
        cost = np.broadcast_to(prior_cost, mean.cost.shape).copy() if full else mean.cost
        # The members' disagreement is reported as is (also where the rule shrank it away).
        return Prediction(quality=quality, cost=cost, uncertainty=std)

    def predict(self, X, prompts=None, **kwargs) -> Prediction:
        if prompts is not None:
            kwargs["prompts"] = list(prompts)
        mean, std = self.predict_uncertainty(X, **kwargs)
        return self._decide(mean, std, self.prior_, self.prior_cost_, self.value_)


def _for(member, kwargs: dict) -> dict:
    """``kwargs`` without the prompts for a member that does not read them."""
    return kwargs if getattr(member, "uses_prompts", False) else {k: v for k, v in kwargs.items() if k != "prompts"}


def _build(ctx, family: str, rows: dict[str, str]):
    from dataclasses import replace

    from router.registry import RouterEntry, family_builder

    opts = dict((ctx.options or {}).get("uncertainty") or {})
    opts.setdefault("reward", next(iter(rows.values())))
    base = family_builder(family)

    # Members are the family's plain predictors (no default fallback around each one: the
    # ensemble's shrinkage is its own fallback).
    member_opts = {**(ctx.options or {}), "network_only": True}

    def factory(seed: int) -> Predictor:
        return base(replace(ctx, seed=seed, artifact=None, options=member_opts))[0].predictor

    return [RouterEntry(UncertaintyRouter(factory, UncertaintyConfig(**opts), seed=ctx.seed), rows)]


def build_cross_attention_family(ctx):
    """``cross_attention_unc``: K cross-attention routers (the registry's family, seeds ctx.seed+k),
    shrinkage chosen for the linear reward; options in ``ctx.options["uncertainty"]``."""
    return _build(ctx, "cross_attention", {"cross_attention_unc_linear": "linear"})


def build_mf_family(ctx):
    """``mf_unc``: the same wrapper around the matrix-factorisation baseline (cheap; RouterBench's
    reward)."""
    return _build(ctx, "mf", {"mf_unc": "routerbench"})

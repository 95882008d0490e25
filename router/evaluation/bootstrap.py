"""Paired bootstrap over test prompts: how sure is a difference in AIQ between two routers?

One *unit* is one test set with every row's choices along its λ sweep (``sweep_choices``): a
seed of an in-distribution run, or one held-out domain of a leave-one-domain-out run. A resample
draws the unit's N test prompts with replacement as a count vector w (N,); the resampled sweep of
a row is then ``(w · chosen cost, w · chosen quality / N)`` at every λ, one matrix product for all
resamples and all λ (no decision is re-run: the router's choice of a prompt does not depend on
which other prompts are in the test set). The zero router is recomputed from the same resample
(the single models' resampled points, then their hull), since it too picks its models on the test
rows. All rows of a unit share each resample (that is what makes the differences *paired*); each
unit is resampled on its own (stratified by seed and by held-out domain).

A statistic over several units (mean over seeds, mean over held-out domains) is the mean of the
per-unit resampled AIQs. The reported interval is the percentile interval of the resampled
difference; ``verdict`` is ``better``/``worse`` when it excludes 0 and ``tie`` when it contains 0.
Only the paper form of AIQ is bootstrapped (RouterBench's form depends on the common c_max of the
compared set, which would move with every resample).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from router.evaluation.metrics import aiq_paper_batch

ZERO = "zero_router"


class BootstrapConfig(BaseModel):
    """How the paired bootstrap is run."""

    model_config = ConfigDict(extra="forbid")

    resamples: int = Field(1000, ge=0, le=100_000, description="Bootstrap resamples of the test prompts; 0 = no bootstrap.")
    seed: int = Field(0, ge=0, description="Seed of the resampling (results are reproducible for a given seed).")
    confidence: float = Field(0.95, gt=0.0, lt=1.0, description="Coverage of the percentile interval.")
    chunk: int = Field(250, ge=1, le=100_000, description="Resamples drawn at once (bounds memory: chunk × N counts).")


@dataclass
class Unit:
    """One test set: true quality/cost (N, M) and each row's (L, N) chosen model indices."""

    quality: np.ndarray
    cost: np.ndarray
    choices: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self):
        self.quality = np.asarray(self.quality, dtype=np.float64)
        self.cost = np.asarray(self.cost, dtype=np.float64)
        if self.quality.ndim != 2 or self.quality.shape != self.cost.shape or len(self.quality) == 0:
            raise ValueError(f"a unit needs equal non-empty (N, M) quality and cost, got {self.quality.shape}, {self.cost.shape}")


def _counts(rng: np.random.Generator, b: int, n: int) -> np.ndarray:
    """(b, n) multinomial counts: how often each prompt is drawn in each of b resamples of size n."""
    idx = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
    return np.bincount(idx.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)


def unit_resampled_aiq(unit: Unit, rows: Sequence[str], resamples: int, rng: np.random.Generator, chunk: int = 250) -> dict[str, np.ndarray]:
    """Resampled paper-form AIQ (resamples,) of each of ``rows`` and of the zero router (key ``ZERO``)."""
    n = len(unit.quality)
    idx = np.arange(n)
    chosen = {}
    for row in rows:
        ch = np.asarray(unit.choices[row])
        if ch.ndim != 2 or ch.shape[1] != n:
            raise ValueError(f"row {row!r}: choices must be (L, {n}), got {ch.shape}")
        chosen[row] = (unit.cost[idx, ch].T, unit.quality[idx, ch].T)  # (N, L) each
    out = {r: [] for r in [*rows, ZERO]}
    done = 0
    while done < resamples:
        b = min(chunk, resamples - done)
        w = _counts(rng, b, n)
        out[ZERO].append(aiq_paper_batch(w @ unit.cost, w @ unit.quality / n))
        for row, (cc, qq) in chosen.items():
            out[row].append(aiq_paper_batch(w @ cc, w @ qq / n))
        done += b
    return {r: np.concatenate(v) if v else np.zeros(0) for r, v in out.items()}


def resampled_aiq(units: Sequence[Unit], rows: Sequence[str], cfg: BootstrapConfig) -> dict[str, np.ndarray]:
    """Per row (and ``ZERO``): the mean over units of the units' resampled AIQs, (resamples,)."""
    if not units:
        raise ValueError("the bootstrap needs at least one unit")
    total: dict[str, np.ndarray] = {}
    for i, unit in enumerate(units):
        # One stream per unit, so adding a unit never changes another unit's resamples.
        rng = np.random.default_rng([cfg.seed, i])
        for row, values in unit_resampled_aiq(unit, rows, cfg.resamples, rng, cfg.chunk).items():
            total[row] = total.get(row, 0.0) + values
    return {row: v / len(units) for row, v in total.items()}


def interval(diff_point: float, resampled_diff: np.ndarray, confidence: float) -> dict:
    """The point difference, its percentile interval and the verdict (a tie when it contains 0)."""
    alpha = (1.0 - confidence) / 2.0
    lo, hi = (float(x) for x in np.percentile(resampled_diff, [100 * alpha, 100 * (1 - alpha)]))
    verdict = "better" if lo > 0 else "worse" if hi < 0 else "tie"
    # + 0.0 turns a -0.0 (identical rows) into 0.0.
    return {"diff": float(diff_point) + 0.0, "lo": lo + 0.0, "hi": hi + 0.0, "verdict": verdict}


def compare_rows(
    units: Sequence[Unit],
    point_aiq: Mapping[str, float],
    baselines: Sequence[str],
    floors: Mapping[str, str] | None = None,
    cfg: BootstrapConfig | None = None,
) -> dict:
    """Paired intervals for every row of ``point_aiq`` (row -> AIQ averaged over the units, incl.
    ``ZERO``): vs the best baseline (the baseline row other than itself with the highest AIQ), vs
    the zero router, and vs its floor row (``floors``: row -> the deployable no-router row of its
    reward) when given. Returns ``{"resamples", "seed", "confidence", "best_baseline", "rows":
    {row: {"vs_best_baseline": {"baseline", "diff", "lo", "hi", "verdict"}, "vs_zero_router": {...},
    "vs_no_router": {...}}}}``; rows in ``floors``' values are compared only to the zero router."""
    cfg = cfg or BootstrapConfig()
    floors = dict(floors or {})
    floor_rows = set(floors.values())
    rows = [r for r in point_aiq if r != ZERO]
    base = [r for r in baselines if r in point_aiq]
    best = max(base, key=lambda r: point_aiq[r]) if base else None
    out = {"resamples": cfg.resamples, "seed": cfg.seed, "confidence": cfg.confidence, "best_baseline": best, "rows": {}}
    if cfg.resamples == 0:
        return out
    boot = resampled_aiq(units, rows, cfg)

    def vs(a: str, b: str) -> dict:
        return interval(point_aiq[a] - point_aiq[b], boot[a] - boot[b], cfg.confidence)

    for row in rows:
        entry = {"vs_zero_router": vs(row, ZERO)}
        if row not in floor_rows:
            others = [r for r in base if r != row]
            if others:
                b = max(others, key=lambda r: point_aiq[r])
                entry["vs_best_baseline"] = {"baseline": b, **vs(row, b)}
            if row in floors and floors[row] in point_aiq:
                entry["vs_no_router"] = {"no_router": floors[row], **vs(row, floors[row])}
        out["rows"][row] = entry
    return out


def format_intervals(boot: dict, rows: Sequence[str] | None = None) -> list[str]:
    """Printable lines: each row's paired differences, ``tie`` where the interval contains 0."""
    if not boot.get("rows"):
        return []
    pct = round(100 * boot["confidence"])
    lines = [f"paired bootstrap over test prompts ({boot['resamples']} resamples, {pct}% intervals of the AIQ difference):"]
    for row, e in boot["rows"].items():
        if rows is not None and row not in rows:
            continue
        parts = []
        for key, label in (("vs_best_baseline", None), ("vs_no_router", None), ("vs_zero_router", "zero router")):
            if key not in e:
                continue
            d = e[key]
            name = label or d.get("baseline") or d.get("no_router")
            parts.append(f"vs {name} {d['diff']:+.4f} [{d['lo']:+.4f}, {d['hi']:+.4f}] {d['verdict']}")
        lines.append(f"  {row}: " + "; ".join(parts))
    return lines

"""Several seeds of one evaluation, summarised as mean ± std.

A run with N seeds keeps the single-seed ``results.json`` keys, with every number replaced by
its mean over the seeds and two siblings: ``<key>_std`` (sample standard deviation, ddof 1; 0 for
one seed) and ``<key>_seeds`` (the per-seed values, in seed order). So a reader of ``aiq`` gets the
mean, and the per-seed results stay under ``runs``.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from router.calibration import summary_keys

ROUTER_KEYS = ("aiq", "aiq_routerbench", "max_quality", "cost_at_max_quality")
ZERO_KEYS = ("aiq", "aiq_routerbench")
ORACLE_KEYS = ("quality", "cost")


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def spread(dicts: Sequence[Mapping], keys: Sequence[str]) -> dict:
    """``{key: mean, key_std: std, key_seeds: [...]}`` over ``dicts`` (one per seed)."""
    out = {}
    for k in keys:
        values = [float(d[k]) for d in dicts]
        out[k], out[f"{k}_std"] = mean_std(values)
        out[f"{k}_seeds"] = values
    return out


def aggregate_runs(runs: Sequence[dict], seeds: Sequence[int]) -> dict:
    """The mean ± std ``results.json`` of per-seed results (same rows in every run)."""
    if not runs or len(runs) != len(seeds):
        raise ValueError(f"need one result per seed, got {len(runs)} results for {len(seeds)} seeds")
    first = runs[0]
    out = {
        "dataset": first["dataset"],
        "n_train": first["n_train"],
        "n_test": first["n_test"],
        "models": first["models"],
        "seeds": list(seeds),
        "routers": {row: spread([r["routers"][row] for r in runs], ROUTER_KEYS) for row in first["routers"]},
        "no_router": {
            row: {"reward": v["reward"], **spread([r["no_router"][row] for r in runs], ROUTER_KEYS)}
            for row, v in first.get("no_router", {}).items()
        },
        "zero_router": spread([r["zero_router"] for r in runs], ZERO_KEYS),
        "oracle": spread([r["oracle"] for r in runs], ORACLE_KEYS),
        "single_models": {m: spread([r["single_models"][m] for r in runs], ORACLE_KEYS) for m in first["single_models"]},
    }
    if "calibration" in first:
        out["calibration"] = {}
        for row in first["calibration"]:
            reports = [r["calibration"][row] for r in runs]
            out["calibration"][row] = spread(reports, summary_keys(reports))
    out["runs"] = list(runs)
    return out


def domain_mean(per_domain: Mapping[str, Mapping], keys: Sequence[str]) -> dict:
    """Unweighted mean over domains of ``keys``; when every domain has ``<key>_seeds``, also the
    std over seeds of the per-seed domain mean (``<key>_std``) and those means (``<key>_seeds``)."""
    domains = list(per_domain)
    out = {}
    for k in keys:
        out[k] = float(np.mean([per_domain[d][k] for d in domains]))
        if all(f"{k}_seeds" in per_domain[d] for d in domains):
            by_seed = np.mean([per_domain[d][f"{k}_seeds"] for d in domains], axis=0)
            out[f"{k}_std"] = mean_std(by_seed)[1]
            out[f"{k}_seeds"] = [float(x) for x in by_seed]
    return out


def fmt(entry: Mapping, key: str, width: int = 7, digits: int = 4) -> str:
    """``0.6221`` or ``0.6221±0.0012`` when the entry carries a std."""
    value = entry.get(key)
    if value is None:
        return f"{'':>{width}}"
    text = f"{value:.{digits}f}"
    if f"{key}_std" in entry and len(entry.get(f"{key}_seeds", ())) > 1:
        text += f"±{entry[f'{key}_std']:.{digits}f}"
    return f"{text:>{width}}"

"""Evaluate router families on a train/test split the RouterBench way and write the results.

``evaluate`` embeds the train and test prompts once (through the cached encoder), builds each
family from ``router.registry``, fits it (unless it arrives fitted), predicts the test set once and
sweeps every result row over its reward's λ grid. Each row is summarised by its NDCH, AIQ in both
forms (``router.evaluation.metrics``; the headline ``aiq`` is the paper's form (a)), its maximum
quality and the cost of it; the run adds every single model, the zero router and the oracle.

Costs in the results are TOTAL USD over the test set (RouterBench's convention); qualities are
means over the test set.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from router.data.splits import leave_one_domain_out
from router.data.table import DataValidationError, RoutingTable
from router.evaluation.metrics import aiq_paper, aiq_routerbench, common_c_max, max_quality, ndch, zero_router
from router.oracle import oracle_point
from router.evaluation.sweep import sweep
from router.prediction import Prediction
from router.registry import BuildContext, family_builder
from router.rewards import cost_scale

log = logging.getLogger(__name__)

# A grid for every row, or one per reward name (rows whose reward is missing use its default).
Grid = Sequence[float] | Mapping[str, Sequence[float]] | None


def _grid_for(grid: Grid, reward: str):
    if grid is None:
        return None
    if isinstance(grid, Mapping):
        return grid.get(reward)
    return grid


def _align(pred: Prediction, predictor_models: Sequence[str], models: Sequence[str], row: str) -> Prediction:
    """Columns of ``pred`` in the order of ``models`` (a pre-fitted predictor may list the pool in
    another order)."""
    pm = list(predictor_models) if predictor_models else list(models)
    if pm == list(models):
        return pred
    if sorted(pm) != sorted(models):
        raise DataValidationError(f"router {row}: its models {pm} are not the data's pool {list(models)}")
    idx = [pm.index(m) for m in models]
    return Prediction(quality=pred.quality[:, idx], cost=pred.cost[:, idx])


def evaluate(
    train: RoutingTable,
    test: RoutingTable,
    router_names: Sequence[str],
    encoder,
    ctx: BuildContext | None = None,
    grid: Grid = None,
    dataset: str | None = None,
) -> dict:
    """The ``results.json`` dict of one train/test evaluation: ``{"dataset", "n_train", "n_test",
    "models", "routers": {row: {"aiq", "aiq_routerbench", "max_quality", "cost_at_max_quality",
    "points": [[total cost, mean quality, λ], ...]}}, "zero_router": {"aiq", "aiq_routerbench",
    "points": its hull [[cost, quality], ...]}, "oracle": {"quality", "cost"}, "single_models":
    {model: {"quality", "cost"}}}``. ``grid``: λ values for every row, or a dict reward -> values."""
    ctx = ctx or BuildContext()
    # Families that embed more than the prompts (the cross-attention router embeds model names) use
    # the same encoder as the run.
    ctx = replace(ctx, options={"encoder": encoder, **(ctx.options or {})})
    if len(train) == 0 or len(test) == 0:
        raise DataValidationError(f"empty {'train' if len(train) == 0 else 'test'} set")
    models = list(train.models)
    if sorted(test.models) != sorted(models):
        raise DataValidationError(f"train and test pools differ: {models} vs {list(test.models)}")
    test = test.with_models(models)
    builders = [(name, family_builder(name)) for name in router_names]  # unknown names fail before work

    t0 = time.perf_counter()
    X_train = encoder.embed(train.prompts)
    X_test = encoder.embed(test.prompts)
    log.info("embedded %d train + %d test prompts in %.1fs", len(train), len(test), time.perf_counter() - t0)
    q_train, c_train = train.quality, train.cost
    q_test, c_test = test.quality, test.cost
    c_ref = cost_scale(c_train)

    sweeps: dict[str, np.ndarray] = {}
    for family, build in builders:
        for entry in build(ctx):
            label = ",".join(entry.rows)
            t0 = time.perf_counter()
            # A predictor that reads the prompts (token features) says so with ``uses_prompts``.
            reads = getattr(entry.predictor, "uses_prompts", False)
            if not entry.fitted:
                log.info("fitting %s on %d prompts ...", label, len(train))
                entry.predictor.fit(X_train, q_train, c_train, models, **({"prompts": train.prompts} if reads else {}))
            raw = entry.predictor.predict(X_test, **({"prompts": test.prompts} if reads else {}))
            pred = _align(raw, getattr(entry.predictor, "models", ()), models, label)
            for row, reward in entry.rows.items():
                if row in sweeps:
                    raise ValueError(f"two routers produce the result row {row!r}")
                sweeps[row] = np.array(sweep(pred, q_test, c_test, reward, _grid_for(grid, reward), c_ref))
            log.info("%s: fitted and swept in %.1fs", label, time.perf_counter() - t0)

    single = np.stack([c_test.sum(axis=0), q_test.mean(axis=0)], axis=1)
    zero_hull = zero_router(single)
    hulls = {row: ndch(pts[:, :2]) for row, pts in sweeps.items()}
    # RouterBench's form compares hulls at one c_max: that of all routers AND the zero router here.
    c_max = common_c_max([*hulls.values(), zero_hull])
    rb = dict(zip([*hulls, "__zero__"], aiq_routerbench([*hulls.values(), zero_hull], c_max)))

    routers = {}
    for row, pts in sweeps.items():
        best_q, best_c = max_quality(pts[:, :2])
        routers[row] = {
            "aiq": aiq_paper(hulls[row]),
            "aiq_routerbench": rb[row],
            "max_quality": best_q,
            "cost_at_max_quality": best_c,
            "points": pts.tolist(),
        }
    oq, oc = oracle_point(q_test, c_test)
    return {
        "dataset": dataset or train.name,
        "n_train": len(train),
        "n_test": len(test),
        "models": models,
        "routers": routers,
        "zero_router": {"aiq": aiq_paper(zero_hull), "aiq_routerbench": rb["__zero__"], "points": zero_hull.tolist()},
        "oracle": {"quality": float(oq), "cost": float(oc)},
        "single_models": {m: {"quality": float(q), "cost": float(c)} for m, (c, q) in zip(models, single)},
    }


# -- cross-domain -------------------------------------------------------------------------------

SUMMARY_ROUTER_KEYS = ("aiq", "aiq_routerbench", "max_quality", "cost_at_max_quality")


def domain_dirname(domain: str) -> str:
    """A file-system-safe directory name for a domain."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", domain) or "_"


def summarise_cross_domain(per_domain: Mapping[str, dict], dataset: str, models: Sequence[str]) -> dict:
    """The summary ``results.json`` of a leave-one-domain-out run: per domain the headline numbers
    of every router, the zero router and the oracle, and their unweighted mean over domains."""

    def mean(values):
        return float(np.mean(values))

    domains = list(per_domain)
    rows = list(next(iter(per_domain.values()))["routers"]) if per_domain else []
    summary_domains = {
        d: {
            "n_train": r["n_train"],
            "n_test": r["n_test"],
            "routers": {row: {k: r["routers"][row][k] for k in SUMMARY_ROUTER_KEYS} for row in r["routers"]},
            "zero_router": {k: r["zero_router"][k] for k in ("aiq", "aiq_routerbench")},
            "oracle": dict(r["oracle"]),
        }
        for d, r in per_domain.items()
    }
    return {
        "dataset": dataset,
        "models": list(models),
        "cross_domain": {
            "domains": summary_domains,
            "mean": {
                "routers": {
                    row: {k: mean([summary_domains[d]["routers"][row][k] for d in domains]) for k in SUMMARY_ROUTER_KEYS}
                    for row in rows
                },
                "zero_router": {
                    k: mean([summary_domains[d]["zero_router"][k] for d in domains]) for k in ("aiq", "aiq_routerbench")
                },
                "oracle": {k: mean([summary_domains[d]["oracle"][k] for d in domains]) for k in ("quality", "cost")},
            },
        },
    }


def evaluate_cross_domain(
    table: RoutingTable,
    router_names: Sequence[str],
    encoder,
    ctx: BuildContext | None = None,
    grid: Grid = None,
    dataset: str | None = None,
) -> tuple[dict, dict[str, dict]]:
    """Leave-one-domain-out: for every domain, train on all others and test on it.
    Returns (summary, {domain: per-domain results})."""
    per_domain: dict[str, dict] = {}
    folds = list(leave_one_domain_out(table))
    for i, (domain, train, test) in enumerate(folds, 1):
        log.info("[%d/%d] held-out domain %s: %d train, %d test", i, len(folds), domain, len(train), len(test))
        per_domain[domain] = evaluate(train, test, router_names, encoder, ctx, grid, dataset=f"{dataset or table.name}[{domain}]")
    return summarise_cross_domain(per_domain, dataset or table.name, table.models), per_domain


# -- output -------------------------------------------------------------------------------------


def _fmt_cost(x: float) -> str:
    return f"{x:.4g}"


def format_table(results: dict) -> str:
    """The table ``router eval`` prints: routers, then the zero router, the oracle and single models."""
    w = max(34, *(len(name) + 1 for name in [*results["routers"], *results["single_models"]]))
    head = f"{'router':<{w}} {'AIQ':>7} {'AIQ(RB)':>8} {'max quality':>11} {'cost@max ($)':>13}"
    lines = [f"dataset {results['dataset']}: {results['n_train']} train, {results['n_test']} test prompts, {len(results['models'])} models", head, "-" * len(head)]
    for row, r in results["routers"].items():
        lines.append(f"{row:<{w}} {r['aiq']:>7.4f} {r['aiq_routerbench']:>8.4f} {r['max_quality']:>11.4f} {_fmt_cost(r['cost_at_max_quality']):>13}")
    z = results["zero_router"]
    zq, zc = z["points"][-1][1], z["points"][-1][0]
    lines.append(f"{'zero router':<{w}} {z['aiq']:>7.4f} {z['aiq_routerbench']:>8.4f} {zq:>11.4f} {_fmt_cost(zc):>13}")
    o = results["oracle"]
    lines.append(f"{'oracle':<{w}} {'':>7} {'':>8} {o['quality']:>11.4f} {_fmt_cost(o['cost']):>13}")
    for m, s in results["single_models"].items():
        lines.append(f"{m:<{w}} {'':>7} {'':>8} {s['quality']:>11.4f} {_fmt_cost(s['cost']):>13}")
    return "\n".join(line.rstrip() for line in lines)


def format_cross_domain_table(summary: dict) -> str:
    cd = summary["cross_domain"]
    head = f"{'router (mean over ' + str(len(cd['domains'])) + ' held-out domains)':<44} {'AIQ':>7} {'AIQ(RB)':>8} {'max quality':>11}"
    lines = [f"dataset {summary['dataset']}: leave-one-domain-out", head, "-" * len(head)]
    for row, r in cd["mean"]["routers"].items():
        lines.append(f"{row:<44} {r['aiq']:>7.4f} {r['aiq_routerbench']:>8.4f} {r['max_quality']:>11.4f}")
    z = cd["mean"]["zero_router"]
    lines.append(f"{'zero router':<44} {z['aiq']:>7.4f} {z['aiq_routerbench']:>8.4f} {'':>11}")
    lines.append(f"{'oracle':<44} {'':>7} {'':>8} {cd['mean']['oracle']['quality']:>11.4f}")
    return "\n".join(line.rstrip() for line in lines)


def plot_cost_quality(results: dict, path: Path) -> None:
    """Each router's sweep points and NDCH, single models as labelled markers, the zero router's
    hull dashed and the oracle as a star. The cost axis is logarithmic when the plotted positive
    costs span more than two decades (else linear, which shows hull areas as AIQ sees them)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    o = results["oracle"]
    all_costs = [o["cost"], *(s["cost"] for s in results["single_models"].values())]
    for r in results["routers"].values():
        all_costs.extend(p[0] for p in r["points"])
    positive = np.array([c for c in all_costs if c > 0])
    log_x = bool(len(positive) and positive.max() / positive.min() > 100)

    def hull_line(hull: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # On a log axis a straight segment of the (linear-cost) hull is a curve: draw it densely.
        if not log_x or len(hull) < 2:
            return hull[:, 0], hull[:, 1]
        t = np.linspace(0.0, 1.0, 50)
        xs = np.concatenate([a[0] + t * (b[0] - a[0]) for a, b in zip(hull[:-1], hull[1:])])
        ys = np.concatenate([a[1] + t * (b[1] - a[1]) for a, b in zip(hull[:-1], hull[1:])])
        return xs, ys

    fig, ax = plt.subplots(figsize=(9, 6))
    colors = plt.get_cmap("tab10")
    for i, (row, r) in enumerate(results["routers"].items()):
        pts = np.asarray(r["points"], dtype=float)
        color = colors(i % 10)
        ax.scatter(pts[:, 0], pts[:, 1], s=12, color=color, alpha=0.5)
        ax.plot(*hull_line(ndch(pts[:, :2])), "-", color=color, label=f"{row} (AIQ {r['aiq']:.3f})")
    zero = np.asarray(results["zero_router"]["points"], dtype=float)
    ax.plot(*hull_line(zero), "--", color="black", label=f"zero router (AIQ {results['zero_router']['aiq']:.3f})")
    for m, s in results["single_models"].items():
        ax.scatter([s["cost"]], [s["quality"]], marker="o", color="grey", edgecolors="black", zorder=3)
        ax.annotate(m, (s["cost"], s["quality"]), fontsize=7, xytext=(4, -8), textcoords="offset points")
    ax.scatter([o["cost"]], [o["quality"]], marker="*", s=200, color="gold", edgecolors="black", zorder=4, label="oracle")
    if log_x:
        ax.set_xscale("log")
        ax.set_xlabel("total cost on the test set (USD, log scale)")
    else:
        ax.set_xlabel("total cost on the test set (USD)")
    ax.set_ylabel("mean quality on the test set")
    ax.set_title(f"{results['dataset']}: {results['n_test']} test prompts")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_results(results: dict, out_dir: str | Path) -> Path:
    """``out_dir/results.json`` and ``out_dir/cost_quality.png``; returns the JSON path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    plot_cost_quality(results, out / "cost_quality.png")
    return path


def write_cross_domain(summary: dict, per_domain: Mapping[str, dict], out_dir: str | Path) -> Path:
    """Per-domain results under ``out_dir/<domain>/`` and the summary in ``out_dir/results.json``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for domain, results in per_domain.items():
        write_results(results, out / domain_dirname(domain))
    path = out / "results.json"
    path.write_text(json.dumps(summary, indent=2) + "\n")
    return path

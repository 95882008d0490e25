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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from router.baselines.prior import PriorPredictor
from router.calibration import calibrated_entries, calibration_report, plot_reliability, summary_keys
from router.data.splits import domains, leave_one_domain_out
from router.data.table import DataValidationError, RoutingTable
from router.evaluation.bootstrap import ZERO, BootstrapConfig, Unit, compare_rows, format_intervals
from router.evaluation.metrics import aiq_paper, aiq_routerbench, common_c_max, max_quality, ndch, zero_router
from router.oracle import oracle_point
from router.evaluation.seeds import ORACLE_KEYS, ROUTER_KEYS, ZERO_KEYS, aggregate_runs, domain_mean, fmt
from router.evaluation.sweep import points_from_choices, sweep_choices
from router.prediction import Prediction
from router.registry import BASELINE_FAMILIES, BuildContext, family_builder
from router.rewards import cost_scale, get_reward

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
    return pred.columns(idx)


@dataclass
class Run:
    """One train/test evaluation: its ``results.json`` dict and what the bootstrap needs."""

    results: dict
    unit: Unit  # test quality/cost and every row's choices (no-router rows included)
    baselines: list[str]  # rows from baseline families
    floors: dict[str, str]  # row -> its reward's no-router row


def no_router_row(reward: str) -> str:
    """The result row of the deployable no-router under ``reward``."""
    return f"no_router_{get_reward(reward).name}"


def _summarise_points(pts: np.ndarray, hull: np.ndarray, rb: float) -> dict:
    best_q, best_c = max_quality(pts[:, :2])
    return {"aiq": aiq_paper(hull), "aiq_routerbench": rb, "max_quality": best_q, "cost_at_max_quality": best_c, "points": pts.tolist()}


def evaluate_run(
    train: RoutingTable,
    test: RoutingTable,
    router_names: Sequence[str],
    encoder,
    ctx: BuildContext | None = None,
    grid: Grid = None,
    dataset: str | None = None,
) -> Run:
    """One train/test evaluation without the bootstrap (see :func:`evaluate`)."""
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
    # ``ctx.options["calibrate"]``: post-hoc calibration methods; each adds calibrated copies of
    # every (unfitted) family's rows, named ``<row>+<method>``.
    for method in (ctx.options or {}).get("calibrate") or ():
        builders += [(name, _calibrated_builder(build, method)) for name, build in builders[: len(router_names)]]

    t0 = time.perf_counter()
    X_train = encoder.embed(train.prompts)
    X_test = encoder.embed(test.prompts)
    log.info("embedded %d train + %d test prompts in %.1fs", len(train), len(test), time.perf_counter() - t0)
    q_train, c_train = train.quality, train.cost
    q_test, c_test = test.quality, test.cost
    c_ref = cost_scale(c_train)

    sweeps: dict[str, np.ndarray] = {}
    choices: dict[str, np.ndarray] = {}
    row_reward: dict[str, str] = {}
    baselines: list[str] = []
    predictions: dict[str, Prediction] = {}

    def add_row(row: str, pred: Prediction, reward: str) -> None:
        if row in sweeps:
            raise ValueError(f"two routers produce the result row {row!r}")
        choices[row], lams = sweep_choices(pred, reward, _grid_for(grid, reward), c_ref)
        sweeps[row] = np.array(points_from_choices(choices[row], q_test, c_test, lams))
        predictions[row] = pred

    for family, build in builders:
        for entry in build(ctx):
            label = ",".join(entry.rows)
            t0 = time.perf_counter()
            # A predictor that reads the prompts (token features) says so with ``uses_prompts``.
            reads = getattr(entry.predictor, "uses_prompts", False)
            if not entry.fitted:
                log.info("fitting %s on %d prompts ...", label, len(train))
                extra = {"prompts": train.prompts} if reads else {}
                # Predictors that choose knobs on leave-one-domain-out folds of the training side get its domains.
                if getattr(entry.predictor, "wants_domains", False):
                    extra["domains"] = domains(train.eval_names)
                entry.predictor.fit(X_train, q_train, c_train, models, **extra)
            raw = entry.predictor.predict(X_test, **({"prompts": test.prompts} if reads else {}))
            pred = _align(raw, getattr(entry.predictor, "models", ()), models, label)
            for row, reward in entry.rows.items():
                add_row(row, pred, reward)
                row_reward[row] = get_reward(reward).name
                if family in BASELINE_FAMILIES:
                    baselines.append(row)
            log.info("%s: fitted and swept in %.1fs", label, time.perf_counter() - t0)

    # The deployable no-router, once per reward in use: the model best on the TRAINING rows at each λ.
    prior = PriorPredictor().fit(X_train, q_train, c_train, models)
    prior_pred = prior.predict(X_test)
    floors = {}
    for reward in dict.fromkeys(row_reward.values()):
        add_row(no_router_row(reward), prior_pred, reward)
    for row, reward in row_reward.items():
        floors[row] = no_router_row(reward)
    floor_rows = list(dict.fromkeys(floors.values()))

    calibration = _calibration(predictions, q_test, models)

    single = np.stack([c_test.sum(axis=0), q_test.mean(axis=0)], axis=1)
    zero_hull = zero_router(single)
    hulls = {row: ndch(pts[:, :2]) for row, pts in sweeps.items()}
    # RouterBench's form compares hulls at one c_max: that of all rows AND the zero router here.
    c_max = common_c_max([*hulls.values(), zero_hull])
    rb = dict(zip([*hulls, "__zero__"], aiq_routerbench([*hulls.values(), zero_hull], c_max)))

    routers = {row: _summarise_points(sweeps[row], hulls[row], rb[row]) for row in row_reward}
    no_router = {}
    for row in floor_rows:
        no_router[row] = {
            "reward": row.removeprefix("no_router_"),
            **_summarise_points(sweeps[row], hulls[row], rb[row]),
            "models": [models[j] for j in choices[row][:, 0]],
        }
    oq, oc = oracle_point(q_test, c_test)
    results = {
        "dataset": dataset or train.name,
        "n_train": len(train),
        "n_test": len(test),
        "models": models,
        "routers": routers,
        "no_router": no_router,
        "zero_router": {"aiq": aiq_paper(zero_hull), "aiq_routerbench": rb["__zero__"], "points": zero_hull.tolist()},
        "oracle": {"quality": float(oq), "cost": float(oc)},
        "single_models": {m: {"quality": float(q), "cost": float(c)} for m, (c, q) in zip(models, single)},
        "calibration": calibration,
    }
    return Run(results, Unit(q_test, c_test, choices), baselines, floors)


def _calibrated_builder(build, method: str):
    def builder(ctx: BuildContext):
        return calibrated_entries(build(ctx), method, ctx.seed)

    return builder


def _calibration(predictions: Mapping[str, Prediction], q_test: np.ndarray, models: Sequence[str]) -> dict:
    """Per row (no-router rows included) the calibration of its predicted quality on the test
    rows; rows sharing one predictor share one report."""
    reports: dict[int, dict] = {}
    out = {}
    for row, pred in predictions.items():
        key = id(pred)
        if key not in reports:
            reports[key] = calibration_report(pred.quality, q_test, models, uncertainty=pred.uncertainty)
        out[row] = reports[key]
    return out


def point_aiqs(results: dict) -> dict[str, float]:
    """Row -> AIQ (paper form) of every router and no-router row, and the zero router's."""
    return {
        **{row: r["aiq"] for row, r in results["routers"].items()},
        **{row: r["aiq"] for row, r in results.get("no_router", {}).items()},
        ZERO: results["zero_router"]["aiq"],
    }


def evaluate(
    train: RoutingTable,
    test: RoutingTable,
    router_names: Sequence[str],
    encoder,
    ctx: BuildContext | None = None,
    grid: Grid = None,
    dataset: str | None = None,
    bootstrap: BootstrapConfig | None = None,
) -> dict:
    """The ``results.json`` dict of one train/test evaluation: ``{"dataset", "n_train", "n_test",
    "models", "routers": {row: {"aiq", "aiq_routerbench", "max_quality", "cost_at_max_quality",
    "points": [[total cost, mean quality, λ], ...]}}, "no_router": {"no_router_<reward>": same keys
    plus "reward" and "models" (the model sent every prompt at each λ)}, "zero_router": {"aiq",
    "aiq_routerbench", "points": its hull [[cost, quality], ...]}, "oracle": {"quality", "cost"},
    "single_models": {model: {"quality", "cost"}}, "bootstrap": see
    :func:`router.evaluation.bootstrap.compare_rows`}``. ``grid``: λ values for every row, or a
    dict reward -> values. ``no_router`` rows: per reward in use, the single model best on the
    TRAINING rows at each λ, sent every test prompt."""
    run = evaluate_run(train, test, router_names, encoder, ctx, grid, dataset)
    run.results["bootstrap"] = pooled_bootstrap([run], bootstrap)
    return run.results


def pooled_bootstrap(runs: Sequence[Run], cfg: BootstrapConfig | None = None) -> dict:
    """The paired bootstrap of the mean over ``runs`` (seeds, held-out domains) of each row's AIQ."""
    aiqs = [point_aiqs(r.results) for r in runs]
    point = {row: float(np.mean([a[row] for a in aiqs])) for row in aiqs[0]}
    return compare_rows([r.unit for r in runs], point, runs[0].baselines, runs[0].floors, cfg)


def seeded_context(ctx: BuildContext | None, i: int) -> BuildContext:
    """The build context of seed run ``i``: the routers' seed is ``ctx.seed + i``."""
    ctx = ctx or BuildContext()
    return replace(ctx, seed=ctx.seed + i)


def evaluate_runs(split, n_seeds: int, router_names, encoder, ctx=None, grid: Grid = None, dataset=None) -> list[Run]:
    """The ``n_seeds`` runs of :func:`evaluate_seeds`, before they are combined."""
    runs = []
    for i in range(n_seeds):
        train, test = split(i)
        if n_seeds > 1:
            log.info("seed %d/%d (router seed %d)", i + 1, n_seeds, seeded_context(ctx, i).seed)
        runs.append(evaluate_run(train, test, router_names, encoder, seeded_context(ctx, i), grid, dataset))
    return runs


def combine_runs(runs: Sequence[Run], ctx: BuildContext | None = None, bootstrap: BootstrapConfig | None = None) -> dict:
    """One run's results, or the mean ± std of several, with the bootstrap pooled over them."""
    if len(runs) == 1:
        results = dict(runs[0].results)
    else:
        base = (ctx or BuildContext()).seed
        results = aggregate_runs([r.results for r in runs], [base + i for i in range(len(runs))])
    results["bootstrap"] = pooled_bootstrap(runs, bootstrap)
    return results


def evaluate_seeds(
    split: Callable[[int], tuple[RoutingTable, RoutingTable]],
    router_names: Sequence[str],
    encoder,
    ctx: BuildContext | None = None,
    grid: Grid = None,
    dataset: str | None = None,
    seeds: int = 1,
    bootstrap: BootstrapConfig | None = None,
) -> dict:
    """``seeds`` evaluations: run i trains every router with seed ``ctx.seed + i`` on
    ``split(i)`` (a random split should use i in its own seed; a fixed one ignores it). One seed
    gives exactly :func:`evaluate`'s dict; more give :func:`router.evaluation.seeds.aggregate_runs`'
    mean ± std dict, with the per-seed results under ``runs`` and the bootstrap of the seed-mean
    difference (each seed's test prompts resampled on their own)."""
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    return combine_runs(evaluate_runs(split, seeds, router_names, encoder, ctx, grid, dataset), ctx, bootstrap)


def save_runs(runs: Sequence[Run], path: str | Path) -> None:
    """Runs to ``path`` (.npz: test quality/cost and every row's choices; results as JSON), so a
    long evaluation can be resumed and still pooled by the bootstrap."""
    arrays, meta = {}, []
    for i, r in enumerate(runs):
        arrays[f"{i}/quality"], arrays[f"{i}/cost"] = r.unit.quality, r.unit.cost
        for row, ch in r.unit.choices.items():
            arrays[f"{i}/choices/{row}"] = ch
        meta.append({"results": r.results, "baselines": r.baselines, "floors": r.floors, "rows": list(r.unit.choices)})
    arrays["meta"] = np.array(json.dumps(meta))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)


def merge_runs(kept: Run, new: Run) -> Run:
    """``kept`` with ``new``'s rows added, a row of the same name replaced by ``new``'s: refreshing
    some router families of a stored evaluation without refitting the others (e.g. a changed
    cross-attention default beside unchanged baselines). Both must be the same test set (same
    observed quality and cost); the no-router rows, zero router, oracle and single models are the
    test set's and stay ``kept``'s. RouterBench-form AIQ is recomputed over every row, as
    :func:`evaluate_run` does, since it compares hulls at one common c_max."""
    if kept.unit.quality.shape != new.unit.quality.shape or not (
        np.array_equal(kept.unit.quality, new.unit.quality) and np.array_equal(kept.unit.cost, new.unit.cost)
    ):
        raise ValueError("merge_runs: the two runs are not of the same test set (observed quality/cost differ)")
    if list(kept.results["models"]) != list(new.results["models"]):
        raise ValueError(f"merge_runs: model order differs ({kept.results['models']} vs {new.results['models']})")
    res = {**kept.results, "routers": {**kept.results["routers"], **new.results["routers"]},
           "no_router": {**new.results.get("no_router", {}), **kept.results.get("no_router", {})},
           "calibration": {**kept.results.get("calibration", {}), **new.results.get("calibration", {})}}  # fmt: skip
    rows = {**res["routers"], **res["no_router"]}
    hulls = {row: ndch(np.asarray(r["points"])[:, :2]) for row, r in rows.items()}
    zero_hull = np.asarray(res["zero_router"]["points"])
    rb = aiq_routerbench([*hulls.values(), zero_hull], common_c_max([*hulls.values(), zero_hull]))
    for (row, r), value in zip(rows.items(), rb):
        r = dict(r, aiq_routerbench=value)
        (res["routers"] if row in res["routers"] else res["no_router"])[row] = r
    res["zero_router"] = {**res["zero_router"], "aiq_routerbench": rb[-1]}
    choices = {**kept.unit.choices, **new.unit.choices}
    baselines = list(dict.fromkeys([b for b in kept.baselines if b not in new.results["routers"]] + new.baselines))
    return Run(res, Unit(kept.unit.quality, kept.unit.cost, choices), baselines, {**kept.floors, **new.floors})


def load_runs(path: str | Path) -> list[Run]:
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        runs = []
        for i, m in enumerate(meta):
            choices = {row: z[f"{i}/choices/{row}"] for row in m["rows"]}
            runs.append(Run(m["results"], Unit(z[f"{i}/quality"], z[f"{i}/cost"], choices), m["baselines"], m["floors"]))
    return runs


# -- cross-domain -------------------------------------------------------------------------------

SUMMARY_ROUTER_KEYS = ROUTER_KEYS


def domain_dirname(domain: str) -> str:
    """A file-system-safe directory name for a domain."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", domain) or "_"


def _pick(entry: Mapping, keys: Sequence[str]) -> dict:
    """``keys`` and their ``_std``/``_seeds`` siblings where present."""
    return {k: entry[k] for key in keys for k in (key, f"{key}_std", f"{key}_seeds") if k in entry}


def summarise_cross_domain(per_domain: Mapping[str, dict], dataset: str, models: Sequence[str], bootstrap: dict | None = None) -> dict:
    """The summary ``results.json`` of a leave-one-domain-out run: per domain the headline numbers
    of every router, no-router row, the zero router and the oracle, and their unweighted mean over
    domains (with seeds: the std over seeds of the per-seed domain mean). ``bootstrap``: the pooled
    paired bootstrap over all held-out domains (and seeds)."""
    first = next(iter(per_domain.values())) if per_domain else {"routers": {}, "no_router": {}}
    rows = list(first["routers"])
    floors = list(first.get("no_router", {}))
    summary_domains = {
        d: {
            "n_train": r["n_train"],
            "n_test": r["n_test"],
            "routers": {row: _pick(r["routers"][row], SUMMARY_ROUTER_KEYS) for row in r["routers"]},
            "no_router": {row: _pick(v, SUMMARY_ROUTER_KEYS) for row, v in r.get("no_router", {}).items()},
            "zero_router": _pick(r["zero_router"], ZERO_KEYS),
            "oracle": _pick(r["oracle"], ORACLE_KEYS),
            **({"calibration": {row: _pick(v, summary_keys([v])) for row, v in r["calibration"].items()}} if "calibration" in r else {}),
        }
        for d, r in per_domain.items()
    }
    sd = summary_domains
    mean = {
        "routers": {row: domain_mean({d: sd[d]["routers"][row] for d in sd}, SUMMARY_ROUTER_KEYS) for row in rows},
        "no_router": {row: domain_mean({d: sd[d]["no_router"][row] for d in sd}, SUMMARY_ROUTER_KEYS) for row in floors},
        "zero_router": domain_mean({d: sd[d]["zero_router"] for d in sd}, ZERO_KEYS),
        "oracle": domain_mean({d: sd[d]["oracle"] for d in sd}, ORACLE_KEYS),
    }
    if "calibration" in first:
        mean["calibration"] = {}
        for row in first["calibration"]:
            reports = {d: sd[d]["calibration"][row] for d in sd}
            mean["calibration"][row] = domain_mean(reports, summary_keys(list(reports.values())))
    out = {"dataset": dataset, "models": list(models), "cross_domain": {"domains": summary_domains, "mean": mean}}
    if "seeds" in first:
        out["seeds"] = first["seeds"]
    if bootstrap is not None:
        out["cross_domain"]["bootstrap"] = bootstrap
    return out


def evaluate_cross_domain(
    table: RoutingTable,
    router_names: Sequence[str],
    encoder,
    ctx: BuildContext | None = None,
    grid: Grid = None,
    dataset: str | None = None,
    seeds: int = 1,
    bootstrap: BootstrapConfig | None = None,
) -> tuple[dict, dict[str, dict]]:
    """Leave-one-domain-out: for every domain, train on all others and test on it (``seeds``
    times, as :func:`evaluate_seeds`). Returns (summary, {domain: per-domain results}); the
    summary's bootstrap resamples every (domain, seed) test set on its own."""
    per_domain: dict[str, dict] = {}
    all_runs: list[Run] = []
    folds = list(leave_one_domain_out(table))
    for i, (domain, train, test) in enumerate(folds, 1):
        log.info("[%d/%d] held-out domain %s: %d train, %d test", i, len(folds), domain, len(train), len(test))
        runs = evaluate_runs(lambda _: (train, test), seeds, router_names, encoder, ctx, grid, f"{dataset or table.name}[{domain}]")
        per_domain[domain] = combine_runs(runs, ctx, bootstrap)
        all_runs.extend(runs)
    summary = summarise_cross_domain(per_domain, dataset or table.name, table.models, pooled_bootstrap(all_runs, bootstrap))
    return summary, per_domain


# -- output -------------------------------------------------------------------------------------


def _fmt_cost(x: float) -> str:
    return f"{x:.4g}"


def _seed_note(results: dict) -> str:
    seeds = results.get("seeds") or []
    return f", mean ± std over {len(seeds)} seeds" if len(seeds) > 1 else ""


def format_table(results: dict) -> str:
    """The table ``router eval`` prints: routers, the no-router rows, the zero router, the
    oracle, single models, then the bootstrap's paired intervals."""
    names = [*results["routers"], *results.get("no_router", {}), *results["single_models"]]
    multi = len(results.get("seeds") or []) > 1
    nw = 15 if multi else 7
    w = max(34, *(len(name) + 1 for name in names))
    cal = results.get("calibration") or {}
    head = f"{'router':<{w}} {'AIQ':>{nw}} {'AIQ(RB)':>{nw}} {'max quality':>{nw}} {'cost@max ($)':>13} {'ECE':>{nw}}"
    lines = [
        f"dataset {results['dataset']}: {results['n_train']} train, {results['n_test']} test prompts, "
        f"{len(results['models'])} models{_seed_note(results)}",
        head,
        "-" * len(head),
    ]
    for row, r in [*results["routers"].items(), *results.get("no_router", {}).items()]:
        lines.append(
            f"{row:<{w}} {fmt(r, 'aiq', nw)} {fmt(r, 'aiq_routerbench', nw)} {fmt(r, 'max_quality', nw)} "
            f"{_fmt_cost(r['cost_at_max_quality']):>13} {fmt(cal.get(row, {}), 'ece', nw)}"
        )
    z = results["zero_router"]
    last = z["points"][-1] if "points" in z else None
    zq = f"{last[1]:>{nw}.4f}" if last else f"{'':>{nw}}"
    zc = f"{_fmt_cost(last[0]):>13}" if last else ""
    lines.append(f"{'zero router':<{w}} {fmt(z, 'aiq', nw)} {fmt(z, 'aiq_routerbench', nw)} {zq} {zc}")
    o = results["oracle"]
    lines.append(f"{'oracle':<{w}} {'':>{nw}} {'':>{nw}} {fmt(o, 'quality', nw)} {_fmt_cost(o['cost']):>13}")
    for m, s in results["single_models"].items():
        lines.append(f"{m:<{w}} {'':>{nw}} {'':>{nw}} {fmt(s, 'quality', nw)} {_fmt_cost(s['cost']):>13}")
    lines += format_intervals(results.get("bootstrap") or {})
    return "\n".join(line.rstrip() for line in lines)


def format_cross_domain_table(summary: dict) -> str:
    cd = summary["cross_domain"]
    multi = len(summary.get("seeds") or []) > 1
    nw = 15 if multi else 7
    w = 44
    cal = cd["mean"].get("calibration") or {}
    head = f"{'router (mean over ' + str(len(cd['domains'])) + ' held-out domains)':<{w}} {'AIQ':>{nw}} {'AIQ(RB)':>{nw}} {'max quality':>{nw}} {'ECE':>{nw}}"
    lines = [f"dataset {summary['dataset']}: leave-one-domain-out{_seed_note(summary)}", head, "-" * len(head)]
    for row, r in [*cd["mean"]["routers"].items(), *cd["mean"].get("no_router", {}).items()]:
        lines.append(f"{row:<{w}} {fmt(r, 'aiq', nw)} {fmt(r, 'aiq_routerbench', nw)} {fmt(r, 'max_quality', nw)} {fmt(cal.get(row, {}), 'ece', nw)}")
    z = cd["mean"]["zero_router"]
    lines.append(f"{'zero router':<{w}} {fmt(z, 'aiq', nw)} {fmt(z, 'aiq_routerbench', nw)}")
    lines.append(f"{'oracle':<{w}} {'':>{nw}} {'':>{nw}} {fmt(cd['mean']['oracle'], 'quality', nw)}")
    lines += format_intervals(cd.get("bootstrap") or {})
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
    for row, r in results.get("no_router", {}).items():
        hull = ndch(np.asarray(r["points"], dtype=float)[:, :2])
        ax.plot(*hull_line(hull), ":", color="dimgrey", label=f"{row} (AIQ {r['aiq']:.3f})")
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
    """``out_dir/results.json`` and ``out_dir/cost_quality.png`` (with seeds: one plot per seed,
    ``cost_quality_seed<s>.png``, since the points differ per seed); returns the JSON path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    if "runs" in results:
        for seed, run in zip(results["seeds"], results["runs"]):
            plot_cost_quality(run, out / f"cost_quality_seed{seed}.png")
            write_reliability(run, out / f"reliability_seed{seed}.png")
    else:
        plot_cost_quality(results, out / "cost_quality.png")
        write_reliability(results, out / "reliability.png")
    return path


def write_reliability(results: dict, path: Path) -> None:
    """The reliability diagram of every predictor of a single run (rows sharing a predictor are
    drawn once, labelled with all their names)."""
    groups: dict[str, list[str]] = {}
    reports = {}
    for row, rep in (results.get("calibration") or {}).items():
        key = json.dumps(rep["bins"])
        groups.setdefault(key, []).append(row)
        reports[key] = rep
    if reports:
        plot_reliability({",".join(groups[k]): reports[k] for k in reports}, path, f"{results['dataset']}: reliability of predicted quality")


def write_cross_domain(summary: dict, per_domain: Mapping[str, dict], out_dir: str | Path) -> Path:
    """Per-domain results under ``out_dir/<domain>/`` and the summary in ``out_dir/results.json``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for domain, results in per_domain.items():
        write_results(results, out / domain_dirname(domain))
    path = out / "results.json"
    path.write_text(json.dumps(summary, indent=2) + "\n")
    return path

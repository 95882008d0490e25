"""The cross-attention comparison, reproduced by one command:

    python -m experiments --out results/comparison            # everything (long: see README)
    python -m experiments --out results/comparison --parts ablation,stability --datasets dcrouter
    python -m experiments --out /tmp/x --small                # every part at test size (seconds)

Parts (each writes its own JSON under ``OUT/<dataset>/`` so parts can be rerun alone):

* ``main``: in-distribution (the dataset's train/test split, ``router.data.splits.train_test_split``
  mode ``auto``; with ``--seeds N`` seed run i splits with seed 42 + i where the split is random)
  through the evaluation runner: cross-attention (linear and exponential rewards), KNN, MLP, SVM,
  MF, the deployable no-router rows, zero router, oracle, single models, each row's calibration
  error, and the paired bootstrap of the AIQ differences; ``OUT/<dataset>/in_distribution/``.
* ``cross``: leave-one-domain-out for every domain, averaged, with the bootstrap pooled over all
  (domain, seed) test sets; ``OUT/<dataset>/cross_domain/``.

``--seeds`` (default 5) and ``--bootstrap`` (default 1000 resamples) apply to ``main`` and
``cross``; ``--routers`` / ``--cross-routers`` choose their router families (e.g. add
``cross_attention_unc`` for the uncertainty-aware router, at K× the training cost).
* ``ablation``: the two attention variants (prompt_queries, model_queries with static token
  features) trained on the same split: AIQ, validation AIQ, parameters, train time, prompts/s.
* ``stability``: linear vs exponential reward over λ on the default router's test predictions.
* ``extend``: a model held out of the pool and added back from 100 labelled prompts (frozen
  network, ``add_model``: gradient steps on its embedding) vs placed from the same 100 prompts with
  no gradient step by its performance profile (a router trained with ``model_repr: profile``,
  ``place_model``) vs a full retrain with it and the router without it (datasets with ≥ 3 models).

* ``selection``: how the training defaults were chosen (``experiments.selection``), on validation
  rows carved from dcrouter's training half; ``OUT/selection.json``.

``--parts tables`` (always run last) renders ``OUT/tables.md`` from whatever JSON exists. The
embeddings come from the on-disk cache (the bundled datasets are pre-embedded); nothing here
touches the test split for a choice: defaults were chosen on the validation split carved from
training data.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from experiments.common import dump_json

log = logging.getLogger("experiments.compare")

PARTS = ("main", "cross", "ablation", "stability", "extend", "selection", "tables")
ROUTERS = ("cross_attention", "knn", "mlp", "svm", "mf")
# Leave-one-domain-out refits every router once per domain. RouterBench's MLP (18 scikit-learn
# fits per fold on dcrouter, ~6 min per fold here) does not fit the CPU budget for 13 folds, so the
# default cross-domain run leaves it out (``--cross-routers`` puts it back).
CROSS_ROUTERS = ("cross_attention", "knn", "svm", "mf")
# Seeds and bootstrap resamples of the main and cross parts (issue 10: every claim from >= 5 seeds
# with a paired-bootstrap interval); --seeds / --bootstrap override.
SEEDS = 5
RESAMPLES = 1000
EXTEND_PROMPTS = 100


@dataclass
class Run:
    """What every part of one run shares."""

    encoder: object  # the cached encoder of the prompts (and of the model names)
    config: object  # TrainConfig of the cross-attention router
    out: Path
    routers: tuple[str, ...] = ROUTERS
    cross_routers: tuple[str, ...] = CROSS_ROUTERS
    only_domains: set | None = None
    # --refresh: train only these families and merge them into the runs on disk (see _runs)
    refresh: tuple[str, ...] = ()
    seeds: int = SEEDS
    resamples: int = RESAMPLES
    # dataset -> (router, test prediction) of the default config, trained once and shared by parts
    default: dict = field(default_factory=dict)

    def train(self, config, train, X):
        from router.core import Router

        return Router.untrained(config, self.encoder).fit(X, train.quality, train.cost, train.models, prompts=train.prompts)


def _split(table):
    from router.data.splits import train_test_split

    return train_test_split(table, "auto")


def _aiqs(prediction, test, c_ref, rewards=("linear", "exponential")) -> dict:
    from router.evaluation.metrics import aiq_paper, max_quality, ndch
    from router.evaluation.sweep import sweep

    out = {}
    for r in rewards:
        pts = np.array(sweep(prediction, test.quality, test.cost, r, c_ref=c_ref))
        out[r] = {"aiq": aiq_paper(ndch(pts[:, :2])), "max_quality": max_quality(pts[:, :2])[0]}
    return out


def _context(run: Run):
    """The build context: the config's seed is the base seed that --seeds counts up from (the
    cross-attention family takes its seed from the context when the options leave it out)."""
    from router.registry import BuildContext

    return BuildContext(seed=run.config.seed, options={"cross_attention": run.config.model_dump(exclude={"seed"}), "encoder": run.encoder})


def _fingerprint(run: Run, routers) -> dict:
    """What a stored evaluation was made with: a rerun reuses it only when this is unchanged (a
    changed default, e.g. ``TrainConfig.fallback``, must not be served from old folds)."""
    return {"encoder": run.encoder.name, "seeds": run.seeds, "routers": sorted(set(routers) | set(run.refresh)),
            "cross_attention": run.config.model_dump(mode="json")}  # fmt: skip


def _runs(directory: Path, split, routers, run: Run, dataset: str) -> tuple[list, str]:
    """The seed runs of one evaluation directory and how they were obtained: ``reused`` (on disk,
    made with this run's fingerprint), ``refreshed`` (``run.refresh``: only those families trained
    now, merged into the runs on disk, whose other rows are kept as they are) or ``evaluated``."""
    from router.evaluation.runner import evaluate_runs, load_runs, merge_runs

    stored, results = directory / "runs.npz", directory / "results.json"
    kept = load_runs(stored) if stored.exists() and results.exists() else []
    if len(kept) != run.seeds:
        kept = []
    # A refresh that was interrupted resumes too: the folds it finished carry the new fingerprint.
    # (The fingerprint sees configuration, not code: after a code change, delete the directory.)
    if kept and json.loads(results.read_text()).get("run_config") == _fingerprint(run, routers):
        return kept, "reused"
    if run.refresh:
        if not kept:
            raise SystemExit(f"--refresh needs the {run.seeds} seed runs of a full evaluation on disk: {stored} is missing "
                             f"or has another number of seeds; run without --refresh first")  # fmt: skip
        fresh = evaluate_runs(split, run.seeds, list(run.refresh), run.encoder, _context(run), dataset=dataset)
        return [merge_runs(k, n) for k, n in zip(kept, fresh)], "refreshed"
    if kept:
        log.info("%s: the runs on disk were made with another configuration; evaluating again", directory)
    return evaluate_runs(split, run.seeds, list(routers), run.encoder, _context(run), dataset=dataset), "evaluated"


def _write_runs(runs, how: str, directory: Path, routers, run: Run) -> dict:
    from router.evaluation.bootstrap import BootstrapConfig
    from router.evaluation.runner import combine_runs, save_runs, write_results

    results = combine_runs(runs, _context(run), BootstrapConfig(resamples=run.resamples, seed=run.config.seed))
    results["run_config"] = _fingerprint(run, routers)
    if how == "refreshed":
        results["refreshed"] = list(run.refresh)  # the other families' rows are from an earlier run
    write_results(results, directory)
    save_runs(runs, directory / "runs.npz")
    return results


def part_main(name, table, run: Run) -> None:
    from router.data.splits import train_test_split
    from router.evaluation.runner import format_table

    directory = run.out / name / "in_distribution"
    runs, how = _runs(directory, lambda i: train_test_split(table, "auto", seed=42 + i), run.routers, run, name)
    results = _write_runs(runs, how, directory, run.routers, run) if how != "reused" else json.loads((directory / "results.json").read_text())
    print(f"{name} in-distribution: {how}", flush=True)
    print(format_table(results), flush=True)


def part_cross(name, table, run: Run) -> None:
    """Leave-one-domain-out, one fold at a time: each fold's results (``<domain>/results.json``)
    and its per-prompt choices (``<domain>/runs.npz``, for the pooled bootstrap) are written as soon
    as they exist and a rerun skips folds already on disk that were made with the same configuration
    (so a long run can be resumed; :func:`_runs`).
    ``run.only_domains``: run just these held-out domains (e.g. to share folds between processes);
    the summary is written when every fold is on disk."""
    from router.data.splits import leave_one_domain_out
    from router.evaluation.bootstrap import BootstrapConfig
    from router.evaluation.runner import domain_dirname, format_cross_domain_table, pooled_bootstrap, summarise_cross_domain

    boot = BootstrapConfig(resamples=run.resamples, seed=run.config.seed)
    root = run.out / name / "cross_domain"
    per_domain, all_runs = {}, []
    folds = list(leave_one_domain_out(table))
    for domain, train, test in folds:
        fold = root / domain_dirname(domain)
        if run.only_domains and domain not in run.only_domains:
            if (fold / "results.json").exists() and (fold / "runs.npz").exists():  # another process's fold
                from router.evaluation.runner import load_runs

                per_domain[domain] = json.loads((fold / "results.json").read_text())
                all_runs.extend(load_runs(fold / "runs.npz"))
            continue
        t0 = time.perf_counter()
        runs, how = _runs(fold, lambda _: (train, test), run.cross_routers, run, f"{name}[{domain}]")
        per_domain[domain] = (_write_runs(runs, how, fold, run.cross_routers, run) if how != "reused"
                              else json.loads((fold / "results.json").read_text()))  # fmt: skip
        all_runs.extend(runs)
        print(f"{name} cross-domain fold {domain}: {how} in {time.perf_counter() - t0:.0f} s", flush=True)
    if len(per_domain) < len(folds):
        print(f"{name} cross-domain: {len(per_domain)}/{len(folds)} folds on disk; summary not written yet", flush=True)
        return
    summary = summarise_cross_domain(per_domain, name, table.models, pooled_bootstrap(all_runs, boot))
    dump_json(summary, root / "results.json")
    print(format_cross_domain_table(summary), flush=True)


def part_ablation(name, table, run: Run) -> dict:
    from router.model.cross_attention import count_parameters
    from router.model.gated import GatedPredictor

    train, test = _split(table)
    X, Xt = run.encoder.embed(train.prompts), run.encoder.embed(test.prompts)
    rows = {}
    # model_queries reads a sentence-transformers tokenizer's token features: not with a hash encoder.
    variants = ("prompt_queries",) if run.encoder.name.startswith("hash:") else ("prompt_queries", "model_queries")
    for variant in variants:
        cfg = run.config.model_copy(update={"variant": variant})
        router = run.train(cfg, train, X)
        t0 = time.perf_counter()
        prediction = router.predict_embedded(Xt, test.prompts)  # token features included, where read
        predict_seconds = time.perf_counter() - t0
        if variant == run.config.variant:
            run.default[name] = (router, prediction)
        est = router.predictor
        # The default router is the network behind its fallback (router.model.gated): read the network.
        net = est.network_ if isinstance(est, GatedPredictor) else est
        best = net.history_[net.best_epoch_ - 1]
        rows[variant] = {
            "test": _aiqs(prediction, test, router.c_ref),
            "val_aiq_linear": best.get("val_aiq"),
            "val_loss": best["val_loss"],
            "parameters": count_parameters(net.network_),
            "train_seconds": est.train_seconds_,
            "best_epoch": net.best_epoch_,
            "predict_prompts_per_second": len(Xt) / max(predict_seconds, 1e-9),
        }
        print(f"{name} ablation {variant}: {json.dumps(rows[variant])}", flush=True)
    dump_json({"dataset": name, "config": run.config.model_dump(), "variants": rows}, run.out / name / "ablation.json")
    return rows


def _default_router(name, table, run: Run):
    """The default config's router and its test prediction (trained once per dataset and run)."""
    if name not in run.default:
        train, test = _split(table)
        router = run.train(run.config, train, run.encoder.embed(train.prompts))
        run.default[name] = (router, router.predict_embedded(run.encoder.embed(test.prompts), test.prompts))
    return run.default[name]


def part_stability(name, table, run: Run) -> dict:
    from experiments.reward_stability import DENSE_GRID, reward_stability
    from router.rewards import NORMALISED_GRID

    _, test = _split(table)
    router, prediction = _default_router(name, table, run)
    result = {"dataset": name, "c_ref": router.c_ref}
    for label, grid in (("grid32", NORMALISED_GRID), ("dense302", DENSE_GRID)):
        result[label] = reward_stability(prediction, test.quality, test.cost, router.c_ref, grid=grid)
        for r, s in result[label].items():
            print(
                f"{name} stability {label} {r}: distinct {s['distinct_points']}/{s['grid_size']}, "
                f"max jump {s['max_cost_jump']:.3f}, switch {s['mean_switch_rate']:.4f}, AIQ {s['aiq']:.4f}",
                flush=True,
            )
    dump_json(result, run.out / name / "reward_stability.json")
    plot_stability(result, run.out / name / "reward_stability.png")
    return result


def plot_stability(result: dict, path: Path) -> None:
    """Total test cost and mean quality against λ for both rewards (dense grid)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from experiments.reward_stability import DENSE_GRID

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    lams = np.array(DENSE_GRID[1:])  # λ = 0 cannot sit on a log axis
    for r, style in (("linear", "-"), ("exponential", "--")):
        pts = np.array(result["dense302"][r]["points"])[1:]
        a1.plot(lams, pts[:, 0], style, label=r)
        a2.plot(pts[:, 0], pts[:, 1], style, marker=".", ms=3, label=f"{r} (AIQ {result['dense302'][r]['aiq']:.4f})")
    a1.set_xscale("log")
    a1.set_xlabel("λ")
    a1.set_ylabel("total test cost (USD)")
    a2.set_xlabel("total test cost (USD)")
    a2.set_ylabel("mean test quality")
    for a in (a1, a2):
        a.grid(True, alpha=0.3)
        a.legend(fontsize=8)
    fig.suptitle(f"{result['dataset']}: operating points of the cross-attention router over λ")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def part_extend(name, table, run: Run, held_out=None) -> dict | None:
    from router.core import Router
    from router.model.extend import add_model, place_model

    if len(table.models) < 3:
        print(f"{name} extend: skipped ({len(table.models)} models; holding one out leaves a pool of 1)", flush=True)
        return None
    train, test = _split(table)
    X, Xt = run.encoder.embed(train.prompts), run.encoder.embed(test.prompts)
    full, full_prediction = _default_router(name, table, run)
    res = {"dataset": name, "n_small": EXTEND_PROMPTS, "models": {}}
    full_aiq = _aiqs(full_prediction, test, full.c_ref)
    # The best and the worst model by mean training quality (chosen on training data).
    order = np.argsort(train.quality.mean(axis=0))
    candidates = held_out or [train.models[i] for i in (order[-1], order[0])]
    rng = np.random.default_rng(run.config.seed)
    for model in candidates:
        j = train.models.index(model)
        rest = [m for m in train.models if m != model]
        t0 = time.perf_counter()
        base = run.train(run.config, train.with_models(rest), X)
        small = rng.choice(len(train), size=min(EXTEND_PROMPTS, len(train)), replace=False)
        t1 = time.perf_counter()
        init = run.encoder.embed([model])[0] if run.config.init_from_names else None
        grown = Router(add_model(base.predictor, model, X[small], train.quality[small, j], train.cost[small, j], init=init,
                                 seed=run.config.seed), base.encoder_name)  # fmt: skip
        add_seconds = time.perf_counter() - t1
        # Evaluate with all models, columns in the data's order.
        idx = [grown.models.index(m) for m in test.models]
        aligned = grown.predict_embedded(Xt).columns(idx)
        without = _aiqs(base.predict_embedded(Xt), test.with_models(rest), base.c_ref)
        # The same 100 prompts, no gradient step: a profile router places the model by its profile.
        profile_cfg = run.config.model_copy(update={"model_repr": "profile"})
        t2 = time.perf_counter()
        prof_base = run.train(profile_cfg, train.with_models(rest), X)
        t3 = time.perf_counter()
        placed = Router(place_model(prof_base.predictor, model, X[small], train.quality[small, j], train.cost[small, j]), base.encoder_name)
        place_seconds = time.perf_counter() - t3
        res["models"][model] = {
            "placed_100_profile": _aiqs(placed.predict_embedded(Xt).columns(idx), test, placed.c_ref),
            "profile_without_model": _aiqs(prof_base.predict_embedded(Xt), test.with_models(rest), prof_base.c_ref),
            "profile_base_train_seconds": t3 - t2,
            "place_seconds": place_seconds,
            "added_100": _aiqs(aligned, test, grown.c_ref),
            "full_retrain": full_aiq,
            "without_model": without,
            "base_train_seconds": t1 - t0,
            "add_seconds": add_seconds,
            "new_model_test_mean_quality": float(test.quality[:, j].mean()),
        }
        print(f"{name} extend {model}: {json.dumps(res['models'][model])}", flush=True)
    dump_json(res, run.out / name / "extend.json")
    return res


def part_selection(name, table, run: Run) -> dict | None:
    from experiments.selection import select

    if name != "dcrouter":  # the defaults were chosen on dcrouter
        return None
    result = select(table, run.encoder, base={"max_epochs": run.config.max_epochs})
    dump_json(result, run.out / "selection.json")
    return result


# -- tables ----------------------------------------------------------------------------------------


def _best_baseline(routers: dict, key: str, boot: dict | None = None) -> tuple[str, float]:
    """The evaluation's own best baseline (its bootstrap names it); for older results without a
    bootstrap, the best row that is not a cross-attention or uncertainty row."""
    k = (boot or {}).get("best_baseline")
    if k is None:
        base = {r: v[key] for r, v in routers.items() if not r.startswith("cross_attention") and "_unc" not in r}
        k = max(base, key=base.get)
    return k, routers[k][key]


def _interval(d: dict) -> str:
    return f"{d['diff']:+.4f} [{d['lo']:+.4f}, {d['hi']:+.4f}] {d['verdict']}"


def render_tables(out: Path, datasets) -> str:
    from router.evaluation.seeds import fmt

    lines = []
    for name in datasets:
        d = out / name
        ind = d / "in_distribution" / "results.json"
        cross = d / "cross_domain" / "results.json"
        settings = []
        if ind.exists():
            r = json.loads(ind.read_text())
            settings.append(("in-distribution (test split)", r, r.get("single_models", {})))
        if cross.exists():
            s = json.loads(cross.read_text())
            cd = s["cross_domain"]
            settings.append((f"cross-domain (mean over {len(cd['domains'])} held-out domains)", {**cd["mean"], "bootstrap": cd.get("bootstrap"), "seeds": s.get("seeds")}, {}))
        for title, res, singles in settings:
            routers, zero, oracle = res["routers"], res["zero_router"], res["oracle"]
            cal = res.get("calibration") or {}
            n_seeds = len(res.get("seeds") or []) or 1
            lines += [f"**{name}, {title}** ({n_seeds} seed{'s' if n_seeds > 1 else ''}, mean ± std)", "",
                      "| router | AIQ (paper) | AIQ (RouterBench) | max quality | ECE |", "| --- | ---: | ---: | ---: | ---: |"]  # fmt: skip
            for row, v in sorted([*routers.items(), *res.get("no_router", {}).items()], key=lambda kv: -kv[1]["aiq"]):
                ece = fmt(cal[row], "ece", 0) if row in cal else ""
                lines.append(f"| {row} | {fmt(v, 'aiq', 0)} | {fmt(v, 'aiq_routerbench', 0)} | {fmt(v, 'max_quality', 0)} | {ece} |")
            lines.append(f"| zero router | {fmt(zero, 'aiq', 0)} | {fmt(zero, 'aiq_routerbench', 0)} | | |")
            lines.append(f"| oracle | | | {fmt(oracle, 'quality', 0)} | |")
            for m, v in singles.items():
                lines.append(f"| {m} (single) | | | {fmt(v, 'quality', 0)} | |")
            bname, bval = _best_baseline(routers, "aiq", res.get("bootstrap"))
            ca_rows = [(v["aiq"], k) for k, v in routers.items() if k.startswith("cross_attention")]
            ca = max(ca_rows) if ca_rows else None
            lines += [] if ca is None else [
                "",
                f"Best cross-attention row {ca[1]} AIQ {ca[0]:.4f} vs best baseline {bname} {bval:.4f} "
                f"({ca[0] - bval:+.4f}, {100 * (ca[0] - bval) / bval:+.1f}%); zero router {zero['aiq']:.4f} "
                f"({ca[0] - zero['aiq']:+.4f}); oracle quality {oracle['quality']:.4f} (its AIQ: one point), gap to the oracle "
                f"{oracle['quality'] - ca[0]:.4f} in AIQ and "
                f"{oracle['quality'] - max(v['max_quality'] for k, v in routers.items() if k.startswith('cross_attention')):.4f} in max quality.",
                "",
            ]
            boot = res.get("bootstrap") or {}
            if boot.get("rows"):
                pct = round(100 * boot["confidence"])
                lines += [f"Paired bootstrap over test prompts ({boot['resamples']} resamples, {pct}% interval of the AIQ difference; "
                          "an interval containing 0 is a tie):", "",
                          "| row | vs best baseline | vs its no-router row | vs zero router |", "| --- | --- | --- | --- |"]  # fmt: skip
                for row, e in boot["rows"].items():
                    if row.startswith("no_router"):
                        continue
                    b = e.get("vs_best_baseline")
                    nr = e.get("vs_no_router")
                    lines.append(f"| {row} | {(b['baseline'] + ' ' + _interval(b)) if b else ''} | {_interval(nr) if nr else ''} | {_interval(e['vs_zero_router'])} |")
                lines.append("")
        if (d / "ablation.json").exists():
            a = json.loads((d / "ablation.json").read_text())["variants"]
            lines += [f"**{name}, variant ablation** (same split and config)", "",
                      "| variant | AIQ linear | AIQ exp | val AIQ (linear) | parameters | train s | predict prompts/s |",
                      "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
            for v, x in a.items():
                lines.append(
                    f"| {v} | {x['test']['linear']['aiq']:.4f} | {x['test']['exponential']['aiq']:.4f} | "
                    f"{(x['val_aiq_linear'] or float('nan')):.4f} | {x['parameters']} | {x['train_seconds']:.1f} | {x['predict_prompts_per_second']:.0f} |"
                )
            lines.append("")
        if (d / "reward_stability.json").exists():
            st = json.loads((d / "reward_stability.json").read_text())
            lines += [f"**{name}, reward stability over λ** (default router, test split)", "",
                      "| grid | reward | distinct operating points | largest cost jump (share of range) | mean share of prompts switching | AIQ (paper) |",
                      "| --- | --- | ---: | ---: | ---: | ---: |"]
            for g in ("grid32", "dense302"):
                for r, x in st[g].items():
                    lines.append(f"| {g} | {r} | {x['distinct_points']}/{x['grid_size']} | {x['max_cost_jump']:.3f} | {x['mean_switch_rate']:.4f} | {x['aiq']:.4f} |")
            lines.append("")
        if (d / "extend.json").exists():
            e = json.loads((d / "extend.json").read_text())
            lines += [f"**{name}, a new model joins the pool** ({e['n_small']} labelled prompts, frozen network; AIQ paper form, linear / exp)", "",
                      "| held-out model | without it | added from 100 prompts (add_model) | placed from the same 100, no gradient (profile router) "
                      "| profile router without it | full retrain | add / place time s |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
            for m, x in e["models"].items():
                f = lambda k: f"{x[k]['linear']['aiq']:.4f} / {x[k]['exponential']['aiq']:.4f}" if k in x else "-"  # noqa: E731
                place = f"{x['place_seconds']:.2f}" if "place_seconds" in x else "-"
                lines.append(f"| {m} | {f('without_model')} | {f('added_100')} | {f('placed_100_profile')} | {f('profile_without_model')} "
                             f"| {f('full_retrain')} | {x['add_seconds']:.1f} / {place} |")
            lines.append("")
    sel = out / "selection.json"
    if sel.exists():
        sj = json.loads(sel.read_text())
        lines += [f"**How the defaults were chosen** ({sj['data']}, validation rows carved from training: `python -m experiments --parts selection`)", "",
                  "| candidate | val AIQ (paper form) | val loss | best epoch |", "| --- | ---: | ---: | ---: |"]
        for label, x in sj["rows"].items():
            loss = f"{x['val_loss']:.4f}" if "val_loss" in x else ""
            lines.append(f"| {label} | {x['val_aiq']:.4f} | {loss} | {x.get('best_epoch', '')} |")
        lines.append("")
    text = "\n".join(lines)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tables.md").write_text(text + "\n")
    return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="results/comparison")
    p.add_argument("--datasets", default="dcrouter,routellm")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma list of {PARTS}")
    p.add_argument("--config", help="YAML/JSON of TrainConfig fields (default: TrainConfig defaults)")
    p.add_argument("--encoder", default=None, help="encoder name (default all-MiniLM-L6-v2)")
    p.add_argument("--domains", default=None, help="cross part: only these held-out domains (comma list)")
    p.add_argument("--cross-routers", default=",".join(CROSS_ROUTERS), help="router families of the cross-domain part")
    p.add_argument("--routers", default=",".join(ROUTERS), help="router families of the main (in-distribution) part")
    p.add_argument("--refresh", default="",
                   help="main/cross parts: train only these router families (comma list, e.g. cross_attention) and merge "
                        "them into the seed runs on disk, keeping every other row as it is (after a change that "
                        "leaves the baselines alone)")  # fmt: skip
    p.add_argument("--seeds", type=int, default=SEEDS, help=f"seeds of the main and cross parts (default {SEEDS})")
    p.add_argument("--bootstrap", type=int, default=RESAMPLES, help=f"paired bootstrap resamples (default {RESAMPLES}; 0 = none)")
    p.add_argument("--small", action="store_true",
                   help="test size: 400 seeded rows per dataset, hash:64 encoder, 2 epochs, 2 seeds, 50 resamples, no MLP "
                        "(seconds, not hours)")  # fmt: skip
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)

    import torch

    from router.data.io import load_table
    from router.embeddings import DEFAULT_ENCODER, make_encoder
    from router.model.config import TrainConfig, load_train_config

    torch.set_num_threads(1)  # measured faster than 2 on the shared 2-core machine (see training.py)
    parts = [x.strip() for x in args.parts.split(",") if x.strip()]
    bad = [x for x in parts if x not in PARTS]
    if bad:
        p.error(f"unknown part(s) {bad}; choose from {PARTS}")
    datasets = [x.strip() for x in args.datasets.split(",") if x.strip()]
    config = load_train_config(args.config) if args.config else TrainConfig()
    if args.seeds < 1 or args.bootstrap < 0:
        p.error("--seeds must be >= 1 and --bootstrap >= 0")
    encoder_name = args.encoder or ("hash:64" if args.small else DEFAULT_ENCODER)
    if args.small:
        config = config.model_copy(update={"max_epochs": 2, "patience": 2})
    run = Run(
        encoder=make_encoder(encoder_name),
        config=config,
        out=Path(args.out),
        routers=tuple(r for r in args.routers.split(",") if r.strip() and not (args.small and r.strip() == "mlp")),
        cross_routers=tuple(x.strip() for x in args.cross_routers.split(",") if x.strip()),
        only_domains=set(x.strip() for x in args.domains.split(",")) if args.domains else None,
        refresh=tuple(x.strip() for x in args.refresh.split(",") if x.strip()),
        seeds=2 if args.small else args.seeds,
        resamples=50 if args.small else args.bootstrap,
    )
    funcs = {"main": part_main, "cross": part_cross, "ablation": part_ablation, "stability": part_stability,
             "extend": part_extend, "selection": part_selection}  # fmt: skip
    for name in datasets:
        table = load_table(name)
        if args.small:
            table = table.subset(np.random.default_rng(0).permutation(len(table)) < 400)
        for part in parts:
            if part == "tables":
                continue
            t0 = time.perf_counter()
            funcs[part](name, table, run)
            print(f"== {name} {part} done in {time.perf_counter() - t0:.0f} s", flush=True)
    if "tables" in parts:
        for name in datasets:
            st = run.out / name / "reward_stability.json"
            if st.exists():
                plot_stability(json.loads(st.read_text()), st.with_suffix(".png"))
        print(render_tables(run.out, datasets))
    return 0


if __name__ == "__main__":
    sys.exit(main())

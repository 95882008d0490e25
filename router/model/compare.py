"""The cross-attention comparison, reproduced by one command:

    python -m router.model.compare --out results/comparison            # everything (long: see README)
    python -m router.model.compare --out results/comparison --parts ablation,stability --datasets dcrouter

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
  network) vs a full retrain with it and the router without it (datasets with ≥ 3 models).

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
from pathlib import Path

import numpy as np

log = logging.getLogger("router.model.compare")

PARTS = ("main", "cross", "ablation", "stability", "extend", "tables")
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
_DEFAULT_RUN: dict = {}  # dataset -> (predictor, test prediction) of the default config, shared by parts
ENCODER = None  # the run's encoder (set by main); also embeds model names for their initialisation


def _dump(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2) + "\n")


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


def _context(config, encoder):
    """The build context: the config's seed is the base seed that --seeds counts up from (the
    cross-attention family takes its seed from the context when the options leave it out)."""
    from router.registry import BuildContext

    return BuildContext(seed=config.seed, options={"cross_attention": config.model_dump(exclude={"seed"}), "encoder": encoder})


def part_main(name, table, encoder, config, out: Path, routers=ROUTERS, seeds=SEEDS, resamples=RESAMPLES) -> None:
    from router.data.splits import train_test_split
    from router.evaluation.bootstrap import BootstrapConfig
    from router.evaluation.runner import evaluate_seeds, format_table, write_results

    ctx = _context(config, encoder)
    results = evaluate_seeds(
        lambda i: train_test_split(table, "auto", seed=42 + i), list(routers), encoder, ctx, dataset=name,
        seeds=seeds, bootstrap=BootstrapConfig(resamples=resamples, seed=config.seed),
    )  # fmt: skip
    write_results(results, out / name / "in_distribution")
    print(format_table(results), flush=True)


def part_cross(name, table, encoder, config, out: Path, routers=CROSS_ROUTERS, only=None, seeds=SEEDS, resamples=RESAMPLES) -> None:
    """Leave-one-domain-out, one fold at a time: each fold's results (``<domain>/results.json``)
    and its per-prompt choices (``<domain>/runs.npz``, for the pooled bootstrap) are written as soon
    as they exist and a rerun skips folds already on disk (so a long run can be resumed). ``only``:
    run just these held-out domains (e.g. to share folds between processes); the summary is
    written when every fold is on disk."""
    from router.data.splits import leave_one_domain_out
    from router.evaluation.bootstrap import BootstrapConfig
    from router.evaluation.runner import (
        combine_runs,
        domain_dirname,
        evaluate_runs,
        format_cross_domain_table,
        load_runs,
        pooled_bootstrap,
        save_runs,
        summarise_cross_domain,
        write_results,
    )

    ctx = _context(config, encoder)
    boot = BootstrapConfig(resamples=resamples, seed=config.seed)
    root = out / name / "cross_domain"
    per_domain, all_runs = {}, []
    folds = list(leave_one_domain_out(table))
    for domain, train, test in folds:
        fold = root / domain_dirname(domain)
        if (fold / "runs.npz").exists() and (fold / "results.json").exists():
            runs = load_runs(fold / "runs.npz")
            if len(runs) == seeds:
                per_domain[domain] = json.loads((fold / "results.json").read_text())
                all_runs.extend(runs)
                continue
        if only and domain not in only:
            continue
        t0 = time.perf_counter()
        runs = evaluate_runs(lambda _: (train, test), seeds, list(routers), encoder, ctx, dataset=f"{name}[{domain}]")
        per_domain[domain] = combine_runs(runs, ctx, boot)
        write_results(per_domain[domain], fold)
        save_runs(runs, fold / "runs.npz")
        all_runs.extend(runs)
        print(f"{name} cross-domain fold {domain}: {time.perf_counter() - t0:.0f} s", flush=True)
    if len(per_domain) < len(folds):
        print(f"{name} cross-domain: {len(per_domain)}/{len(folds)} folds on disk; summary not written yet", flush=True)
        return
    summary = summarise_cross_domain(per_domain, name, table.models, pooled_bootstrap(all_runs, boot))
    _dump(summary, root / "results.json")
    print(format_cross_domain_table(summary), flush=True)


def _train(config, train, X, tokens=None, mask=None):
    from router.model.training import train_router

    init = ENCODER.embed(list(train.models)) if config.init_from_names else None
    return train_router(X, train.quality, train.cost, train.models, config, progress=False, tokens=tokens, mask=mask, model_init=init)


def part_ablation(name, table, encoder, config, out: Path) -> dict:
    from router.model.cross_attention import count_parameters
    from router.model.tokens import StaticTokenFeaturizer

    train, test = _split(table)
    X, Xt = encoder.embed(train.prompts), encoder.embed(test.prompts)
    rows = {}
    for variant in ("prompt_queries", "model_queries"):
        cfg = config.model_copy(update={"variant": variant})
        tok = tok_t = msk = msk_t = None
        feat_seconds = 0.0
        if variant == "model_queries":
            t0 = time.perf_counter()
            featurize = StaticTokenFeaturizer(encoder.name, cfg.token_segments)
            tok, msk = featurize(train.prompts)
            tok_t, msk_t = featurize(test.prompts)
            feat_seconds = time.perf_counter() - t0
        pred = _train(cfg, train, X, tok, msk)
        t0 = time.perf_counter()
        prediction = pred.predict(Xt, tokens=tok_t, mask=msk_t)
        predict_seconds = time.perf_counter() - t0
        if variant == config.variant:
            _DEFAULT_RUN[name] = (pred, prediction)
        best = pred.history[pred.best_epoch - 1]
        rows[variant] = {
            "test": _aiqs(prediction, test, pred.c_ref),
            "val_aiq_linear": best.get("val_aiq"),
            "val_loss": best["val_loss"],
            "parameters": count_parameters(pred.network),
            "train_seconds": pred.train_seconds,
            "best_epoch": pred.best_epoch,
            "token_feature_seconds": feat_seconds,
            "predict_prompts_per_second": len(Xt) / max(predict_seconds, 1e-9),
        }
        print(f"{name} ablation {variant}: {json.dumps(rows[variant])}", flush=True)
    _dump({"dataset": name, "config": config.model_dump(), "variants": rows}, out / name / "ablation.json")
    return rows


def part_stability(name, table, encoder, config, out: Path) -> dict:
    from router.model.reward_stability import DENSE_GRID, reward_stability
    from router.rewards import NORMALISED_GRID

    train, test = _split(table)
    if name in _DEFAULT_RUN:  # the ablation already trained the default router on this split
        pred, prediction = _DEFAULT_RUN[name]
    else:
        pred = _train(config, train, encoder.embed(train.prompts))
        prediction = pred.predict(encoder.embed(test.prompts))
    result = {"dataset": name, "c_ref": pred.c_ref}
    for label, grid in (("grid32", NORMALISED_GRID), ("dense302", DENSE_GRID)):
        result[label] = reward_stability(prediction, test.quality, test.cost, pred.c_ref, grid=grid)
        for r, s in result[label].items():
            print(
                f"{name} stability {label} {r}: distinct {s['distinct_points']}/{s['grid_size']}, "
                f"max jump {s['max_cost_jump']:.3f}, switch {s['mean_switch_rate']:.4f}, AIQ {s['aiq']:.4f}",
                flush=True,
            )
    _dump(result, out / name / "reward_stability.json")
    plot_stability(result, out / name / "reward_stability.png")
    return result


def plot_stability(result: dict, path: Path) -> None:
    """Total test cost and mean quality against λ for both rewards (dense grid)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from router.model.reward_stability import DENSE_GRID

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


def part_extend(name, table, encoder, config, out: Path, held_out=None) -> dict | None:
    from router.model.extend import add_model

    if len(table.models) < 3:
        print(f"{name} extend: skipped ({len(table.models)} models; holding one out leaves a pool of 1)", flush=True)
        return None
    train, test = _split(table)
    X, Xt = encoder.embed(train.prompts), encoder.embed(test.prompts)
    full = _DEFAULT_RUN[name][0] if name in _DEFAULT_RUN else _train(config, train, X)
    res = {"dataset": name, "n_small": EXTEND_PROMPTS, "models": {}}
    full_aiq = _aiqs(full.predict(Xt), test, full.c_ref)
    # The best and the worst model by mean training quality (chosen on training data).
    order = np.argsort(train.quality.mean(axis=0))
    candidates = held_out or [train.models[i] for i in (order[-1], order[0])]
    rng = np.random.default_rng(config.seed)
    for model in candidates:
        j = train.models.index(model)
        rest = [m for m in train.models if m != model]
        sub = train.with_models(rest)
        t0 = time.perf_counter()
        base = _train(config, sub, X)
        small = rng.choice(len(train), size=min(EXTEND_PROMPTS, len(train)), replace=False)
        t1 = time.perf_counter()
        init = encoder.embed([model])[0] if config.init_from_names else None
        grown = add_model(base, model, X[small], train.quality[small, j], train.cost[small, j], init=init, seed=config.seed)
        add_seconds = time.perf_counter() - t1
        # Evaluate with all models, columns in the data's order.
        idx = [grown.models.index(m) for m in test.models]
        pg = grown.predict(Xt)
        from router.predictor import Prediction

        aligned = Prediction(pg.quality[:, idx], pg.cost[:, idx])
        without = _aiqs(base.predict(Xt), test.with_models(rest), base.c_ref)
        res["models"][model] = {
            "added_100": _aiqs(aligned, test, grown.c_ref),
            "full_retrain": full_aiq,
            "without_model": without,
            "base_train_seconds": t1 - t0,
            "add_seconds": add_seconds,
            "new_model_test_mean_quality": float(test.quality[:, j].mean()),
        }
        print(f"{name} extend {model}: {json.dumps(res['models'][model])}", flush=True)
    _dump(res, out / name / "extend.json")
    return res


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
                      "| held-out model | without it (8 models) | added from 100 prompts | full retrain | add time s |", "| --- | ---: | ---: | ---: | ---: |"]
            for m, x in e["models"].items():
                f = lambda k: f"{x[k]['linear']['aiq']:.4f} / {x[k]['exponential']['aiq']:.4f}"  # noqa: E731
                lines.append(f"| {m} | {f('without_model')} | {f('added_100')} | {f('full_retrain')} | {x['add_seconds']:.1f} |")
            lines.append("")
    sel = out / "selection.json"
    if sel.exists():
        sj = json.loads(sel.read_text())
        lines += [f"**How the defaults were chosen** ({sj['data']}, validation rows carved from training: `python -m router.model.selection`)", "",
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
    p = argparse.ArgumentParser(prog="python -m router.model.compare", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="results/comparison")
    p.add_argument("--datasets", default="dcrouter,routellm")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma list of {PARTS}")
    p.add_argument("--config", help="YAML/JSON of TrainConfig fields (default: TrainConfig defaults)")
    p.add_argument("--encoder", default=None, help="encoder name (default all-MiniLM-L6-v2)")
    p.add_argument("--domains", default=None, help="cross part: only these held-out domains (comma list)")
    p.add_argument("--cross-routers", default=",".join(CROSS_ROUTERS), help="router families of the cross-domain part")
    p.add_argument("--routers", default=",".join(ROUTERS), help="router families of the main (in-distribution) part")
    p.add_argument("--seeds", type=int, default=SEEDS, help=f"seeds of the main and cross parts (default {SEEDS})")
    p.add_argument("--bootstrap", type=int, default=RESAMPLES, help=f"paired bootstrap resamples (default {RESAMPLES}; 0 = none)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)

    import torch

    from router.cli.train import build_train_encoder
    from router.data.io import load_table
    from router.model.training import TrainConfig, load_train_config

    torch.set_num_threads(1)  # measured faster than 2 on the shared 2-core machine (see training.py)
    parts = [x.strip() for x in args.parts.split(",") if x.strip()]
    bad = [x for x in parts if x not in PARTS]
    if bad:
        p.error(f"unknown part(s) {bad}; choose from {PARTS}")
    datasets = [x.strip() for x in args.datasets.split(",") if x.strip()]
    config = load_train_config(args.config) if args.config else TrainConfig()
    out = Path(args.out)
    global ENCODER
    encoder = ENCODER = build_train_encoder(args.encoder)
    cross_routers = [x.strip() for x in args.cross_routers.split(",") if x.strip()]
    only = set(x.strip() for x in args.domains.split(",")) if args.domains else None
    main_routers = [x.strip() for x in args.routers.split(",") if x.strip()]
    if args.seeds < 1 or args.bootstrap < 0:
        p.error("--seeds must be >= 1 and --bootstrap >= 0")
    runs = dict(seeds=args.seeds, resamples=args.bootstrap)
    funcs = {
        "main": lambda *a: part_main(*a, routers=main_routers, **runs),
        "cross": lambda *a: part_cross(*a, routers=cross_routers, only=only, **runs),
        "ablation": part_ablation,
        "stability": part_stability,
        "extend": part_extend,
    }
    for name in datasets:
        table = load_table(name)
        for part in parts:
            if part == "tables":
                continue
            t0 = time.perf_counter()
            funcs[part](name, table, encoder, config, out)
            print(f"== {name} {part} done in {time.perf_counter() - t0:.0f} s", flush=True)
    if "tables" in parts:
        for name in datasets:
            st = out / name / "reward_stability.json"
            if st.exists():
                plot_stability(json.loads(st.read_text()), st.with_suffix(".png"))
        print(render_tables(out, datasets))
    return 0


if __name__ == "__main__":
    sys.exit(main())

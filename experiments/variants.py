"""Issue 10's router variants on TRAINING-SIDE validation only: how the defaults are chosen.

    python -m experiments.variants --data dcrouter --out results/variants/dcrouter.json
    python -m experiments.variants --data dcrouter --variants default,profile --domain-folds 2

The dataset's train half (``train_test_split`` mode ``auto``; the test half is never read) gives
the folds: a seeded 20% random carve (``random``: prompts like the training prompts) and
``--domain-folds`` leave-one-domain-out folds of the training domains (a seeded pick: a domain the
router never saw). Every variant is trained on each fold's other rows and scored by the paper-form
AIQ of the linear reward's λ sweep on the held-out rows; KNN k=40 (routerbench reward) and the
deployable no-router (the model best on the fitting rows at each λ) are scored on the same rows.
The summary gives each variant's AIQ on the random fold, its mean over the domain folds, and the
difference to the default on each fold.

Fallback variants (``TrainConfig.fallback``, :mod:`router.gate`) that differ only in the mode or the
objective share one fit per fold: it is fitted once with the gate's inner folds and both knobs, and
each variant's knobs are re-chosen on the same held-out inner predictions
(``GatedPredictor.with_mode``), which is what a fit with that mode computes (same folds, same
seeds). ``<name>_network_alone`` is that fit's final network without the fallback: equal to
``default`` (a check that the networks are the default's). Each fallback row also records its
chosen knobs, the mean gate weight w on the held-out rows and the inner folds' validation scores.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time

import numpy as np

# TrainConfig fields (and "ensemble": UncertaintyConfig fields) of each variant.
VARIANTS = {
    "default": {},
    "hidden64": {"hidden_dim": 64},
    "profile": {"model_repr": "profile"},
    "both": {"model_repr": "both"},
    "listwise": {"loss": "listwise"},
    "pairwise": {"loss": "pairwise"},
    "h64_listwise": {"hidden_dim": 64, "loss": "listwise"},
    "ensemble4_h64": {"hidden_dim": 64, "ensemble": {"members": 4, "domain_folds": 1}},
    # TrainConfig.fallback (router.gate): the distance gate toward the deployable no-router, the KNN
    # blend, both. Variants that differ only in the mode share one fit (see run).
    "gate": {"fallback": "gate"},
    "blend": {"fallback": "blend"},
    "gate_blend": {"fallback": "gate_blend"},
    "gate_dom": {"fallback": "gate", "fallback_objective": "domain_folds"},
    "gate_blend_dom": {"fallback": "gate_blend", "fallback_objective": "domain_folds"},
}


def folds(domains: np.ndarray, n: int, domain_folds: int, seed: int):
    from router.data.splits import training_folds

    return training_folds(n, domains, 0.2, domain_folds, seed)


def run(table, encoder, variants: dict, domain_folds: int = 3, seed: int = 0, base: dict | None = None) -> dict:
    from router.baselines.knn import KNNRouter
    from router.baselines.prior import PriorPredictor
    from router.core import Router
    from router.data.splits import domains as domains_of
    from router.data.splits import train_test_split
    from router.evaluation.metrics import aiq_paper, ndch
    from router.evaluation.sweep import sweep
    from router.model.config import TrainConfig
    from router.rewards import cost_scale

    train, _ = train_test_split(table, "auto")
    X = np.asarray(encoder.embed(train.prompts), dtype=np.float32)
    Q, C, dom = train.quality, train.cost, domains_of(train.eval_names)
    model_init = np.asarray(encoder.embed(list(train.models)), dtype=np.float32)

    def aiq(pred, rows, reward="linear", c_ref=1.0):
        return float(aiq_paper(ndch(np.array(sweep(pred, Q[rows], C[rows], reward, c_ref=c_ref))[:, :2])))

    result = {"data": table.name, "n_train_half": len(train), "seed": seed, "base": base or {}, "folds": {}, "variants": variants}
    for label, fit, val in folds(dom, len(train), domain_folds, seed):
        row = {"n_fit": int(len(fit)), "n_val": int(len(val))}
        c_ref = cost_scale(C[fit])
        row["knn_k40"] = aiq(KNNRouter(min(40, len(fit))).fit(X[fit], Q[fit], C[fit], train.models).predict(X[val]), val, "routerbench")
        row["no_router"] = aiq(PriorPredictor().fit(X[fit], Q[fit], C[fit], train.models).predict(X[val]), val, c_ref=c_ref)
        gated = {}  # the fitted fallback router per set of other fields: the modes share its networks
        for name, fields in variants.items():
            fields = dict(fields)
            ens = fields.pop("ensemble", None)
            mode = fields.pop("fallback", "off")
            objective = fields.pop("fallback_objective", "all_folds")
            t0 = time.perf_counter()
            key = json.dumps(fields, sort_keys=True)
            if mode != "off" and key in gated:
                # Same networks and held-out fold predictions; only the knobs are re-chosen for this
                # mode (what a fit with this mode would compute: the folds and seeds are the same).
                router = copy.copy(gated[key])
                router.predictor = gated[key].predictor.with_mode(mode, objective)
                row[f"{name}_shared_fit"] = True
            else:
                # A fallback router is fitted once with the gate's folds and both knobs ("gate_blend");
                # its mode is then set by with_mode.
                fit_mode = "gate_blend" if mode != "off" else "off"
                router = Router.untrained(TrainConfig(**{**(base or {}), "seed": seed, **fields, "fallback": fit_mode}), encoder, ensemble=ens)
                router.fit(X[fit], Q[fit], C[fit], train.models, prompts=[train.prompts[i] for i in fit], model_init=model_init,
                           domains=dom[fit])  # fmt: skip
                if mode != "off":
                    gated[key] = router
                    off = router.predictor.with_mode("off")  # the final network alone: the default's network
                    row[f"{name}_network_alone"] = aiq(off.predict(X[val]), val, c_ref=router.c_ref)
                    router = copy.copy(router)
                    router.predictor = gated[key].predictor.with_mode(mode, objective)
            row[name] = aiq(router.predict_embedded(X[val]), val, c_ref=router.c_ref)
            row[f"{name}_seconds"] = time.perf_counter() - t0
            if ens is not None:
                row[f"{name}_chosen"] = router.predictor.value_
            if mode != "off":
                pred = router.predictor
                _, w = pred.gate(X[val])
                row[f"{name}_chosen"] = {k: (str(v) if np.isinf(v) else v) for k, v in pred.params_.items()}
                row[f"{name}_mean_w"] = float(w.mean())
                row[f"{name}_share_w_over_half"] = float((w > 0.5).mean())
                row[f"{name}_selection"] = pred.selection_  # the inner folds' validation AIQ per candidate
            print(json.dumps({"fold": label, name: row[name], "seconds": round(row[f"{name}_seconds"], 1)}), flush=True)
        result["folds"][label] = row
    names = ["knn_k40", "no_router", *variants]
    dfolds = [f for f in result["folds"] if f != "random"]
    result["summary"] = {
        n: {
            "random": result["folds"]["random"][n],
            "domain_mean": float(np.mean([result["folds"][f][n] for f in dfolds])) if dfolds else None,
            "minus_default_random": result["folds"]["random"][n] - result["folds"]["random"].get("default", np.nan),
            "minus_default_domain_mean": float(np.mean([result["folds"][f][n] - result["folds"][f].get("default", np.nan) for f in dfolds]))
            if dfolds else None,
        }
        for n in names
    }
    return result


def over_seeds(runs: list[dict]) -> dict:
    """Per row: mean and std (ddof 1) over the runs of its random-fold AIQ, its domain-fold mean, and
    both differences to the default, plus the share of seeds on which the domain mean is >= the
    deployable no-router's (the floor)."""
    out = {}
    for name in runs[0]["summary"]:
        row = {}
        for key in ("random", "domain_mean", "minus_default_random", "minus_default_domain_mean"):
            vals = [r["summary"][name][key] for r in runs if r["summary"][name].get(key) is not None]
            if vals:
                row[key] = float(np.mean(vals))
                row[f"{key}_std"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
        floor = [r["summary"][name]["domain_mean"] >= r["summary"]["no_router"]["domain_mean"] for r in runs
                 if r["summary"][name].get("domain_mean") is not None]  # fmt: skip
        if floor:
            row["share_seeds_domain_mean_at_or_above_floor"] = float(np.mean(floor))
        out[name] = row
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.variants", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="dcrouter")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {list(VARIANTS)}")
    p.add_argument("--domain-folds", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", type=int, default=1, help="run seeds seed .. seed+N-1 (each its own carve and domain "
                   "folds) and add their mean and std per variant and fold kind (`over_seeds`)")
    p.add_argument("--encoder", default=None, help="default all-MiniLM-L6-v2 (hash:64 for a smoke run)")
    p.add_argument("--max-epochs", type=int, default=None, help="cap on TrainConfig.max_epochs (smoke runs)")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    chosen = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown:
        p.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")

    import torch

    from router.data.io import load_table
    from router.embeddings import make_encoder

    torch.set_num_threads(1)
    base = {} if args.max_epochs is None else {"max_epochs": args.max_epochs}
    encoder = make_encoder(args.encoder) if args.encoder else make_encoder()
    if args.seeds < 1:
        p.error("--seeds must be >= 1")
    table = load_table(args.data)
    runs = [run(table, encoder, {v: VARIANTS[v] for v in chosen}, args.domain_folds, args.seed + i, base) for i in range(args.seeds)]
    result = runs[0] if args.seeds == 1 else {"data": table.name, "seeds": [r["seed"] for r in runs], "runs": runs,
                                              "over_seeds": over_seeds(runs)}  # fmt: skip
    print(json.dumps(result["summary"] if args.seeds == 1 else result["over_seeds"], indent=2))
    if args.out:
        from experiments.common import dump_json

        dump_json(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

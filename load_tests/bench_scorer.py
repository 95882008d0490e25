"""The cross-attention scorer alone: prompts/s for a batch of 1,024 prompts over an 11-model pool.

No encoder, no Serve: a :class:`router.model.CrossAttentionPredictor` with the default
architecture (``TrainConfig()`` widths) is trained for a couple of epochs on synthetic 384-d
embeddings and 11 models (RouterBench's pool size; the weights' values do not change the cost of a
forward pass), then ``predict`` is timed on 1,024 prompts, and so is ``decide_batch`` (the reward
step the dispatcher applies), at 1 and 2 torch threads. Batch-of-1 latency is reported too.

The uncertainty-aware router (``router train --ensemble K``, :mod:`router.model.ensemble`) is timed
the same way, side by side with the single network (interleaved per thread count, so both see the
same machine load): ``ENSEMBLE`` members of ``ENSEMBLE_HIDDEN`` width each, with the shrinkage rule
applied, and the ratio of its prompts/s to the single network's is reported (goal: >= 0.5). So is
the default router (``fallback: gate_blend``): the same network behind the KNN blend and the
distance gate, whose exact neighbour search over the stored training embeddings runs per batch.

    python -m load_tests.bench_scorer --out results/load/scorer.json
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from load_tests.common import print_table, write_json

N_MODELS = 11
DIM = 384
# The shipped uncertainty-aware router: 4 members of width 64 (README, "Uncertainty in the product").
ENSEMBLE = 4
ENSEMBLE_HIDDEN = 64
# The default router's neighbour index: as many stored training prompts as dcrouter's training side.
GATED_TRAIN_ROWS = 3921


def make_scorer(n_models: int = N_MODELS, dim: int = DIM, n_train: int = 2048, seed: int = 0, epochs: int = 2, hidden_dim: int | None = None):
    """A trained (briefly, on synthetic data) cross-attention router with the default widths."""
    from router.core import Router
    from router.model.config import TrainConfig
    from router.model.estimator import CrossAttentionPredictor

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_train, dim)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    skill = rng.normal(size=(dim, n_models)).astype(np.float32)
    quality = (X @ skill + rng.normal(scale=0.5, size=(n_train, n_models)) > 0).astype(np.float64)
    price = np.logspace(-6, -3, n_models)
    cost = price * rng.lognormal(0.0, 0.3, size=(n_train, n_models))
    models = [f"model-{i:02d}" for i in range(n_models)]
    config = TrainConfig(max_epochs=epochs, patience=epochs, val_fraction=0.1, seed=seed,
                         **({} if hidden_dim is None else {"hidden_dim": hidden_dim}))  # fmt: skip
    # Embeddings are synthetic: the encoder name only labels them (nothing is embedded here).
    return Router(CrossAttentionPredictor(config).fit(X, quality, cost, models), encoder_name=f"synthetic:{dim}")


def make_ensemble_scorer(members: int = ENSEMBLE, hidden_dim: int = ENSEMBLE_HIDDEN, n_models: int = N_MODELS, dim: int = DIM,
                         seed: int = 0, epochs: int = 2):  # fmt: skip
    """``members`` briefly trained networks of width ``hidden_dim`` behind the shrinkage rule (a
    finite τ, so every prediction pays for the rule too)."""
    from router.core import Router
    from router.model.config import TrainConfig
    from router.model.ensemble import EnsemblePredictor
    from router.uncertainty import UncertaintyConfig

    nets = [make_scorer(n_models, dim, seed=seed + k, epochs=epochs, hidden_dim=hidden_dim).predictor for k in range(members)]
    prior = np.full(n_models, 0.5)
    prior_cost = np.array(list(nets[0].prices_.values()))
    config = TrainConfig(hidden_dim=hidden_dim, max_epochs=epochs, patience=epochs, seed=seed)
    ens = EnsemblePredictor.from_fitted(config, UncertaintyConfig(members=members), nets, 0.05, prior, prior_cost)
    return Router(ens, encoder_name=f"synthetic:{dim}")


def make_gated_scorer(n_train: int = GATED_TRAIN_ROWS, n_models: int = N_MODELS, dim: int = DIM, seed: int = 0, epochs: int = 2):
    """The default router (``fallback: gate_blend``, :mod:`router.model.gated`): the single network
    behind the KNN blend and the distance gate, with a neighbour index of ``n_train`` stored
    training embeddings (dcrouter's 3,921 by default) and knobs that run every step (α = 0.5, a
    finite gate), so each prediction pays for the neighbour search, the blend, the gate and σ."""
    from router.core import Router
    from router.gate import NeighbourIndex
    from router.model.gated import GatedPredictor

    net = make_scorer(n_models, dim, seed=seed, epochs=epochs).predictor
    rng = np.random.default_rng(seed + 7)
    X = rng.normal(size=(n_train, dim)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    quality = (rng.random((n_train, n_models)) < 0.5).astype(np.float64)
    neighbours = NeighbourIndex(X, quality, net.config.fallback_k, net.config.fallback_blend_k)
    params = {"alpha": 0.5, "quantile": 0.9, "scale": 0.3, "d0": 0.9, "s": 0.05}
    prior_cost = np.array(list(net.prices_.values()))
    gated = GatedPredictor.from_fitted(net.config.model_copy(update={"fallback": "gate_blend"}), net, neighbours, params,
                                       quality.mean(axis=0), prior_cost)  # fmt: skip
    return Router(gated, encoder_name=f"synthetic:{dim}")


def time_scorer(router, batch: int = 1024, threads: int = 2, repeats: int = 20, seed: int = 1) -> dict:
    """Times the Scorer's and the Dispatcher's stages of the router: ``predict_embedded`` and ``decide``."""
    import torch

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(batch, router.predictor.input_dim)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        router.predict_embedded(X[:8])  # warm-up
        predict_s, decide_s = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            pred = router.predict_embedded(X)
            t1 = time.perf_counter()
            router.decide(pred, 0.5, "linear")
            t2 = time.perf_counter()
            predict_s.append(t1 - t0)
            decide_s.append(t2 - t1)
        one = []
        for i in range(min(repeats * 5, 200)):
            t0 = time.perf_counter()
            router.predict_embedded(X[i % batch : i % batch + 1])
            one.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(previous)
    p = float(np.median(predict_s))
    d = float(np.median(decide_s))
    return {
        "batch": batch,
        "models": len(router.models),
        "threads": threads,
        "predict_ms": p * 1000,
        "decide_ms": d * 1000,
        "prompts_per_s": batch / p,
        "prompts_per_s_with_decide": batch / (p + d),
        "batch1_p50_ms": float(np.median(one)) * 1000,
    }


def run(batch: int = 1024, threads: tuple[int, ...] = (1, 2), repeats: int = 20, members: int = ENSEMBLE,
        member_hidden: int = ENSEMBLE_HIDDEN) -> dict:  # fmt: skip
    router = make_scorer()
    ensemble = make_ensemble_scorer(members, member_hidden)
    gated = make_gated_scorer()
    rows, ens_rows, gated_rows = [], [], []
    for t in threads:  # interleaved: the sides of each ratio are measured at the same time
        rows.append(time_scorer(router, batch, t, repeats))
        ens_rows.append(time_scorer(ensemble, batch, t, repeats))
        gated_rows.append(time_scorer(gated, batch, t, repeats))

    def ratios(other_rows, name):
        return [{"threads": a["threads"], "single_prompts_per_s": a["prompts_per_s"], f"{name}_prompts_per_s": b["prompts_per_s"],
                 "ratio": b["prompts_per_s"] / a["prompts_per_s"],
                 "ratio_with_decide": b["prompts_per_s_with_decide"] / a["prompts_per_s_with_decide"],
                 "batch1_ratio": a["batch1_p50_ms"] / b["batch1_p50_ms"]}
                for a, b in zip(rows, other_rows)]  # fmt: skip

    return {"kind": "scorer", "hidden_dim": router.config.hidden_dim, "variant": router.config.variant, "rows": rows,
            "ensemble": {"members": members, "hidden_dim": member_hidden, "rows": ens_rows, "ratio": ratios(ens_rows, "ensemble"),
                         "goal": "ensemble prompts/s >= 0.5 x the single network's at batch 1,024"},
            "gated": {"fallback": "gate_blend", "stored_rows": GATED_TRAIN_ROWS, "rows": gated_rows, "ratio": ratios(gated_rows, "gated"),
                      "goal": "default router (gate_blend) prompts/s >= 0.5 x the single network's at batch 1,024"}}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m load_tests.bench_scorer", description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--members", type=int, default=ENSEMBLE, help="ensemble members K (default %(default)s)")
    p.add_argument("--member-hidden", type=int, default=ENSEMBLE_HIDDEN, help="width of each member (default %(default)s)")
    p.add_argument("--out")
    args = p.parse_args(argv)
    result = run(args.batch, repeats=args.repeats, members=args.members, member_hidden=args.member_hidden)
    print_table(f"cross-attention scorer alone ({N_MODELS} models, batch {args.batch}, {result['variant']}, hidden {result['hidden_dim']})",
                result["rows"])
    ens = result["ensemble"]
    print_table(f"uncertainty-aware scorer ({ens['members']} members, hidden {ens['hidden_dim']}, shrinkage rule)", ens["rows"])
    print_table("ensemble / single network, prompts/s (goal >= 0.5)", ens["ratio"])
    gated = result["gated"]
    print_table(f"default router: network + KNN blend + distance gate ({gated['stored_rows']} stored training prompts)", gated["rows"])
    print_table("default router / single network, prompts/s (goal >= 0.5)", gated["ratio"])
    if args.out:
        write_json(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The cross-attention scorer alone: prompts/s for a batch of 1,024 prompts over an 11-model pool.

No encoder, no Serve: a :class:`router.model.CrossAttentionPredictor` with the default
architecture (``TrainConfig()`` widths) is trained for a couple of epochs on synthetic 384-d
embeddings and 11 models (RouterBench's pool size; the weights' values do not change the cost of a
forward pass), then ``predict`` is timed on 1,024 prompts, and so is ``decide_batch`` (the reward
step the dispatcher applies), at 1 and 2 torch threads. Batch-of-1 latency is reported too.

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


def make_scorer(n_models: int = N_MODELS, dim: int = DIM, n_train: int = 2048, seed: int = 0, epochs: int = 2):
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
    config = TrainConfig(max_epochs=epochs, patience=epochs, val_fraction=0.1, seed=seed)
    # Embeddings are synthetic: the encoder name only labels them (nothing is embedded here).
    return Router(CrossAttentionPredictor(config).fit(X, quality, cost, models), encoder_name=f"synthetic:{dim}")


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


def run(batch: int = 1024, threads: tuple[int, ...] = (1, 2), repeats: int = 20) -> dict:
    router = make_scorer()
    rows = [time_scorer(router, batch, t, repeats) for t in threads]
    return {"kind": "scorer", "hidden_dim": router.config.hidden_dim, "variant": router.config.variant, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m load_tests.bench_scorer", description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--out")
    args = p.parse_args(argv)
    result = run(args.batch, repeats=args.repeats)
    print_table(f"cross-attention scorer alone ({N_MODELS} models, batch {args.batch}, {result['variant']}, hidden {result['hidden_dim']})",
                result["rows"])
    if args.out:
        write_json(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

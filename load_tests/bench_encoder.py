"""The physical limit: raw batched throughput of the encoder the service uses, in this process.

The service's throughput is compared against this number measured in the same suite run (same
machine load, same prompts): sentence-transformers' ``encode`` on the real prompts, large calls
(so it sorts by length before padding), no cache, ``threads`` torch threads (all cores by default).

    python -m load_tests.bench_encoder --n 256 --out results/load/encoder.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import contextmanager
from typing import Sequence

from load_tests.common import print_table, write_json


def unique_prompts(prompts: Sequence[str], start: int = 0) -> list[str]:
    """The prompts as the load generator sends them (``unique_prompts``): a trailing request number."""
    return [f"{p}\n[{start + i + 1}]" for i, p in enumerate(prompts)]


def make_raw_encoder(encoder: str = "all-MiniLM-L6-v2", device: str = "cpu"):
    """The bare encoder the service's Embedder builds (no cache): sentence-transformers or hash:DIM."""
    from router.embeddings import SentenceTransformerEncoder
    from router.embeddings.hashing import HashingEncoder

    if encoder.startswith("hash:"):
        return HashingEncoder(int(encoder.split(":", 1)[1]))
    return SentenceTransformerEncoder(encoder, device=device)


@contextmanager
def torch_threads(n: int | None):
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n or os.cpu_count() or 1)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(previous)


def raw_encoder_throughput(
    prompts: Sequence[str], encoder="all-MiniLM-L6-v2", batch_size: int = 64, threads: int | None = None, repeats: int = 1
) -> dict:
    """Prompts/s of ``encoder`` (a name or an encoder made by :func:`make_raw_encoder`) on
    ``prompts`` in one large ``encode`` call (best of ``repeats``), with no cache and no Serve."""
    enc = make_raw_encoder(encoder) if isinstance(encoder, str) else encoder
    with torch_threads(threads) as n:
        enc.encode(list(prompts[:8]), batch_size=batch_size, show_progress=False)  # load + warm up
        best = None
        for _ in range(repeats):
            t0 = time.perf_counter()
            enc.encode(list(prompts), batch_size=batch_size, show_progress=False)
            seconds = time.perf_counter() - t0
            best = seconds if best is None else min(best, seconds)
    return {
        "encoder": enc.name,
        "n_prompts": len(prompts),
        "batch_size": batch_size,
        "threads": n,
        "seconds": best,
        "prompts_per_s": len(prompts) / best,
        "mean_chars": sum(map(len, prompts)) / max(len(prompts), 1),
    }


def single_prompt_latency(prompts: Sequence[str], encoder="all-MiniLM-L6-v2", threads: int | None = None) -> dict:
    """Latency of encoding one prompt at a time (what a request at concurrency 1 costs the encoder)."""
    import numpy as np

    enc = make_raw_encoder(encoder) if isinstance(encoder, str) else encoder
    with torch_threads(threads) as n:
        enc.encode(list(prompts[:2]), show_progress=False)
        times = []
        for p in prompts:
            t0 = time.perf_counter()
            enc.encode([p], show_progress=False)
            times.append(time.perf_counter() - t0)
    a = np.asarray(times) * 1000
    return {"encoder": enc.name, "threads": n, "n": len(times), "p50_ms": float(np.median(a)), "p95_ms": float(np.percentile(a, 95))}


def main(argv: list[str] | None = None) -> int:
    from load_tests.generator import load_prompts

    p = argparse.ArgumentParser(prog="python -m load_tests.bench_encoder", description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=256, help="prompts to encode")
    p.add_argument("--dataset", default="routellm")
    p.add_argument("--encoder", default="all-MiniLM-L6-v2", help="sentence-transformers model or hash:DIM")
    p.add_argument("--batch-sizes", default="32,64,128")
    p.add_argument("--threads", type=int)
    p.add_argument("--out")
    args = p.parse_args(argv)
    prompts = unique_prompts(load_prompts(args.dataset, n=args.n, seed=0))
    rows = [raw_encoder_throughput(prompts, args.encoder, int(b), args.threads) for b in args.batch_sizes.split(",")]
    print_table(f"raw encoder throughput ({args.encoder}, {args.n} {args.dataset} prompts)", rows,
                ["encoder", "batch_size", "threads", "n_prompts", "seconds", "prompts_per_s"])
    if args.out:
        write_json({"kind": "raw_encoder", "rows": rows}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

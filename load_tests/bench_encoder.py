"""The physical limit: raw batched throughput of the encoder the service uses, in this process.

The service's throughput is compared against this number measured in the same suite run (same
machine load, same prompts): sentence-transformers' ``encode`` on the real prompts, large calls
(so it sorts by length before padding), no cache, ``threads`` torch threads (all cores by default).

    python -m load_tests.bench_encoder --n 256 --out results/load/encoder.json
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence

from load_tests.common import print_table, write_json


def unique_prompts(prompts: Sequence[str], start: int = 0) -> list[str]:
    """The prompts as the load generator sends them (``unique_prompts``): a trailing request number."""
    return [f"{p}\n[{start + i + 1}]" for i, p in enumerate(prompts)]


def raw_encoder_throughput(
    prompts: Sequence[str], encoder: str = "all-MiniLM-L6-v2", batch_size: int = 64, threads: int | None = None, repeats: int = 1
) -> dict:
    """Prompts/s of ``encoder`` on ``prompts`` (best of ``repeats``), with no cache and no Serve."""
    import os

    import torch

    from router.embeddings import SentenceTransformerEncoder
    from router.embeddings.hashing import HashingEncoder

    threads = threads or os.cpu_count() or 1
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        if encoder.startswith("hash:"):
            enc = HashingEncoder(int(encoder.split(":", 1)[1]))
        else:
            enc = SentenceTransformerEncoder(encoder, device="cpu")
        enc.encode(list(prompts[:8]), batch_size=batch_size, show_progress=False)  # load + warm up
        best = None
        for _ in range(repeats):
            t0 = time.perf_counter()
            enc.encode(list(prompts), batch_size=batch_size, show_progress=False)
            seconds = time.perf_counter() - t0
            best = seconds if best is None else min(best, seconds)
    finally:
        torch.set_num_threads(previous)
    return {
        "encoder": encoder,
        "n_prompts": len(prompts),
        "batch_size": batch_size,
        "threads": threads,
        "seconds": best,
        "prompts_per_s": len(prompts) / best,
        "mean_chars": sum(map(len, prompts)) / max(len(prompts), 1),
    }


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

"""Do held-out domains look foreign? A diagnostic of the distance gate's premise, not a knob choice.

    python -m experiments.novelty --out results/novelty.json

The distance gate (:mod:`router.gate`) can fall back to the deployable no-router only on prompts
that are far from the training prompts. For each bundled dataset, on its in-distribution split and
on every leave-one-domain-out fold, this measures the share of test prompts whose mean cosine
distance to their k nearest training prompts exceeds the 90th / 95th / 99th percentile of the
training prompts' own distances (``NeighbourIndex.reference``, the gate's reference), beside the
default cross-attention router's AIQ minus the zero router's on that fold, read from the
comparison's ``results.json`` files (``--comparison``, written by ``python -m experiments``) where
they exist. Nothing here chooses anything: the test folds are only described.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from experiments.common import dump_json

QUANTILES = (0.9, 0.95, 0.99)


def share_beyond(train_X: np.ndarray, train_quality: np.ndarray, test_X: np.ndarray) -> list[float]:
    """Share of test prompts farther from the training prompts than each reference quantile."""
    from router.gate import NeighbourIndex

    index = NeighbourIndex(train_X, train_quality)
    cut = np.quantile(index.reference(), QUANTILES)
    d, _ = index.query(test_X)
    return [float((d > c).mean()) for c in cut]


def _fold_gap(comparison: Path, dataset: str, fold: str | None) -> float | None:
    """The default router's (linear reward) mean AIQ minus the zero router's, from the comparison."""
    path = comparison / dataset / ("in_distribution" if fold is None else f"cross_domain/{fold}") / "results.json"
    if not path.exists():
        return None
    r = json.loads(path.read_text())
    router = r["routers"].get("cross_attention_linear", {}).get("aiq")
    zero = r["zero_router"].get("aiq")
    router = router.get("mean") if isinstance(router, dict) else router
    return None if router is None or zero is None else float(router) - float(zero)


def run(datasets: list[str], comparison: Path) -> dict:
    from router.data import load_table
    from router.data.splits import leave_one_domain_out, train_test_split
    from router.embeddings import make_encoder

    encoder = make_encoder()
    rows = []
    for name in datasets:
        table = load_table(name)
        train, test = train_test_split(table)
        folds = [("in-distribution", None, train, test)]
        folds += [(f"held out: {d}", d, tr, te) for d, tr, te in leave_one_domain_out(table)]
        for label, fold, tr, te in folds:
            shares = share_beyond(encoder.embed(tr.prompts), np.asarray(tr.quality), encoder.embed(te.prompts))
            gap = _fold_gap(comparison, name, fold)
            rows.append({"dataset": name, "fold": label, "n_test": len(te.prompts),
                         **{f"beyond_q{int(q * 100)}": round(s, 3) for q, s in zip(QUANTILES, shares)},
                         "router_minus_zero": None if gap is None else round(gap, 4)})  # fmt: skip
    return {"quantiles": list(QUANTILES), "rows": rows}


def main(argv: list[str] | None = None) -> int:
    from load_tests.common import format_table

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="dcrouter,routellm", help="comma list of bundled datasets")
    p.add_argument("--comparison", default="results/comparison", help="folder of `python -m experiments` (per-fold AIQ)")
    p.add_argument("--out", default="results/novelty.json", help="JSON output path")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    result = run([d.strip() for d in args.datasets.split(",") if d.strip()], Path(args.comparison))
    print(format_table(result["rows"]))
    dump_json(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

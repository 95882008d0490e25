"""How the training defaults were chosen: on the validation split carved from training data only.

    python -m experiments.selection [--data dcrouter] [--out results/comparison/selection.json]
    python -m experiments --parts selection --datasets dcrouter          # the same, as a part of the comparison

Every candidate is trained on dcrouter's train half (RouterBench split) with ``val_fraction=0.15``
and seed 0 and scored by the paper-form AIQ (linear reward) of its best epoch on those validation
rows; KNN k=40 (RouterBench's best baseline there) is fitted on the same non-validation rows and
scored on the same rows with its own reward. The test split is never touched.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

# The network alone (fallback off): this study reads each network's own validation history.
BASE = dict(val_fraction=0.15, seed=0, product=False, fallback="off")
CANDIDATES = {
    "per-model cost norm, BCE, name init (first default)": {},
    "pooled cost norm": dict(cost_norm="pooled"),
    "pooled cost norm, MSE quality loss": dict(cost_norm="pooled", quality_loss="mse"),
    "no name initialisation": dict(init_from_names=False),
    "hidden 64, dropout 0.2, weight decay 0.05": dict(hidden_dim=64, dropout=0.2, weight_decay=0.05),
    "+ prompt ⊙ model in the heads (the default)": dict(product=True),
}


def select(table, encoder, base: dict | None = None) -> dict:
    """Train every candidate on ``table``'s train half and score it on validation rows carved from it."""
    from router.baselines.knn import KNNRouter
    from router.core import Router
    from router.data.splits import train_test_split
    from router.evaluation.metrics import aiq_paper, ndch
    from router.evaluation.sweep import sweep
    from router.model.config import TrainConfig
    from router.data.splits import split_rows

    settings = {**BASE, **(base or {})}
    train, _ = train_test_split(table, "auto")
    X = encoder.embed(train.prompts)
    fit, val = split_rows(len(X), settings["val_fraction"], settings["seed"])  # the rows training holds out
    Q, C = train.quality, train.cost
    knn = KNNRouter(min(40, len(fit))).fit(X[fit], Q[fit], C[fit], train.models)
    rows = {"KNN k=40 (routerbench reward)": {"val_aiq": aiq_paper(ndch(sweep(knn.predict(X[val]), Q[val], C[val], "routerbench")))}}
    print(json.dumps(rows), flush=True)
    for label, fields in CANDIDATES.items():
        t0 = time.perf_counter()
        router = Router.untrained(TrainConfig(**{**settings, **fields}), encoder)
        est = router.fit(X, Q, C, train.models, prompts=train.prompts).predictor
        best = est.history_[est.best_epoch_ - 1]
        rows[label] = {
            "fields": fields,
            "val_aiq": best["val_aiq"],
            "val_loss": best["val_loss"],
            "best_epoch": est.best_epoch_,
            "seconds": time.perf_counter() - t0,
        }
        print(json.dumps({label: rows[label]}), flush=True)
    return {"data": table.name, "base": settings, "rows": rows}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.selection", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="dcrouter")
    p.add_argument("--out", default="results/comparison/selection.json")
    args = p.parse_args(argv)

    import torch

    from router.data.io import load_table
    from experiments.common import dump_json
    from router.embeddings import make_encoder

    torch.set_num_threads(1)
    result = select(load_table(args.data), make_encoder())
    dump_json(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

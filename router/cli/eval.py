"""``router eval``: train routers on a train split, sweep them over λ on the test split, print the
RouterBench table and write ``results.json`` and ``cost_quality.png``.

With ``--cross-domain``: leave-one-domain-out over every domain of ``--data``; each domain's full
results go to ``OUT/<domain>/`` and ``OUT/results.json`` holds the summary
``{"dataset", "models", "cross_domain": {"domains": {domain: {"n_train", "n_test", "routers":
{row: {"aiq", "aiq_routerbench", "max_quality", "cost_at_max_quality"}}, "zero_router": {"aiq",
"aiq_routerbench"}, "oracle": {"quality", "cost"}}}, "mean": {same keys, unweighted mean over
domains, without n_train/n_test}}}``.
"""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "eval",
        help="evaluate routers RouterBench-style (λ sweep, NDCH, AIQ) and write results.json + cost_quality.png",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", required=True, help="routing table (.pkl/.parquet/.csv/.jsonl) or a bundled name: dcrouter, routellm")
    p.add_argument("--train-data", default=None, help="train on this table and evaluate on ALL of --data")
    p.add_argument("--routers", default="knn,mlp,svm", help="comma-separated router families (default knn,mlp,svm)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--split", default="auto", choices=("auto", "routerbench", "column"), help="train/test split of --data (default auto)")
    p.add_argument("--grid", default=None, help="λ values for every row: v1,v2,... or logspace:START:STOP:NUM (default: each reward's own grid)")
    p.add_argument("--encoder", default=None, help="sentence-transformers model name or path, or hash:<dim> (default all-MiniLM-L6-v2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the routers (default 0)")
    p.add_argument("--cross-domain", action="store_true", help="leave-one-domain-out over every domain of --data")
    p.add_argument("--artifact", default=None, help="a trained router artifact directory, for the cross_attention family")
    p.add_argument("--drop-incomplete", action="store_true", help="drop rows with a missing score or cost instead of failing")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from router.data.io import load_table
    from router.data.splits import train_test_split
    from router.embeddings import DEFAULT_ENCODER, make_encoder
    from router.evaluation.runner import (
        evaluate,
        evaluate_cross_domain,
        format_cross_domain_table,
        format_table,
        write_cross_domain,
        write_results,
    )
    from router.registry import BuildContext, parse_router_list

    # Cheap checks first, so bad input fails before any loading or embedding.
    routers = parse_router_list(args.routers)
    from router.rewards import parse_lambdas

    grid = None if args.grid is None else parse_lambdas(args.grid, "--grid")
    if args.cross_domain and args.train_data:
        raise ValueError("--cross-domain and --train-data exclude each other (cross-domain splits --data by domain)")
    if args.artifact and not Path(args.artifact).exists():
        raise FileNotFoundError(f"--artifact: no such directory: {args.artifact}")

    table = load_table(args.data, drop_incomplete=args.drop_incomplete)
    dataset = table.name
    encoder = make_encoder(args.encoder or DEFAULT_ENCODER)
    # The cross-attention family reads the encoder to start model embeddings from the model names
    # and to check a loaded artifact was trained on the same encoder.
    ctx = BuildContext(seed=args.seed, artifact=args.artifact, options={"encoder": encoder})

    if args.cross_domain:
        summary, per_domain = evaluate_cross_domain(table, routers, encoder, ctx, grid, dataset=dataset)
        path = write_cross_domain(summary, per_domain, args.out)
        print(format_cross_domain_table(summary))
        print(f"wrote {path} and {len(per_domain)} per-domain results under {args.out}/")
        return 0

    if args.train_data:
        train, test = load_table(args.train_data, drop_incomplete=args.drop_incomplete), table
        dataset = f"{train.name} -> {table.name}"
    else:
        train, test = train_test_split(table, args.split)
    log.info("%s: %d train, %d test prompts, %d models", dataset, len(train), len(test), len(table.models))
    results = evaluate(train, test, routers, encoder, ctx, grid, dataset=dataset)
    path = write_results(results, args.out)
    print(format_table(results))
    print(f"wrote {path} and {Path(args.out) / 'cost_quality.png'}")
    return 0

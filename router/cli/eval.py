"""``router eval``: train routers on a train split, sweep them over λ on the test split, print the
RouterBench table and write ``results.json`` and ``cost_quality.png``.

Every evaluation also reports the deployable no-router (``no_router_<reward>``: at each λ the single
model best on the TRAINING rows, sent every test prompt) and a paired bootstrap over the test
prompts of each row's AIQ difference to the best baseline, its no-router row and the zero router
(95% interval; a difference whose interval contains 0 is printed as a tie), and per row the
expected calibration error of predicted quality (``calibration``; ``reliability.png``). ``--seeds N`` repeats
the evaluation with N seeds and reports mean ± std (``<key>_std``, ``<key>_seeds``; per-seed
results under ``runs``).

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
    p.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="evaluate N times: run i trains the routers with seed SEED+i and, with the random routerbench split, "
        "splits with seed 42+i; results are mean ± std (default 1)",
    )
    p.add_argument(
        "--bootstrap",
        type=int,
        default=1000,
        help="paired bootstrap resamples of the test prompts for the AIQ differences (default 1000; 0 = none)",
    )
    p.add_argument(
        "--calibrate",
        default=None,
        help="also evaluate every router with post-hoc calibration: temperature and/or isotonic (comma list), fitted on "
        "a validation carve of the TRAINING rows; rows <row>+<method>",
    )
    p.add_argument("--cross-domain", action="store_true", help="leave-one-domain-out over every domain of --data")
    p.add_argument("--artifact", default=None, help="a trained router artifact directory, for the cross_attention family")
    p.add_argument("--train-config", default=None,
                   help="YAML/JSON of TrainConfig fields for the cross_attention families (members of cross_attention_unc too)")
    p.add_argument("--members", type=int, default=None, help="ensemble size K of the *_unc families (default 5)")
    p.add_argument("--drop-incomplete", action="store_true", help="drop rows with a missing score or cost instead of failing")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from router.data.io import load_table
    from router.data.splits import train_test_split
    from router.embeddings import DEFAULT_ENCODER, make_encoder
    from router.calibration import parse_methods
    from router.evaluation.bootstrap import BootstrapConfig
    from router.evaluation.runner import (
        evaluate_cross_domain,
        evaluate_seeds,
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
    if args.seeds < 1:
        raise ValueError(f"--seeds: expected an integer >= 1, got {args.seeds}")
    if args.bootstrap < 0:
        raise ValueError(f"--bootstrap: expected an integer >= 0 (0 = no bootstrap), got {args.bootstrap}")
    boot = BootstrapConfig(resamples=args.bootstrap, seed=args.seed)
    calibrate = parse_methods(args.calibrate)
    if args.cross_domain and args.train_data:
        raise ValueError("--cross-domain and --train-data exclude each other (cross-domain splits --data by domain)")
    if args.artifact and not Path(args.artifact).exists():
        raise FileNotFoundError(f"--artifact: no such directory: {args.artifact}")

    table = load_table(args.data, drop_incomplete=args.drop_incomplete)
    dataset = table.name
    encoder = make_encoder(args.encoder or DEFAULT_ENCODER)
    # The cross-attention family reads the encoder to start model embeddings from the model names
    # and to check a loaded artifact was trained on the same encoder.
    options = {"encoder": encoder, "calibrate": calibrate}
    if args.train_config:
        from router.model.config import load_train_config

        load_train_config(args.train_config)  # a bad file is a one-line error now, not after the embedding
        options["train_config"] = args.train_config
    if args.members is not None:
        if not 2 <= args.members <= 64:
            raise ValueError(f"--members: need 2..64 ensemble members, got {args.members}")
        options["uncertainty"] = {"members": args.members}
    ctx = BuildContext(seed=args.seed, artifact=args.artifact, options=options)

    if args.cross_domain:
        summary, per_domain = evaluate_cross_domain(table, routers, encoder, ctx, grid, dataset=dataset, seeds=args.seeds, bootstrap=boot)
        path = write_cross_domain(summary, per_domain, args.out)
        print(format_cross_domain_table(summary))
        print(f"wrote {path} and {len(per_domain)} per-domain results under {args.out}/")
        return 0

    if args.train_data:
        fixed = load_table(args.train_data, drop_incomplete=args.drop_incomplete), table
        dataset = f"{fixed[0].name} -> {table.name}"

        def split(i):
            return fixed
    else:

        def split(i):
            # RouterBench's split seed is 42; seed run i uses 42 + i (a column split ignores it).
            return train_test_split(table, args.split, seed=42 + i)

    train, test = split(0)
    log.info("%s: %d train, %d test prompts, %d models", dataset, len(train), len(test), len(table.models))
    results = evaluate_seeds(split, routers, encoder, ctx, grid, dataset=dataset, seeds=args.seeds, bootstrap=boot)
    path = write_results(results, args.out)
    print(format_table(results))
    print(f"wrote {path} and its plots under {args.out}/")
    return 0

"""``router train``: train the cross-attention router on a routing table and write an artifact.

    router train --data dcrouter --out artifacts/dcrouter [--config train.yaml] [--encoder NAME] [--split auto]
    router train --data dcrouter --out artifacts/unc --ensemble 4 [--domain-folds 3] [--rule shrink]

Trains on the train half of ``--split`` (``all`` = every row), embeds prompts through the on-disk
cache, and writes one artifact directory (see ``router.model.artifact``).

``--ensemble K`` trains the uncertainty-aware router (``router.model.ensemble``): K networks of the
config (seeds seed..seed+K-1) whose disagreement σ shrinks each prediction toward the model's
training mean; the shrinkage τ is chosen on training-side folds only (a seeded 20% carve and up to
``--domain-folds`` leave-one-domain-out folds of the training domains), at (folds + 1) × K trainings.
"""

from __future__ import annotations

import argparse

SPLITS = ("auto", "routerbench", "column", "all")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("train", help="train the cross-attention router and write an artifact directory")
    p.add_argument("--data", required=True, help="routing table (pkl/parquet/csv/jsonl) or a bundled name (dcrouter, routellm)")
    p.add_argument("--out", required=True, help="artifact directory to write")
    p.add_argument("--config", help="YAML/JSON file of TrainConfig fields (e.g. from `router tune`)")
    p.add_argument("--encoder", default=None, help="encoder name: a sentence-transformers model (default all-MiniLM-L6-v2) or hash:<dim>")
    p.add_argument("--split", default="auto", choices=SPLITS, help="train on this split's train half, or 'all' rows (default auto)")
    p.add_argument("--seed", type=int, default=None, help="override the config's seed")
    p.add_argument("--cache-dir", default=None, help="embedding cache directory (default ~/.cache/llm-router/embeddings)")
    p.add_argument("--ensemble", type=int, default=None, metavar="K",
                   help="train the uncertainty-aware router: K members, shrinkage chosen on training-side folds (2..64)")
    p.add_argument("--domain-folds", type=int, default=3, help="with --ensemble: at most this many leave-one-domain-out folds (default 3)")
    p.add_argument("--rule", default="shrink", choices=("shrink", "risk"),
                   help="with --ensemble: shrink toward the training prior (default) or q - kappa*sigma")
    p.add_argument("--quiet", action="store_true", help="no per-epoch progress lines")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    import sys

    from router.core import Router
    from router.data.io import load_table
    from router.data.splits import train_test_split
    from router.embeddings import DEFAULT_ENCODER
    from router.model.config import TrainConfig, load_train_config

    config = load_train_config(args.config) if args.config else TrainConfig()
    if args.seed is not None:
        config = config.model_copy(update={"seed": args.seed})
    ensemble = None
    if args.ensemble is not None:
        from pydantic import ValidationError

        from router.cli.errors import CliError
        from router.uncertainty import UncertaintyConfig

        if args.ensemble < 2:
            raise CliError(f"--ensemble: need at least 2 members to measure disagreement, got {args.ensemble}")
        try:
            ensemble = UncertaintyConfig(members=args.ensemble, domain_folds=args.domain_folds, rule=args.rule)
        except ValidationError as exc:
            e = exc.errors()[0]
            raise CliError(f"--{str(e['loc'][0]).replace('members', 'ensemble').replace('_', '-')}: {e['msg']}") from None
    table = load_table(args.data)
    train = table if args.split == "all" else train_test_split(table, args.split)[0]
    encoder = args.encoder or DEFAULT_ENCODER
    print(f"router train: {len(train)} training prompts, {len(train.models)} models, encoder {encoder}", file=sys.stderr)
    if ensemble is not None:
        print(f"router train: ensemble of {ensemble.members}, {ensemble.rule} rule chosen on up to {ensemble.domain_folds + 1} "
              "training-side folds", file=sys.stderr)  # fmt: skip
    router = Router.train(train, config, encoder=encoder, progress=not args.quiet, cache_dir=args.cache_dir, ensemble=ensemble)
    out = router.save(args.out, extra={"data": str(args.data), "split": args.split, "n_train": len(train)})
    if hasattr(router.predictor, "summary"):  # an ensemble's or a fallback's chosen knobs
        print(f"router train: {router.predictor.summary()}")
    print(f"router train: wrote {out} (c_ref {router.c_ref:.3g} USD, {router.predictor.train_seconds_:.1f} s)")
    return 0

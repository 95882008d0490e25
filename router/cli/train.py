"""``router train``: train the cross-attention router on a routing table and write an artifact.

    router train --data dcrouter --out artifacts/dcrouter [--config train.yaml] [--encoder NAME] [--split auto]

Trains on the train half of ``--split`` (``all`` = every row), embeds prompts through the on-disk
cache, and writes one artifact directory (see ``router.model.artifact``).
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
    p.add_argument("--quiet", action="store_true", help="no per-epoch progress lines")
    p.set_defaults(func=run)
    return p


def build_train_encoder(name: str | None, cache_dir=None):
    """The cached encoder for ``name`` (default all-MiniLM-L6-v2); see ``router.embeddings.encoder_from_name``."""
    from router.embeddings import DEFAULT_ENCODER, make_encoder

    return make_encoder(name or DEFAULT_ENCODER, cache_dir=cache_dir)


def run(args) -> int:
    import sys

    from router.data.io import load_table
    from router.data.splits import train_test_split
    from router.model.artifact import save_artifact
    from router.model.training import TrainConfig, load_train_config, train_router

    config = load_train_config(args.config) if args.config else TrainConfig()
    if args.seed is not None:
        config = config.model_copy(update={"seed": args.seed})
    table = load_table(args.data)
    train = table if args.split == "all" else train_test_split(table, args.split)[0]
    encoder = build_train_encoder(args.encoder, args.cache_dir)
    print(f"router train: {len(train)} training prompts, {len(train.models)} models, encoder {encoder.name}", file=sys.stderr)
    X = encoder.embed(train.prompts)
    model_init = encoder.embed(list(train.models)) if config.init_from_names else None
    tokens = mask = None
    if config.variant == "model_queries":
        if encoder.name.startswith("hash:"):
            raise ValueError("--config variant model_queries needs a sentence-transformers encoder (token features)")
        from router.model.tokens import StaticTokenFeaturizer

        tokens, mask = StaticTokenFeaturizer(encoder.name, config.token_segments)(train.prompts)
    predictor = train_router(
        X, train.quality, train.cost, train.models, config, progress=not args.quiet, tokens=tokens, mask=mask, model_init=model_init
    )
    out = save_artifact(
        predictor,
        args.out,
        encoder_name=encoder.name,
        encoder_dim=X.shape[1],
        extra={"data": str(args.data), "split": args.split, "n_train": len(train)},
    )
    print(f"router train: wrote {out} (c_ref {predictor.c_ref:.3g} USD, {predictor.train_seconds:.1f} s)")
    return 0

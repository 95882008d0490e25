"""``build_app``: the Serve application (Embedder -> Scorer, Dispatcher ingress) from validated args.

    serve run deploy/serve_config.yaml              # args in the config file
    serve run serve_app.app:build_app artifact_path=artifacts/router backends_file=deploy/backends.yaml

The artifact is opened once, here, where the app is built (as a :class:`router.core.Router`, which
the replicas receive), so a missing or corrupt artifact, or a backends file that names no pool
model, fails ``serve run`` with a message instead of leaving replicas crash-looping.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ray.serve import Application

from serve_app.config import AppArgs, load_backends

log = logging.getLogger("ray.serve")

TRAIN_HINT = "train one with `router train --data dcrouter --out artifacts/router` (or `make run`)"


def load_router(artifact_path: str):
    """The artifact as a :class:`router.core.Router` (without its encoder, which the Embedder builds),
    opened once here and shipped to the replicas that need it."""
    if not Path(artifact_path).exists():
        raise ValueError(f"artifact_path {artifact_path!r} does not exist; {TRAIN_HINT}")
    from router.core import Router

    router = Router.load(artifact_path)
    if router.needs_tokens:
        # The model_queries variant also reads token features, which the Embedder does not produce.
        raise ValueError(f"artifact {artifact_path!r} is a {router.config.variant!r} router that needs token "
                         "features; the service serves sentence-embedding routers (variant prompt_queries)")
    return router


def build_app(args: dict[str, Any] | AppArgs) -> Application:
    from serve_app.deployments import Dispatcher, Embedder, Scorer

    cfg = args if isinstance(args, AppArgs) else AppArgs.model_validate(args)
    router = load_router(cfg.artifact_path)
    backends: list[dict] = []
    if cfg.backends_file is not None:
        listed = load_backends(cfg.backends_file).backends
        backends = [b.model_dump() for b in listed if b.model in router.models]
        unknown = sorted(b.model for b in listed if b.model not in router.models)
        if not backends:
            raise ValueError(
                f"backends_file {cfg.backends_file!r} names none of the pool models {list(router.models)}"
            )
        if unknown:
            log.warning("backends for models outside the pool are ignored: %s", unknown)
    embedder = Embedder.options(user_config=cfg.embedder_batching.model_dump()).bind(router, cfg.encoder, cfg.embedder_threads)
    scorer = Scorer.options(user_config=cfg.scorer_batching.model_dump()).bind(router)
    # The dispatcher does not get the batching settings, so retuning them (user_config) stays a
    # lightweight update that does not restart the ingress.
    dispatcher_args = cfg.model_dump(exclude={"embedder_batching", "scorer_batching"})
    return Dispatcher.bind(embedder, scorer, router, backends, dispatcher_args)

"""``build_app``: the Serve application (Embedder -> Scorer, Dispatcher ingress; or, with ``layout:
colocated``, the Dispatcher alone running both stages) from validated args.

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
    keys_config = check_keys(cfg, router.models)  # [keys] a bad keys file fails `serve run`, not the first request
    if cfg.layout == "colocated":
        # One deployment: the Dispatcher runs the Embedder's and the Scorer's code in its own process
        # (with their batching, fixed by the args: no separate user_config to retune).
        return Dispatcher.options(user_config=keys_config).bind(None, None, router, backends, cfg.model_dump())
    embedder = Embedder.options(user_config=cfg.embedder_batching.model_dump()).bind(router, cfg.encoder, cfg.embedder_threads)
    scorer = Scorer.options(user_config=cfg.scorer_batching.model_dump()).bind(router)
    # The dispatcher does not get the batching settings, so retuning them (user_config) stays a
    # lightweight update that does not restart the ingress.
    dispatcher_args = cfg.model_dump(exclude={"embedder_batching", "scorer_batching"})
    return Dispatcher.options(user_config=keys_config).bind(embedder, scorer, router, backends, dispatcher_args)  # [keys] user_config


def check_keys(cfg: AppArgs, models) -> dict:
    """The keys file, validated against the pool; returns the Dispatcher's ``user_config``: the file's
    digest, so that redeploying after an edit makes every replica re-read it at once (it also
    re-reads it by itself within ``keys_poll_s``)."""
    if cfg.auth == "off":
        log.warning("auth is off: anyone who can reach the router may route to every backend, without limits or budgets")
        return {"keys_file_sha256": None}
    import hashlib

    from serve_app.auth.keys import load_keys_file

    assert cfg.keys_file is not None
    load_keys_file(cfg.keys_file).check_models(models)
    cfg.resolved_ledger_url()  # a missing ledger_url_env fails here
    return {"keys_file_sha256": hashlib.sha256(Path(cfg.keys_file).read_bytes()).hexdigest()}

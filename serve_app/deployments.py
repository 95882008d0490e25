"""The three Serve deployments: Embedder -> Scorer, called by the Dispatcher (FastAPI ingress).

Each replica holds the same :class:`router.core.Router` (opened once where the app is built) and
runs its own stage of it. Resource defaults here fit one 2-CPU machine at one replica each
(0.5 + 0.25 + 0.25 CPU: three deployments at num_cpus=1 never schedule on 2 CPUs);
``deploy/serve_config.yaml`` sets the autoscaling of each.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Optional

import numpy as np
from ray import serve
from ray.serve.handle import DeploymentHandle

from serve_app.config import AppArgs, BackendConfig, BatchingConfig
from serve_app.metrics import RouterMetrics, batch_metrics
from serve_app.retry import call_with_retry

log = logging.getLogger("ray.serve")


def _split(array: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    return np.split(array, np.cumsum(sizes)[:-1]) if sizes else []


def _device() -> str:
    """CUDA when Ray gave this replica a GPU (``ray_actor_options.num_gpus``), else CPU."""
    import ray

    return "cuda" if ray.get_gpu_ids() else "cpu"


class _Batched:
    """``reconfigure`` for a deployment whose batched method is ``self._batched``: the live
    ``user_config`` path for ``max_batch_size`` and ``batch_wait_timeout_s``."""

    batching: BatchingConfig

    def reconfigure(self, user_config: dict) -> None:
        cfg = BatchingConfig.model_validate(user_config or {})
        method = self._batched_method()
        method.set_max_batch_size(cfg.max_batch_size)
        method.set_batch_wait_timeout_s(cfg.batch_wait_timeout_s)
        self.batching = cfg
        log.info("%s batching: %s", type(self).__name__, cfg)

    def _batched_method(self):  # pragma: no cover - overridden
        raise NotImplementedError


@serve.deployment(name="Embedder", ray_actor_options={"num_cpus": 0.5}, max_ongoing_requests=64)
class Embedder(_Batched):
    """Prompts -> embeddings (``Router.embed``), several requests per encoder call."""

    def __init__(self, router, encoder_override: Optional[str] = None, num_threads: int = 2):
        import torch

        # Ray sets OMP_NUM_THREADS=1 in workers; the encoder is the CPU bottleneck.
        torch.set_num_threads(num_threads)
        self.device = _device()
        self.router = router.use_encoder(encoder_override, device=self.device)
        self.router.embed(["warm up"])  # load the model now, not on the first request
        self.max_tokens = self.router.max_tokens
        self.batching = BatchingConfig()
        self._size_hist, self._latency_hist = batch_metrics("embed")

    def _batched_method(self):
        return self.embed

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.02)
    async def embed(self, prompt_lists: list[list[str]]) -> list[np.ndarray]:
        sizes = [len(p) for p in prompt_lists]
        flat = [p for prompts in prompt_lists for p in prompts]
        t0 = time.perf_counter()
        # In a thread so requests keep queueing (and forming the next batch) while torch runs.
        vectors = await asyncio.to_thread(self.router.embed, flat)
        self._latency_hist.observe((time.perf_counter() - t0) * 1000.0)
        self._size_hist.observe(len(flat))
        return _split(vectors, sizes)

    def describe(self) -> dict:
        return {
            "encoder": self.router.encoder_name,
            "device": self.device,
            "max_tokens": self.max_tokens,
            "batching": self.batching.model_dump(),
        }


@serve.deployment(name="Scorer", ray_actor_options={"num_cpus": 0.25}, max_ongoing_requests=64)
class Scorer(_Batched):
    """Embeddings -> predicted quality and cost for every pool model (``Router.predict_embedded``)."""

    def __init__(self, router, num_threads: int = 1):
        import torch

        torch.set_num_threads(num_threads)
        self.router = router
        self.batching = BatchingConfig()
        self._size_hist, self._latency_hist = batch_metrics("score")

    def _batched_method(self):
        return self.score

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.005)
    async def score(self, embeddings: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]]:
        sizes = [len(x) for x in embeddings]
        t0 = time.perf_counter()
        prediction = await asyncio.to_thread(self.router.predict_embedded, np.concatenate(embeddings, axis=0))
        self._latency_hist.observe((time.perf_counter() - t0) * 1000.0)
        self._size_hist.observe(sum(sizes))
        # Uncertainty (an ensemble router's members' std) travels with quality and cost; None otherwise.
        unc = [None] * len(sizes) if prediction.uncertainty is None else _split(prediction.uncertainty, sizes)
        return list(zip(_split(prediction.quality, sizes), _split(prediction.cost, sizes), unc))

    def describe(self) -> dict:
        return {"models": list(self.router.models), "batching": self.batching.model_dump()}


@serve.deployment(name="Dispatcher", ray_actor_options={"num_cpus": 0.25}, max_ongoing_requests=128)
@serve.ingress()
class Dispatcher:
    """Ingress: parses requests, asks Embedder -> Scorer for predictions, decides (``Router.decide``), forwards."""

    def __init__(self, embedder: DeploymentHandle, scorer: DeploymentHandle, router, backends: list[dict], args: dict):
        from router.prediction import Prediction
        from serve_app.serving import RouterService

        self.embedder = embedder
        self.scorer = scorer

        retry = AppArgs.model_validate(args).replica_retry

        async def predict(prompts: list[str]) -> Prediction:
            # The embedder's response is handed to the scorer unresolved: the embeddings go
            # replica-to-replica instead of through this one. Both calls are pure: when a replica
            # dies under them the chain is run again, within the request's deadline (serve_app.retry).
            quality, cost, unc = await call_with_retry(lambda: self.scorer.score.remote(self.embedder.embed.remote(prompts)), retry)
            return Prediction(quality=np.asarray(quality), cost=np.asarray(cost), uncertainty=None if unc is None else np.asarray(unc))

        backend_cfgs = {b["model"]: BackendConfig.model_validate(b) for b in backends}
        self.service = RouterService(router, backend_cfgs, AppArgs.model_validate(args), predict, RouterMetrics.create())

    def reconfigure(self, user_config: dict) -> None:
        """[keys] ``user_config`` carries the keys file's digest (see ``serve_app.app.check_keys``): re-read it now."""
        self.service.gate.reconfigure(user_config)

    async def _health(self) -> dict:
        embedder, scorer = await asyncio.gather(self.embedder.describe.remote(), self.scorer.describe.remote())
        return {"embedder": embedder, "scorer": scorer}

    def __serve_build_asgi_app__(self):
        from serve_app.api import build_fastapi_app

        return build_fastapi_app(self.service, self._health)

    async def __del__(self):
        service = getattr(self, "service", None)  # absent if __init__ failed
        if service is not None:
            await service.close()

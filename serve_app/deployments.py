"""The three Serve deployments: Embedder -> Scorer, called by the Dispatcher (FastAPI ingress).

Each replica holds the same :class:`router.core.Router` (opened once where the app is built) and
runs its own stage of it. Resource defaults here are small (0.5 + 0.25 + 0.25 CPU, so two apps fit
on a 2-CPU test cluster; three deployments at num_cpus=1 never schedule on 2 CPUs); torch threads
per replica follow the CPUs Ray gave it (``serve_app.batching.torch_threads_for``: at least 1).
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

from serve_app.batching import NaturalBatcher, assigned_cpus, token_chunks, torch_threads_for
from serve_app.config import AppArgs, BackendConfig, BatchingConfig, EmbedderBatchingConfig
from serve_app.metrics import RouterMetrics, batch_metrics
from serve_app.retry import call_with_retry

log = logging.getLogger("ray.serve")


def _split(array: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    if len(sizes) == 1:
        return [array]
    return np.split(array, np.cumsum(sizes)[:-1]) if sizes else []


def _device() -> str:
    """CUDA when Ray gave this replica a GPU (``ray_actor_options.num_gpus``), else CPU."""
    import ray

    return "cuda" if ray.get_gpu_ids() else "cpu"


class _Batched:
    """A deployment whose work goes through a ``NaturalBatcher`` (``serve_app.batching``): a call
    that finds it idle runs at once; under load the next batch is what queued meanwhile.
    ``reconfigure`` is the live ``user_config`` path for its limits."""

    batching: BatchingConfig
    config_type = BatchingConfig
    batcher: NaturalBatcher

    def _make_batcher(self, fn, size_of) -> None:
        self.batching = self.config_type()
        b = self.batching
        self.batcher = NaturalBatcher(fn, b.max_batch_size, None, b.max_concurrent_batches, b.batch_wait_timeout_s, size_of)

    def reconfigure(self, user_config: dict) -> None:
        cfg = self.config_type.model_validate(user_config or {})
        self.batcher.configure(cfg.max_batch_size, None, cfg.max_concurrent_batches, cfg.batch_wait_timeout_s)
        self.batching = cfg
        log.info("%s batching: %s", type(self).__name__, cfg)


def _token_lengths(encoder):
    """A function texts -> token counts (as the encoder will cut them), or None for an encoder
    without a tokenizer (``hash:<dim>``: no padding to avoid)."""
    model = getattr(getattr(encoder, "encoder", encoder), "model", None)
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        return None
    limit = int(getattr(model, "max_seq_length", 512) or 512)

    def lengths(texts: list[str]) -> list[int]:
        ids = tokenizer(texts, add_special_tokens=True, truncation=True, max_length=limit)["input_ids"]
        return [len(x) for x in ids]

    return lengths


@serve.deployment(name="Embedder", ray_actor_options={"num_cpus": 0.5}, max_ongoing_requests=64)
class Embedder(_Batched):
    """Prompts -> embeddings (``Router.embed``), several requests per encoder call, sorted by token
    length and cut into chunks under ``max_batch_tokens`` padded tokens."""

    config_type = EmbedderBatchingConfig

    def __init__(self, router, encoder_override: Optional[str] = None, num_threads: Optional[int] = None):
        import torch

        # Ray sets OMP_NUM_THREADS=1 in workers: threads come from the CPUs Ray reserved for this
        # replica (never more, so replicas x threads <= the deployment's CPUs).
        self.cpus = assigned_cpus()
        self.threads = torch_threads_for(self.cpus, num_threads)
        torch.set_num_threads(self.threads)
        self.device = _device()
        self.router = router.use_encoder(encoder_override, device=self.device)
        self.router.embed(["warm up"])  # load the model now, not on the first request
        self.max_tokens = self.router.max_tokens
        self._lengths = _token_lengths(self.router.encoder)
        self._size_hist, self._latency_hist = batch_metrics("embed")
        self._make_batcher(self._embed_batch, len)

    async def embed(self, prompts: list[str]) -> np.ndarray:
        return await self.batcher.submit(prompts)

    def _encode(self, flat: list[str]) -> np.ndarray:
        cap = self.batching.max_batch_tokens
        if self._lengths is None or cap is None or len(flat) == 1:
            return self.router.embed(flat)
        chunks = token_chunks(self._lengths(flat), cap)
        if len(chunks) == 1:
            return self.router.embed(flat)
        out = None
        for idx in chunks:
            vec = self.router.embed([flat[i] for i in idx])
            if out is None:
                out = np.empty((len(flat), vec.shape[1]), dtype=np.float32)
            out[idx] = vec
        return out

    async def _embed_batch(self, prompt_lists: list[list[str]]) -> list[np.ndarray]:
        sizes = [len(p) for p in prompt_lists]
        flat = [p for prompts in prompt_lists for p in prompts]
        t0 = time.perf_counter()
        # In a thread so requests keep queueing (and forming the next batch) while torch runs.
        vectors = await asyncio.to_thread(self._encode, flat)
        self._latency_hist.observe((time.perf_counter() - t0) * 1000.0)
        self._size_hist.observe(len(flat))
        return _split(vectors, sizes)

    def describe(self) -> dict:
        return {
            "encoder": self.router.encoder_name,
            "device": self.device,
            "max_tokens": self.max_tokens,
            "cpus": self.cpus,
            "torch_threads": self.threads,
            "batching": self.batching.model_dump(),
            "batches": self.batcher.batches,
            "calls": self.batcher.calls,
        }


@serve.deployment(name="Scorer", ray_actor_options={"num_cpus": 0.25}, max_ongoing_requests=64)
class Scorer(_Batched):
    """Embeddings -> predicted quality and cost for every pool model (``Router.predict_embedded``)."""

    def __init__(self, router, num_threads: Optional[int] = None):
        import torch

        self.cpus = assigned_cpus()
        self.threads = torch_threads_for(self.cpus, num_threads)
        torch.set_num_threads(self.threads)
        self.router = router
        self._size_hist, self._latency_hist = batch_metrics("score")
        self._make_batcher(self._score_batch, len)

    async def score(self, embedding: np.ndarray) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
        """Quality, cost and (for an ensemble router) the members' std of quality, else None."""
        return await self.batcher.submit(embedding)

    async def _score_batch(self, embeddings: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]]:
        sizes = [len(x) for x in embeddings]
        t0 = time.perf_counter()
        X = embeddings[0] if len(embeddings) == 1 else np.concatenate(embeddings, axis=0)
        # In a thread, as in the Embedder: a batch computed on the event loop would keep the calls
        # that arrive meanwhile from reaching the queue, and the next batch would be of one.
        prediction = await asyncio.to_thread(self.router.predict_embedded, X)
        self._latency_hist.observe((time.perf_counter() - t0) * 1000.0)
        self._size_hist.observe(sum(sizes))
        # Uncertainty (an ensemble router's members' std) travels with quality and cost; None otherwise.
        unc = [None] * len(sizes) if prediction.uncertainty is None else _split(prediction.uncertainty, sizes)
        return list(zip(_split(prediction.quality, sizes), _split(prediction.cost, sizes), unc))

    def describe(self) -> dict:
        return {"models": list(self.router.models), "cpus": self.cpus, "torch_threads": self.threads,
                "batching": self.batching.model_dump(), "batches": self.batcher.batches, "calls": self.batcher.calls}


@serve.deployment(name="Dispatcher", ray_actor_options={"num_cpus": 0.25}, max_ongoing_requests=128)
@serve.ingress()
class Dispatcher:
    """Ingress: parses requests, asks Embedder -> Scorer for predictions (or runs both itself, layout
    ``colocated``), decides (``Router.decide``), forwards."""

    def __init__(self, embedder: Optional[DeploymentHandle], scorer: Optional[DeploymentHandle], router, backends: list[dict],
                 args: dict):
        from serve_app.serving import RouterService

        cfg = AppArgs.model_validate(args)
        # layout "colocated" binds no Embedder/Scorer: both stages then run in this process.
        self.stages = _LocalStages(router, cfg) if embedder is None else _RemoteStages(embedder, scorer, cfg.replica_retry)
        backend_cfgs = {b["model"]: BackendConfig.model_validate(b) for b in backends}
        self.service = RouterService(router, backend_cfgs, cfg, self.stages.predict, RouterMetrics.create())

    def reconfigure(self, user_config: dict) -> None:
        """[keys] ``user_config`` carries the keys file's digest (see ``serve_app.app.check_keys``): re-read it now."""
        self.service.gate.reconfigure(user_config)

    def __serve_build_asgi_app__(self):
        from serve_app.api import build_fastapi_app

        return build_fastapi_app(self.service, self.stages.describe)

    async def __del__(self):
        service = getattr(self, "service", None)  # absent if __init__ failed
        if service is not None:
            await service.close()


class _RemoteStages:
    """layout ``split``: the Embedder and Scorer deployments, called through their handles."""

    def __init__(self, embedder: DeploymentHandle, scorer: DeploymentHandle, retry):
        self.embedder, self.scorer, self.retry = embedder, scorer, retry

    async def predict(self, prompts: list[str]):
        from router.prediction import Prediction

        # The embeddings come back here and go on to the Scorer as a value. Handing the Scorer
        # the Embedder's unresolved response instead was slower (hash:384, same run, 2 runs each:
        # lone request p50 33 vs 28 ms, saturation 47 vs 65 requests/s): an embedding is ~1.5 KB,
        # so Ray returns it inline to this process, the owner, and the Scorer would fetch it from
        # here anyway. Both calls are pure: when a replica dies under them the chain is run
        # again, within the request's deadline (serve_app.retry).
        async def chain():
            embeddings = await self.embedder.embed.remote(prompts)
            return await self.scorer.score.remote(embeddings)

        quality, cost, unc = await call_with_retry(chain, self.retry)
        return Prediction(quality=np.asarray(quality), cost=np.asarray(cost), uncertainty=None if unc is None else np.asarray(unc))

    async def describe(self) -> dict:
        embedder, scorer = await asyncio.gather(self.embedder.describe.remote(), self.scorer.describe.remote())
        return {"layout": "split", "embedder": embedder, "scorer": scorer}


class _LocalStages:
    """layout ``colocated``: the Embedder's and the Scorer's own code (the classes behind the two
    deployments, same batching) in the Dispatcher's process. No hops and no copies between
    processes; a dead process takes the whole replica, so there is nothing to retry here."""

    def __init__(self, router, cfg: AppArgs):
        self.embedder = Embedder.func_or_class(router, cfg.encoder, cfg.embedder_threads)
        self.embedder.reconfigure(cfg.embedder_batching.model_dump())
        # torch's thread count is per process: the Scorer asks for the Embedder's, or it would reset it.
        self.scorer = Scorer.func_or_class(router, cfg.embedder_threads)
        self.scorer.reconfigure(cfg.scorer_batching.model_dump())

    async def predict(self, prompts: list[str]):
        from router.prediction import Prediction

        quality, cost, unc = await self.scorer.score(await self.embedder.embed(prompts))
        return Prediction(quality=quality, cost=cost, uncertainty=unc)

    async def describe(self) -> dict:
        return {"layout": "colocated", "embedder": self.embedder.describe(), "scorer": self.scorer.describe()}

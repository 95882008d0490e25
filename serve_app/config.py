"""Configuration of the routing service: the application args of ``build_app`` and the backends file.

Everything is a pydantic model so that a wrong ``serve_config.yaml`` or backends file fails at
``serve run`` time with the offending field named, not at the first request.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# The backends file is shared with `router label`; it lives in router.backends (re-exported here).
from router.backends import BackendConfig, BackendsFile, load_backends  # noqa: F401
from router.rewards import check_lambda, check_reward
from serve_app.retry import RetryPolicy


class BatchingConfig(BaseModel):
    """Batching of one deployment (``serve_app.batching.NaturalBatcher``); also its ``user_config``
    (retunable live)."""

    model_config = ConfigDict(extra="forbid")

    max_batch_size: int = Field(
        32,
        ge=1,
        le=4096,
        description="Most calls merged into one encoder/scorer run. A call is one HTTP request, so a "
        "/v1/route list of N prompts counts once and is encoded in one go.",
    )
    batch_wait_timeout_s: float = Field(
        0.0,
        ge=0.0,
        le=10.0,
        description="0 (the default): never wait; a call that finds the deployment idle runs at once, and "
        "under load the next batch is whatever queued while the current one ran. Above 0: a batch that "
        "would start unfull first waits this long for more calls (idle latency for bigger batches).",
    )
    max_concurrent_batches: int = Field(
        1,
        ge=1,
        le=64,
        description="Batches run at once per replica. 1 on a CPU (one batch uses every thread the replica "
        "has); 2 on a GPU lets the next batch be tokenised while the current one runs.",
    )


class EmbedderBatchingConfig(BatchingConfig):
    """The Embedder's batching, plus its padding control."""

    max_batch_tokens: Optional[int] = Field(
        2048,
        ge=1,
        le=10_000_000,
        description="Padded tokens per encoder forward pass: a batch's prompts are sorted by token length and "
        "cut into chunks of at most this many tokens (chunk size x its longest prompt), so short prompts "
        "are not padded to a long one's length. None: one pass per batch (sentence-transformers' own "
        "batching). Ignored by encoders without a tokenizer (hash:<dim>).",
    )


class AppArgs(BaseModel):
    """Arguments of ``serve_app.app:build_app`` (the ``args:`` block of a Serve config file)."""

    model_config = ConfigDict(extra="forbid")

    artifact_path: str = Field(description="Directory written by `router train` (the cross-attention router artifact).")
    backends_file: Optional[str] = Field(
        None, description="Backends YAML. Without it /v1/route works and /v1/chat/completions answers 503."
    )
    encoder: Optional[str] = Field(
        None,
        description="Encoder to load, as a model name/path or 'hash:<dim>'. Default: the encoder named in the "
        "artifact. It must produce the artifact's encoder (checked when the artifact is loaded).",
    )
    layout: Literal["split", "colocated"] = Field(
        "split",
        description="split (default): Embedder, Scorer and Dispatcher are three deployments (the Embedder scales on its "
        "own, e.g. on GPUs). colocated: the Dispatcher embeds and scores in its own process, with the same batching "
        "(no Embedder/Scorer deployments, two fewer hops per request; give the Dispatcher the CPUs the encoder needs). "
        "Measured side by side in BENCHMARKS.md (load_tests/bench_hops.py).",
    )
    embedder_threads: Optional[int] = Field(
        None,
        ge=1,
        le=256,
        description="torch threads per Embedder replica. Default: the whole CPUs Ray gave the replica "
        "(ray_actor_options.num_cpus, at least 1); a larger value is capped to them, so replicas x threads "
        "never exceed the CPUs the deployment reserved (serve_app.batching.torch_threads_for).",
    )
    embedder_batching: EmbedderBatchingConfig = Field(default_factory=EmbedderBatchingConfig, description="Embedder batching.")
    scorer_batching: BatchingConfig = Field(
        default_factory=lambda: BatchingConfig(max_batch_size=64),
        description="Scorer batching (its model is small: larger batches cost almost nothing).",
    )
    default_lambda: float = Field(1.0, description="λ when a request gives none.")
    default_reward: str = Field("linear", description="Reward when a request gives none: linear, routerbench, exponential.")
    max_prompt_chars: int = Field(
        100_000,
        ge=1,
        description="Prompts (or flattened conversations) longer than this are rejected with 400. Shorter ones "
        "are routed on their first encoder-max-length tokens (the encoder truncates, as in training).",
    )
    max_prompts_per_request: int = Field(1024, ge=1, description="Largest list accepted by /v1/route.")
    backend_timeout_s: float = Field(60.0, gt=0.0, description="Default per-attempt backend timeout (seconds).")
    max_attempts: int = Field(3, ge=1, description="Backends tried per chat request (the chosen one plus fallbacks).")
    request_timeout_s: float = Field(
        60.0,
        gt=0.0,
        le=3600.0,
        description="Deadline of every /v1/route and /v1/chat/completions request, from arrival to the first byte of "
        "the answer; a caller may lower it with the x-router-timeout-ms header. Work past it is cancelled and the "
        "request answered 504. Long enough to outlast the replacement of a dead replica (see serve_app.deadlines); "
        "a chat's fallbacks share it, so it should be about max_attempts x backend_timeout_s.",
    )
    replica_retry: RetryPolicy = Field(
        default_factory=RetryPolicy, description="Retries of the Embedder/Scorer calls when a replica dies (serve_app.retry)."
    )

    @model_validator(mode="after")
    def _deadline_fits_a_backend(self) -> "AppArgs":
        if self.request_timeout_s < self.backend_timeout_s:
            raise ValueError(f"request_timeout_s ({self.request_timeout_s}) is shorter than backend_timeout_s "
                             f"({self.backend_timeout_s}): a chat could time out before its first backend answers")  # fmt: skip
        return self
    # -- caller keys and budgets (serve_app.auth) --
    auth: Literal["required", "off"] = Field(
        "required",
        description="required: every /v1/route and /v1/chat/completions call needs `Authorization: Bearer <key>` from "
        "keys_file. off: no keys, no limits, no budgets (say so explicitly; meant for local demos).",
    )
    keys_file: Optional[str] = Field(
        None, description="Keys YAML written by `router keys create` (hashes and policies, never secrets); re-read when it changes."
    )
    keys_poll_s: float = Field(1.0, gt=0.0, le=4.0, description="How often (at most) the keys file is checked for changes, in seconds.")
    ledger_url: Optional[str] = Field(
        None,
        description="Where spend and rate counters live: redis://host:port/db (several nodes), sqlite:///path or a path. "
        "Default: SQLite next to keys_file (<keys_file>.ledger.sqlite). Use ledger_url_env if the URL carries a password.",
    )
    ledger_url_env: Optional[str] = Field(None, description="Name of an environment variable holding ledger_url (kept out of configs).")
    log_request_bodies: bool = Field(
        False, description="Debug only: log every request body (never the Authorization header). Off: bodies are not logged."
    )

    @field_validator("default_lambda")
    @classmethod
    def _lam(cls, v: float) -> float:
        return check_lambda(v, "default_lambda")

    @field_validator("default_reward")
    @classmethod
    def _reward(cls, v: str) -> str:
        return check_reward(v, "default_reward")

    @model_validator(mode="after")
    def _auth(self) -> "AppArgs":
        if self.auth == "required" and self.keys_file is None:
            raise ValueError("auth is 'required' but no keys_file is given: create one with `router keys create --file keys.yaml "
                             "--id NAME` and set keys_file, or set auth: off (no caller keys, for local demos only)")
        if self.ledger_url is not None and self.ledger_url_env is not None:
            raise ValueError("give at most one of ledger_url and ledger_url_env")
        return self

    def resolved_ledger_url(self) -> Optional[str]:
        if self.ledger_url_env:
            value = os.environ.get(self.ledger_url_env)
            if not value:
                raise ValueError(f"ledger_url_env: environment variable {self.ledger_url_env!r} is not set")
            return value
        return self.ledger_url

    @field_validator("artifact_path", "backends_file", "keys_file")
    @classmethod
    def _absolute(cls, v: Optional[str]) -> Optional[str]:
        # Replicas do not share the driver's working directory: resolve relative paths where the
        # app is built (the repository root for `serve run deploy/serve_config.yaml`).
        return None if v is None else str(Path(v).expanduser().resolve())

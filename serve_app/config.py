"""Configuration of the routing service: the application args of ``build_app`` and the backends file.

Everything is a pydantic model so that a wrong ``serve_config.yaml`` or backends file fails at
``serve run`` time with the offending field named, not at the first request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

# The backends file is shared with `router label`; it lives in router.backends (re-exported here).
from router.backends import BackendConfig, BackendsFile, load_backends  # noqa: F401
from router.rewards import check_lambda, get_reward


class BatchingConfig(BaseModel):
    """``@serve.batch`` settings of one deployment; also its ``user_config`` (retunable live)."""

    model_config = ConfigDict(extra="forbid")

    max_batch_size: int = Field(
        16,
        ge=1,
        le=4096,
        description="Most calls merged into one encoder/scorer run. A call is one HTTP request, so a "
        "/v1/route list of N prompts counts once and is encoded in one go.",
    )
    batch_wait_timeout_s: float = Field(
        0.02,
        ge=0.0,
        le=10.0,
        description="How long the first call of a batch waits for more calls. Larger values form larger "
        "batches under load at the price of idle latency (see ray-on-this-machine notes).",
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
    embedder_threads: int = Field(2, ge=1, le=256, description="torch threads per Embedder replica (Ray sets 1).")
    embedder_batching: BatchingConfig = Field(default_factory=BatchingConfig, description="Embedder @serve.batch.")
    scorer_batching: BatchingConfig = Field(
        default_factory=lambda: BatchingConfig(max_batch_size=32, batch_wait_timeout_s=0.005),
        description="Scorer @serve.batch; the model is small, so it waits less.",
    )
    default_lambda: float = Field(1.0, description="λ when a request gives none.")
    default_reward: str = Field("linear", description="Reward when a request gives none: linear, routerbench, exponential.")
    max_prompt_chars: int = Field(
        100_000,
        ge=1,
        description="Prompts (or flattened conversations) longer than this are rejected with 413. Shorter ones "
        "are routed on their first encoder-max-length tokens (the encoder truncates, as in training).",
    )
    max_prompts_per_request: int = Field(1024, ge=1, description="Largest list accepted by /v1/route.")
    backend_timeout_s: float = Field(60.0, gt=0.0, description="Default per-attempt backend timeout (seconds).")
    max_attempts: int = Field(3, ge=1, description="Backends tried per chat request (the chosen one plus fallbacks).")

    @field_validator("default_lambda")
    @classmethod
    def _lam(cls, v: float) -> float:
        return check_lambda(v)

    @field_validator("default_reward")
    @classmethod
    def _reward(cls, v: str) -> str:
        return get_reward(v).name

    @field_validator("artifact_path", "backends_file")
    @classmethod
    def _absolute(cls, v: Optional[str]) -> Optional[str]:
        # Replicas do not share the driver's working directory: resolve relative paths where the
        # app is built (the repository root for `serve run deploy/serve_config.yaml`).
        return None if v is None else str(Path(v).expanduser().resolve())

"""OpenAI-compatible LLM backends: the backends file and the HTTP client that calls them.

Shared by the routing service (``serve_app``, which forwards chat requests) and by ``router label``
(which fans logged prompts out to every model). It lives here, in the core package, because
``serve_app`` already depends on ``router``; the service's modules re-export these names
(``serve_app.config.BackendConfig``, ``serve_app.backends.BackendClient``...).

The client: one ``ClientSession`` per event loop user (connection reuse), created on first use
inside the caller's loop. Any failure — connection error, timeout, HTTP status >= 400, a body that
is not JSON — becomes a ``BackendError`` with a short ``reason`` ("http-503", "timeout",
"connect", "bad-json") and, for a 429/503 that sent one, the server's ``Retry-After`` in seconds.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Optional

import aiohttp
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class BackendConfig(BaseModel):
    """One OpenAI-compatible backend serving one model of the router's pool."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="The model's name in the router's pool (as in the artifact and the training table).")
    base_url: str = Field(description="OpenAI-compatible base URL, e.g. https://api.example.com/v1; "
                          "requests go to {base_url}/chat/completions.")
    served_model_name: Optional[str] = Field(
        None, description="Model name sent to the backend, if it differs from the pool name."
    )
    api_key_env: Optional[str] = Field(
        None, description="Name of the environment variable holding the API key (sent as a Bearer token). "
        "The key itself never appears in a config file."
    )
    input_price_per_mtok: float = Field(0.0, ge=0.0, description="USD per million prompt tokens (observed-cost metric).")
    output_price_per_mtok: float = Field(0.0, ge=0.0, description="USD per million completion tokens (observed-cost metric).")
    timeout_s: Optional[float] = Field(
        None, gt=0.0, description="Per-attempt timeout for this backend; default: the app's backend_timeout_s."
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {v!r}")
        return v.rstrip("/")

    @property
    def upstream_model(self) -> str:
        return self.served_model_name or self.model

    def api_key(self) -> Optional[str]:
        """The key read from the environment at call time (so rotating it needs no redeploy of config)."""
        return os.environ.get(self.api_key_env) if self.api_key_env else None

    def observed_cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_price_per_mtok + completion_tokens * self.output_price_per_mtok) / 1e6


class BackendsFile(BaseModel):
    """The backends YAML: ``backends: [{model, base_url, api_key_env, ...}, ...]``."""

    model_config = ConfigDict(extra="forbid")

    backends: list[BackendConfig] = Field(description="One entry per pool model that can answer chat requests.")

    @model_validator(mode="after")
    def _unique(self) -> "BackendsFile":
        names = [b.model for b in self.backends]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"backends listed twice: {dup}")
        return self

    def by_model(self) -> dict[str, BackendConfig]:
        return {b.model: b for b in self.backends}


def load_backends(path: str | Path) -> BackendsFile:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"backends_file {str(path)!r} does not exist")
    with path.open() as f:
        data = yaml.safe_load(f) or {}
    return BackendsFile.model_validate(data)


def read_usage(answer) -> Optional[tuple[int, int]]:
    """(prompt_tokens, completion_tokens) from an OpenAI answer's (or final stream chunk's) ``usage``,
    or None when it is absent or not numbers."""
    usage = answer.get("usage") if isinstance(answer, dict) else None
    if not isinstance(usage, dict):
        return None
    try:
        prompt, completion = int(usage.get("prompt_tokens", 0) or 0), int(usage.get("completion_tokens", 0) or 0)
    except (TypeError, ValueError, OverflowError):
        return None
    return (prompt, completion) if prompt >= 0 and completion >= 0 else None


class BackendError(Exception):
    def __init__(self, model: str, reason: str, detail: str = "", retry_after_s: Optional[float] = None):
        super().__init__(f"{model}: {reason} {detail}".strip())
        self.model = model
        self.reason = reason  # short: "http-503", "timeout", "connect", "bad-json"
        self.detail = detail
        self.retry_after_s = retry_after_s  # the server's Retry-After (seconds), when it sent one

    @property
    def status(self) -> Optional[int]:
        """The HTTP status of an ``http-<status>`` failure, else None."""
        return int(self.reason[5:]) if self.reason.startswith("http-") and self.reason[5:].isdigit() else None


def _retry_after(value: Optional[str]) -> Optional[float]:
    """``Retry-After`` in seconds (the delta-seconds form; an HTTP date is ignored)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class BackendClient:
    def __init__(self, default_timeout_s: float):
        self.default_timeout_s = default_timeout_s
        self._session: Optional[aiohttp.ClientSession] = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    def _request_args(self, backend: BackendConfig, body: dict, stream: bool) -> dict:
        headers = {"Content-Type": "application/json"}
        key = backend.api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        t = backend.timeout_s or self.default_timeout_s
        # Streams: the timeout bounds connecting and each wait for data, not the whole answer.
        timeout = aiohttp.ClientTimeout(sock_connect=t, sock_read=t) if stream else aiohttp.ClientTimeout(total=t)
        payload = dict(body, model=backend.upstream_model, stream=stream)
        return {"url": f"{backend.base_url}/chat/completions", "json": payload, "headers": headers, "timeout": timeout}

    async def complete(self, backend: BackendConfig, body: dict) -> dict:
        """A non-streaming completion as a dict, or ``BackendError``."""
        try:
            async with self._get_session().post(**self._request_args(backend, body, stream=False)) as resp:
                if resp.status >= 400:
                    text = await resp.text()
                    raise BackendError(backend.model, f"http-{resp.status}", text[:300], _retry_after(resp.headers.get("Retry-After")))
                try:
                    return await resp.json(content_type=None)
                except (json.JSONDecodeError, aiohttp.ContentTypeError, UnicodeDecodeError) as exc:
                    raise BackendError(backend.model, "bad-json", str(exc)) from None
        except asyncio.TimeoutError:
            raise BackendError(backend.model, "timeout") from None
        except aiohttp.ClientError as exc:
            raise BackendError(backend.model, "connect", str(exc)[:300]) from None

    async def open_stream(self, backend: BackendConfig, body: dict) -> aiohttp.ClientResponse:
        """An open streaming response whose status is < 400 (the caller must release it), or ``BackendError``."""
        try:
            resp = await self._get_session().post(**self._request_args(backend, body, stream=True))
        except asyncio.TimeoutError:
            raise BackendError(backend.model, "timeout") from None
        except aiohttp.ClientError as exc:
            raise BackendError(backend.model, "connect", str(exc)[:300]) from None
        if resp.status >= 400:
            try:
                text = await resp.text()
            except Exception:  # noqa: BLE001 - the status is what matters
                text = ""
            resp.release()
            raise BackendError(backend.model, f"http-{resp.status}", text[:300], _retry_after(resp.headers.get("Retry-After")))
        return resp

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

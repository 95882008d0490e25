"""Forwarding chat requests to OpenAI-compatible backends with aiohttp.

One ``ClientSession`` per dispatcher replica (connection reuse), created on first use inside the
replica's event loop. Any failure — connection error, timeout, HTTP status >= 400, a body that is
not JSON — becomes a ``BackendError`` whose ``reason`` the dispatcher reports in
``x-router-fallbacks`` before trying the next-best model. A stream can only fall back before its
first byte: once the backend answered 200 the events are passed through as they come.
"""

from __future__ import annotations

import asyncio
import json
from typing import AsyncIterator, Optional

import aiohttp

from serve_app.config import BackendConfig


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
    def __init__(self, model: str, reason: str, detail: str = ""):
        super().__init__(f"{model}: {reason} {detail}".strip())
        self.model = model
        self.reason = reason  # short: "http-503", "timeout", "connect", "bad-json"
        self.detail = detail


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
                    raise BackendError(backend.model, f"http-{resp.status}", text[:300])
                try:
                    return await resp.json(content_type=None)
                except (json.JSONDecodeError, aiohttp.ContentTypeError) as exc:
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
            raise BackendError(backend.model, f"http-{resp.status}", text[:300])
        return resp

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


def rewrite_sse_event(line: bytes, model: str) -> bytes:
    """One SSE line with the chunk's ``model`` set to the pool name of the answering model."""
    if not line.startswith(b"data:"):
        return line
    payload = line[5:].strip()
    if not payload or payload == b"[DONE]":
        return line
    try:
        chunk = json.loads(payload)
    except json.JSONDecodeError:
        return line
    if isinstance(chunk, dict):
        chunk["model"] = model
    end = b"\n" if line.endswith(b"\n") else b""
    return b"data: " + json.dumps(chunk).encode() + end


async def relay_sse(resp: aiohttp.ClientResponse, model: str) -> AsyncIterator[bytes]:
    """Pass a backend's SSE stream through line by line; a failure mid-stream ends it with an error event."""
    try:
        async for line in resp.content:
            yield rewrite_sse_event(line, model)
    except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
        err = {"error": {"message": f"backend {model} failed mid-stream: {type(exc).__name__}", "type": "upstream_error"}}
        yield b"data: " + json.dumps(err).encode() + b"\n\n"
    finally:
        resp.release()

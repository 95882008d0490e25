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
from typing import AsyncIterator

import aiohttp

# The client is shared with `router label`; it lives in router.backends (re-exported here).
from router.backends import BackendClient, BackendError, read_usage  # noqa: F401


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

"""TEST DOUBLE — an OpenAI-compatible stand-in LLM backend. It is not a model.

It answers every ``POST /v1/chat/completions`` with a fixed text (streamed as SSE when the request
says ``"stream": true``), and can be told, per model name, to fail with an HTTP status or to answer
slowly. The router's tests, the local demo (``deploy/backends.yaml``) and the load tests point the
router's backends at it so that routing, forwarding, streaming and fallback can be exercised on a
machine with no LLMs and no internet.

    python -m serve_app.testing.stub_backend --port 9001 --fail model-x --fail model-y:503 --delay-ms 50

Behaviour can also be changed while it runs (tests do this):
``POST /stub/behaviour {"fail": {"model-x": 500}, "delay_ms": {"model-y": 2000}, "default_delay_ms": 0,
"cut_stream": {"model-z": 3}}`` (``cut_stream``: drop the connection after that many streamed chunks)
and ``GET /stub/stats`` returns the number of chat requests seen per model. ``authorizations``
counts the ``Authorization`` headers it was sent by their sha256 (so tests can check that a
provider key arrived without the stub keeping the key).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import threading
import time
import uuid
from dataclasses import dataclass, field

from aiohttp import web

DEFAULT_TEXT = "This answer comes from the stub backend, a test double that always says the same thing."
STUB_BANNER = "stub-backend (TEST DOUBLE, not an LLM)"


@dataclass
class Behaviour:
    """What the stub does per model: fail with a status, or wait before answering."""

    text: str = DEFAULT_TEXT
    fail: dict[str, int] = field(default_factory=dict)  # model -> HTTP status to answer with
    delay_ms: dict[str, float] = field(default_factory=dict)  # model -> delay before answering
    default_delay_ms: float = 0.0
    # Delay between streamed chunks, so a streaming client sees several separate events.
    chunk_delay_ms: float = 0.0
    # model -> number of content chunks after which the stream's connection is dropped.
    cut_stream: dict[str, int] = field(default_factory=dict)

    def delay_for(self, model: str) -> float:
        return self.delay_ms.get(model, self.default_delay_ms) / 1000.0


def _words(text: str) -> list[str]:
    parts = text.split(" ")
    return [p + (" " if i < len(parts) - 1 else "") for i, p in enumerate(parts)]


def _usage(request: dict, text: str) -> dict:
    # Whitespace "tokens": the stub has no tokenizer; this is only a plausible count for cost metrics.
    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in request.get("messages", []) if isinstance(m, dict))
    completion_tokens = len(text.split())
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens}


class StubBackend:
    """The aiohttp application plus start/stop helpers (in the current loop, or in a thread)."""

    def __init__(self, behaviour: Behaviour | None = None):
        self.behaviour = behaviour or Behaviour()
        self.stats: dict[str, int] = {}
        self.authorizations: dict[str, int] = {}  # sha256 of the Authorization header -> requests
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.port: int | None = None

    # -- handlers ---------------------------------------------------------------------------
    async def chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return web.json_response({"error": {"message": "malformed JSON", "type": "invalid_request_error"}}, status=400)
        model = str(body.get("model", ""))
        self.stats[model] = self.stats.get(model, 0) + 1
        if "Authorization" in request.headers:
            digest = hashlib.sha256(request.headers["Authorization"].encode()).hexdigest()
            self.authorizations[digest] = self.authorizations.get(digest, 0) + 1
        b = self.behaviour
        delay = b.delay_for(model)
        if delay > 0:
            await asyncio.sleep(delay)
        if model in b.fail:
            status = b.fail[model]
            return web.json_response(
                {"error": {"message": f"stub backend told to fail for model {model!r}", "type": "stub_failure"}}, status=status
            )
        created = int(time.time())
        cid = f"chatcmpl-stub-{uuid.uuid4().hex[:12]}"
        if body.get("stream"):
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
            await resp.prepare(request)
            first = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                     "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}
            await resp.write(f"data: {json.dumps(first)}\n\n".encode())
            for i, word in enumerate(_words(b.text)):
                if model in b.cut_stream and i >= b.cut_stream[model]:
                    # Drop the connection mid-stream, without the terminating chunk.
                    request.transport.close()
                    return resp
                chunk = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                         "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
                await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
                if b.chunk_delay_ms:
                    await asyncio.sleep(b.chunk_delay_ms / 1000.0)
            last = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": _usage(body, b.text)}
            await resp.write(f"data: {json.dumps(last)}\n\n".encode())
            await resp.write(b"data: [DONE]\n\n")
            await resp.write_eof()
            return resp
        return web.json_response(
            {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": b.text}, "finish_reason": "stop"}],
                "usage": _usage(body, b.text),
                "system_fingerprint": STUB_BANNER,
            }
        )

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [], "owned_by": STUB_BANNER})

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "server": STUB_BANNER})

    async def set_behaviour(self, request: web.Request) -> web.Response:
        body = await request.json()
        b = self.behaviour
        if "fail" in body:
            b.fail = {str(k): int(v) for k, v in body["fail"].items()}
        if "delay_ms" in body:
            b.delay_ms = {str(k): float(v) for k, v in body["delay_ms"].items()}
        if "cut_stream" in body:
            b.cut_stream = {str(k): int(v) for k, v in body["cut_stream"].items()}
        for key in ("default_delay_ms", "chunk_delay_ms"):
            if key in body:
                setattr(b, key, float(body[key]))
        if "text" in body:
            b.text = str(body["text"])
        return web.json_response({"fail": b.fail, "delay_ms": b.delay_ms, "default_delay_ms": b.default_delay_ms})

    async def get_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats)

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/healthz", self.health)
        app.router.add_post("/stub/behaviour", self.set_behaviour)
        app.router.add_get("/stub/stats", self.get_stats)
        return app

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve in the running loop; returns the bound port (``port=0`` picks a free one)."""
        # Cancel a delayed handler when its client gives up (a timed-out router), as a real server would stop work.
        self._runner = web.AppRunner(self.make_app(), access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start_in_thread(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve from a daemon thread with its own loop (for synchronous tests); returns the port."""
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self.start(host, port))
            except BaseException as exc:  # noqa: BLE001 - reported to the caller below
                errors.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self.stop())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="stub-backend", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            raise errors[0]
        assert self.port is not None
        return self.port

    def stop_thread(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._thread = None


def _parse_fail(values: list[str]) -> dict[str, int]:
    """``model`` or ``model:status`` (a trailing ``:<digits>`` is the status, default 500)."""
    out = {}
    for v in values:
        model, sep, status = v.rpartition(":")
        if sep and status.isdigit():
            out[model] = int(status)
        else:
            out[v] = 500
    return out


def _parse_delay(values: list[str]) -> dict[str, float]:
    out = {}
    for v in values:
        model, _, ms = v.rpartition(":")
        if not model:
            raise SystemExit(f"--delay expects MODEL:MS, got {v!r}")
        out[model] = float(ms)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m serve_app.testing.stub_backend", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1", help="bind address (loopback by default)")
    p.add_argument("--port", type=int, default=9001)
    p.add_argument("--text", default=DEFAULT_TEXT, help="the fixed answer")
    p.add_argument("--fail", action="append", default=[], metavar="MODEL[:STATUS]",
                   help="answer this model's requests with STATUS (default 500); repeatable")
    p.add_argument("--delay-ms", type=float, default=0.0, help="delay before every answer")
    p.add_argument("--delay", action="append", default=[], metavar="MODEL:MS", help="per-model delay; repeatable")
    p.add_argument("--chunk-delay-ms", type=float, default=0.0, help="delay between streamed chunks")
    args = p.parse_args(argv)
    stub = StubBackend(Behaviour(text=args.text, fail=_parse_fail(args.fail), delay_ms=_parse_delay(args.delay),
                                 default_delay_ms=args.delay_ms, chunk_delay_ms=args.chunk_delay_ms))
    print(f"{STUB_BANNER} on http://{args.host}:{args.port}/v1", flush=True)
    web.run_app(stub.make_app(), host=args.host, port=args.port, access_log=None, print=None, handler_cancellation=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

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

For ``router label`` (training data from "your own" models, without a real LLM) it can also play a
pool of models of different, deterministic skill, and a judge:

* ``skills`` (``--skills skills.yaml``: ``{model: {task: p, "*": p_default}}``): such a model answers
  an item right with probability ``p`` of the item's task, decided by a seeded hash of (model,
  prompt), so the same prompt always gets the same answer. The task and the right answer of a
  prompt come from ``answer_key`` (``--answer-key logs.jsonl``: rows with the prompt, the task and
  optionally a reference answer); a prompt without a reference has the right answer
  ``ANSWER-<hash>``. A right answer is the reference itself, a wrong one is "Not sure, sorry.".
* ``latency_ms`` (``--latency MODEL:LO-HI``, ``--latency-ms-range LO-HI``): a delay drawn per
  (model, prompt) from the range, like a real model's spread of answer times.
* ``throttle`` (``{model: n}``): answer the next ``n`` requests of that model with 429 and a
  ``Retry-After`` header; ``no_usage``: models whose answers carry no ``usage``.
* ``judge_models`` (default ``stub-judge``): an LLM-as-judge stand-in. It reads the
  ``<prompt>``, ``<response>`` and ``<reference>`` tags of the rubric prompt and answers ``1`` when
  the right answer (the reference, else the answer key's) is in the response, else ``0``;
  ``judge_garbage: n`` makes its next ``n`` answers prose instead of a number.
* ``pause_after_answers: n``: after ``n`` answered requests every further request waits (as if
  the backends hung) until ``paused`` is set false; for interrupting a labelling run at a known point.

``GET /stub/calls`` returns, per model and prompt hash, the requests received and the ones
answered with 200 (the "paid" calls), and the most requests of a model in flight at once.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

from aiohttp import web

from router.messages import MalformedPrompt, flatten_messages

DEFAULT_TEXT = "This answer comes from the stub backend, a test double that always says the same thing."
STUB_BANNER = "stub-backend (TEST DOUBLE, not an LLM)"
WRONG_TEXT = "Not sure, sorry."
JUDGE_GARBAGE_TEXT = "The response looks quite good to me overall."
DEFAULT_JUDGE = "stub-judge"


def prompt_key(text: str) -> str:
    """The stub's id of a prompt: a hash of its text (the text a router embeds), stripped."""
    return hashlib.sha256(text.strip().encode("utf-8")).hexdigest()[:16]


def _unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from the parts (the stub's only source of "randomness")."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _tag(text: str, name: str) -> Optional[str]:
    m = re.search(rf"<{name}>(.*?)</{name}>", text, re.S)
    return m.group(1) if m else None


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


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
    # -- a pool of skilled models and a judge (see the module doc) --
    skills: dict[str, dict[str, float]] = field(default_factory=dict)  # model -> task -> P(right)
    answer_key: dict[str, tuple[str, Optional[str]]] = field(default_factory=dict)  # prompt_key -> (task, reference)
    seed: int = 0
    latency_ms: dict[str, tuple[float, float]] = field(default_factory=dict)  # model -> (lo, hi)
    default_latency_ms: Optional[tuple[float, float]] = None
    throttle: dict[str, int] = field(default_factory=dict)  # model -> next n requests get 429
    retry_after_s: float = 0.05
    no_usage: set[str] = field(default_factory=set)
    judge_models: set[str] = field(default_factory=lambda: {DEFAULT_JUDGE})
    judge_garbage: int = 0
    pause_after_answers: Optional[int] = None
    paused: bool = False

    def delay_for(self, model: str, key: str = "") -> float:
        span = self.latency_ms.get(model, self.default_latency_ms)
        if span is not None:
            lo, hi = span
            return (lo + (hi - lo) * _unit("latency", self.seed, model, key)) / 1000.0
        return self.delay_ms.get(model, self.default_delay_ms) / 1000.0

    def skill(self, model: str, task: str) -> Optional[float]:
        table = self.skills.get(model, self.skills.get("*"))
        if table is None:
            return None
        return float(table.get(task, table.get("*", 0.5)))

    def right_answer(self, key: str) -> str:
        reference = self.answer_key.get(key, ("*", None))[1]
        return reference if reference not in (None, "") else f"ANSWER-{key[:8]}"

    def answer(self, model: str, text: str) -> Optional[str]:
        """A skilled model's answer to a prompt text, or None when ``model`` has no skills."""
        key = prompt_key(text)
        task = self.answer_key.get(key, ("*", None))[0]
        p = self.skill(model, task)
        if p is None:
            return None
        return self.right_answer(key) if _unit("right", self.seed, model, key) < p else WRONG_TEXT

    def judge(self, rubric: str) -> str:
        """The stand-in judge's verdict on a rubric prompt with <prompt>/<response>/<reference> tags."""
        if self.judge_garbage > 0:
            self.judge_garbage -= 1
            return JUDGE_GARBAGE_TEXT
        prompt, response = _tag(rubric, "prompt"), _tag(rubric, "response")
        if prompt is None or response is None:
            return "The rubric has no <prompt> and <response> tags to judge."
        reference = _tag(rubric, "reference")
        right = reference.strip() if reference and reference.strip() else self.right_answer(prompt_key(prompt))
        return "1" if _norm(right) in _norm(response) else "0"


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
        self.calls: Counter = Counter()  # (model, prompt_key) -> requests received
        self.answered: Counter = Counter()  # (model, prompt_key) -> answered with 200
        self.answered_total = 0
        self.in_flight: Counter = Counter()
        self.max_in_flight: Counter = Counter()
        self.started: dict[str, list[float]] = {}  # model -> monotonic start time of each request
        self._unpaused = asyncio.Event()
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
        if not isinstance(body, dict):
            return web.json_response({"error": {"message": "body must be a JSON object", "type": "invalid_request_error"}}, status=400)
        model = str(body.get("model", ""))
        self.stats[model] = self.stats.get(model, 0) + 1
        if "Authorization" in request.headers:
            digest = hashlib.sha256(request.headers["Authorization"].encode()).hexdigest()
            self.authorizations[digest] = self.authorizations.get(digest, 0) + 1
        try:
            text_in = flatten_messages(body.get("messages"))
        except MalformedPrompt:
            text_in = ""
        key = prompt_key(text_in)
        self.calls[(model, key)] += 1
        self.in_flight[model] += 1
        self.max_in_flight[model] = max(self.max_in_flight[model], self.in_flight[model])
        self.started.setdefault(model, []).append(time.monotonic())
        try:
            return await self._answer(request, body, model, text_in, key)
        finally:
            self.in_flight[model] -= 1

    async def _answer(self, request: web.Request, body: dict, model: str, text_in: str, key: str) -> web.StreamResponse:
        b = self.behaviour
        while b.paused:
            await self._unpaused.wait()
        if b.throttle.get(model, 0) > 0:
            b.throttle[model] -= 1
            return web.json_response({"error": {"message": f"stub backend rate-limits {model!r}", "type": "rate_limit_error"}},
                                     status=429, headers={"Retry-After": f"{b.retry_after_s:g}"})  # fmt: skip
        delay = b.delay_for(model, key)
        if delay > 0:
            await asyncio.sleep(delay)
        if model in b.fail:
            status = b.fail[model]
            return web.json_response(
                {"error": {"message": f"stub backend told to fail for model {model!r}", "type": "stub_failure"}}, status=status
            )
        created = int(time.time())
        cid = f"chatcmpl-stub-{uuid.uuid4().hex[:12]}"
        text = b.text
        if model in b.judge_models:
            messages = body.get("messages") or [{}]
            last = messages[-1] if isinstance(messages, list) and isinstance(messages[-1], dict) else {}
            text = b.judge(str(last.get("content", "")))
        else:
            text = b.answer(model, text_in) or b.text
        if b.pause_after_answers is not None and self.answered_total >= b.pause_after_answers:
            # Answered enough: hang from here on (the caller sees a backend that stopped answering).
            self._unpaused.clear()
            b.paused = True
            while b.paused:
                await self._unpaused.wait()
        if body.get("stream"):
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
            await resp.prepare(request)
            first = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                     "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}
            await resp.write(f"data: {json.dumps(first)}\n\n".encode())
            for i, word in enumerate(_words(text)):
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
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": _usage(body, text)}
            await resp.write(f"data: {json.dumps(last)}\n\n".encode())
            await resp.write(b"data: [DONE]\n\n")
            await resp.write_eof()
            return resp
        answer = {
            "id": cid,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": _usage(body, text),
            "system_fingerprint": STUB_BANNER,
        }
        if model in b.no_usage:
            del answer["usage"]
        resp = web.json_response(answer)
        # Counted before returning: with handler cancellation, a client that went away before this
        # point gets nothing and is not counted as answered (not "paid").
        self.answered[(model, key)] += 1
        self.answered_total += 1
        return resp

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
        if "throttle" in body:
            b.throttle = {str(k): int(v) for k, v in body["throttle"].items()}
        if "judge_garbage" in body:
            b.judge_garbage = int(body["judge_garbage"])
        if "pause_after_answers" in body:
            b.pause_after_answers = None if body["pause_after_answers"] is None else int(body["pause_after_answers"])
        if "paused" in body:
            self.set_paused(bool(body["paused"]))
        return web.json_response({"fail": b.fail, "delay_ms": b.delay_ms, "default_delay_ms": b.default_delay_ms})

    def set_paused(self, paused: bool) -> None:
        """Pause or release every request (thread-safe when the stub runs in its own thread)."""

        def apply() -> None:
            self.behaviour.paused = paused
            if paused:
                self._unpaused.clear()
            else:
                self.behaviour.pause_after_answers = None
                self._unpaused.set()

        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(apply)
        else:
            apply()

    async def get_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats)

    def calls_report(self) -> dict:
        return {
            "received": {f"{m}|{k}": n for (m, k), n in self.calls.items()},
            "answered": {f"{m}|{k}": n for (m, k), n in self.answered.items()},
            "max_in_flight": dict(self.max_in_flight),
        }

    async def get_calls(self, request: web.Request) -> web.Response:
        return web.json_response(self.calls_report())

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/healthz", self.health)
        app.router.add_post("/stub/behaviour", self.set_behaviour)
        app.router.add_get("/stub/stats", self.get_stats)
        app.router.add_get("/stub/calls", self.get_calls)
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
        self.behaviour.paused = False  # paused handlers must end for the shutdown not to wait on them
        self._unpaused.set()
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


def _parse_span(text: str, flag: str) -> tuple[float, float]:
    lo, sep, hi = text.partition("-")
    try:
        span = (float(lo), float(hi if sep else lo))
    except ValueError:
        raise SystemExit(f"{flag} expects LO-HI milliseconds, got {text!r}") from None
    if span[0] < 0 or span[1] < span[0]:
        raise SystemExit(f"{flag} expects 0 <= LO <= HI, got {text!r}")
    return span


def _parse_latency(values: list[str]) -> dict[str, tuple[float, float]]:
    out = {}
    for v in values:
        model, _, span = v.rpartition(":")
        if not model:
            raise SystemExit(f"--latency expects MODEL:LO-HI, got {v!r}")
        out[model] = _parse_span(span, "--latency")
    return out


def load_skills(path: str) -> dict[str, dict[str, float]]:
    """``{model: {task: p}}`` from a YAML/JSON file, each p in [0, 1]."""
    import yaml

    with open(path) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise SystemExit(f"{path}: expected a mapping model -> {{task: probability}}")
    out = {}
    for model, tasks in data.items():
        if not isinstance(tasks, dict):
            raise SystemExit(f"{path}: skills of {model!r} must be a mapping task -> probability")
        for task, p in tasks.items():
            if not isinstance(p, (int, float)) or not 0 <= p <= 1:
                raise SystemExit(f"{path}: skill {model}/{task} must be a number in [0, 1], got {p!r}")
        out[str(model)] = {str(t): float(p) for t, p in tasks.items()}
    return out


def load_answer_key(path: str, prompt_field: str = "prompt", task_field: str = "eval_name",
                    reference_field: str = "reference") -> dict[str, tuple[str, Optional[str]]]:  # fmt: skip
    """prompt_key -> (task, reference) from JSONL or Parquet rows (e.g. the logs being labelled);
    rows whose prompt cannot be read are skipped."""
    from router.messages import prompt_text

    if path.endswith((".parquet", ".pq")):
        import pandas as pd

        records = pd.read_parquet(path).to_dict("records")
    else:
        records = []
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    key = {}
    for rec in records:
        if not isinstance(rec, dict):
            continue
        try:
            text = prompt_text(rec.get(prompt_field))
        except ValueError:
            continue
        ref = rec.get(reference_field)
        key[prompt_key(text)] = (str(rec.get(task_field) or "*"), None if ref is None else str(ref))
    return key


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
    p.add_argument("--skills", default=None, help="YAML {model: {task: P(right)}}: models answer with that skill")
    p.add_argument("--answer-key", default=None, help="JSONL/Parquet rows giving each prompt's task and reference answer")
    p.add_argument("--key-prompt-field", default="prompt", help="answer key: prompt (or messages) field")
    p.add_argument("--key-task-field", default="eval_name", help="answer key: task field")
    p.add_argument("--key-reference-field", default="reference", help="answer key: reference answer field")
    p.add_argument("--seed", type=int, default=0, help="seed of which items each model gets right")
    p.add_argument("--latency-ms-range", default=None, metavar="LO-HI", help="delay drawn per (model, prompt) in this range")
    p.add_argument("--latency", action="append", default=[], metavar="MODEL:LO-HI", help="per-model delay range; repeatable")
    p.add_argument("--judge-model", action="append", default=None, help=f"model name(s) that act as the judge (default {DEFAULT_JUDGE})")
    p.add_argument("--no-usage", action="append", default=[], metavar="MODEL", help="answers of this model carry no usage")
    args = p.parse_args(argv)
    stub = StubBackend(Behaviour(
        text=args.text, fail=_parse_fail(args.fail), delay_ms=_parse_delay(args.delay), default_delay_ms=args.delay_ms,
        chunk_delay_ms=args.chunk_delay_ms, skills=load_skills(args.skills) if args.skills else {},
        answer_key=load_answer_key(args.answer_key, args.key_prompt_field, args.key_task_field, args.key_reference_field)
        if args.answer_key else {},
        seed=args.seed, latency_ms=_parse_latency(args.latency),
        default_latency_ms=_parse_span(args.latency_ms_range, "--latency-ms-range") if args.latency_ms_range else None,
        judge_models=set(args.judge_model or [DEFAULT_JUDGE]), no_usage=set(args.no_usage),
    ))  # fmt: skip
    print(f"{STUB_BANNER} on http://{args.host}:{args.port}/v1", flush=True)
    web.run_app(stub.make_app(), host=args.host, port=args.port, access_log=None, print=None, handler_cancellation=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""HTTP load generator for the routing service: closed-loop and open-loop (Poisson) traffic.

Two ways to load a server:

- **closed loop** (``mode="closed"``): ``concurrency`` workers each send a request, wait for the
  answer, and send the next one. Measures throughput at a fixed number of requests in flight
  (saturation is reached by raising the concurrency).
- **open loop** (``mode="open"``): requests start at Poisson arrival times of a fixed ``rate``
  whether or not earlier ones have finished, like independent users. Latency is measured from the
  *scheduled* start so a stalled server is not hidden by the client slowing down ("coordinated
  omission"). In-flight requests are capped at ``max_in_flight``; an arrival beyond the cap is not
  sent and is counted as the error ``client_overflow`` (a server that falls that far behind is
  overloaded: the cap keeps the client itself bounded).

Every run is bounded both in requests (``max_requests``) and in seconds (``duration_s``); each
request has its own ``timeout_s``, so a run never lasts longer than ``duration_s + timeout_s`` plus
a moment. Targets must be loopback addresses (127.0.0.0/8, ``localhost``, ``::1``) unless
``allow_remote`` is set explicitly: this is a load tool, and pointing it at somebody else's server
by mistake must not be possible by default.

Prompts are real: sampled (seeded) from a bundled routing dataset (``routellm`` by default).
``unique_prompts`` appends a per-request nonce so that no embedding cache on the server side can
turn the benchmark into a cache benchmark.

CLI: ``python -m load_tests.generator --help`` (one run, or a sweep of open-loop rates with a plot).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import math
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, Sequence
from urllib.parse import urlsplit

import numpy as np
from pydantic import BaseModel, Field, field_validator, model_validator

ENDPOINTS = {"route": "/v1/route", "chat": "/v1/chat/completions"}
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
# The router's chat headers for λ and reward (serve_app.parse; repeated here so the generator
# does not import the service).
LAMBDA_HEADER = "x-router-lambda"
REWARD_HEADER = "x-router-reward"


class RemoteTargetError(ValueError):
    """The target is not a loopback address and remote targets were not allowed explicitly."""


def check_target(url: str, allow_remote: bool = False) -> str:
    """``url`` if it is an http(s) URL on a loopback host (or ``allow_remote``), else an error."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"target must be an http(s) URL with a host, got {url!r}")
    host = parts.hostname
    if allow_remote:
        return url
    if host.lower() in LOOPBACK_NAMES:
        return url
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and address.is_loopback:
        return url
    raise RemoteTargetError(
        f"refusing to send load to {host!r}: only loopback targets (127.0.0.0/8, localhost, ::1) are allowed "
        "unless --allow-remote is given"
    )


class LoadConfig(BaseModel):
    """One load run. Bounded in requests and in seconds; see the module docstring."""

    url: str = Field("http://127.0.0.1:8000", description="Base URL of the service (loopback only by default).")
    endpoint: Literal["route", "chat"] = Field("route", description="route: POST /v1/route; chat: POST /v1/chat/completions.")
    mode: Literal["closed", "open"] = Field("closed", description="closed: fixed concurrency; open: Poisson arrivals at `rate`.")
    concurrency: int = Field(1, ge=1, le=4096, description="Closed loop: requests in flight.")
    rate: float | None = Field(None, gt=0, le=100_000, description="Open loop: mean arrivals per second (required in open mode).")
    max_requests: int = Field(100, ge=1, le=10_000_000, description="Stop issuing after this many requests.")
    duration_s: float = Field(30.0, gt=0, le=86_400, description="Stop issuing after this many seconds.")
    timeout_s: float = Field(30.0, gt=0, le=3_600, description="Per-request total timeout (client side).")
    max_in_flight: int = Field(1024, ge=1, le=100_000, description="Open loop: arrivals beyond this many in flight are counted as client_overflow.")
    warmup_requests: int = Field(0, ge=0, description="Requests sent (closed loop, sequentially) before measuring; not reported.")
    prompts_per_request: int = Field(1, ge=1, le=4096, description="/v1/route only: prompts sent as a list in one request.")
    dataset: str = Field("routellm", description="Bundled dataset name or routing-table file the prompts come from.")
    max_prompt_chars: int | None = Field(None, ge=1, description="Truncate prompts to this many characters (None: as in the data).")
    unique_prompts: bool = Field(True, description="Append a per-request nonce so server-side embedding caches never hit.")
    lam: float | None = Field(0.5, ge=0, description="λ sent with each request (None: the server default).")
    reward: str | None = Field(None, description="Reward type sent with each request (None: the server default).")
    chat_model: str = Field("router", description="/v1/chat/completions: the `model` field sent.")
    stream: bool = Field(False, description="/v1/chat/completions: ask for SSE streaming (the body is read to the end).")
    seed: int = Field(0, description="Seeds prompt sampling and Poisson arrivals.")
    allow_remote: bool = Field(False, description="Allow non-loopback targets. Off by default on purpose.")
    keep_records: bool = Field(False, description="Put every request's (start, latency, status) in the result.")

    @field_validator("url")
    @classmethod
    def _strip(cls, v: str) -> str:
        return v.rstrip("/")

    @field_validator("lam")
    @classmethod
    def _lam(cls, v: float | None) -> float | None:
        from router.rewards import check_lambda

        return None if v is None else check_lambda(v, "lam")  # ge=0 alone lets infinity through

    @model_validator(mode="after")
    def _check(self) -> "LoadConfig":
        if self.mode == "open" and self.rate is None:
            raise ValueError("open-loop mode needs a rate (requests per second)")
        if self.prompts_per_request > 1 and self.endpoint != "route":
            raise ValueError("prompts_per_request > 1 is only supported for the route endpoint")
        check_target(self.url, self.allow_remote)
        return self

    @property
    def target(self) -> str:
        return self.url + ENDPOINTS[self.endpoint]


@dataclass
class Record:
    start: float  # seconds since the run started (scheduled start in open loop)
    latency: float  # seconds, from (scheduled) start to the last byte or the error
    status: str  # "200", "503", ... or an exception kind: "timeout", "connection", "client_overflow"
    model: str | None = None  # the model the service chose (x-router-model header), when given
    fallbacks: str | None = None  # x-router-fallbacks: backends that failed before the one that answered


@dataclass
class LoadResult:
    config: dict
    started_at: float  # wall clock (time.time()) when measuring began; record starts are relative to it
    elapsed_s: float
    sent: int
    ok: int
    errors: dict[str, int]
    throughput_rps: float  # successful requests per second
    prompts_per_s: float  # successful prompts per second (requests × prompts_per_request)
    offered_rps: float | None  # open loop: the configured rate
    latency_ms: dict[str, float | None]  # over successful requests
    latency_all_ms: dict[str, float | None]  # over all answered requests, errors included
    models: dict[str, int] = field(default_factory=dict)
    fallbacks: int = 0  # successful answers that needed a fallback backend
    records: list[dict] | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        lat = self.latency_ms
        fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
        errs = ",".join(f"{k}:{v}" for k, v in sorted(self.errors.items())) or "none"
        return (
            f"sent={self.sent} ok={self.ok} thr={self.throughput_rps:.2f} req/s ({self.prompts_per_s:.2f} prompts/s) "
            f"p50={fmt(lat['p50'])} p95={fmt(lat['p95'])} p99={fmt(lat['p99'])} max={fmt(lat['max'])} ms errors={errs}"
        )


def latency_summary(latencies_s: Sequence[float]) -> dict[str, float | None]:
    """p50/p95/p99/max/mean in milliseconds (None when there is nothing to summarise)."""
    if len(latencies_s) == 0:
        return {"p50": None, "p95": None, "p99": None, "max": None, "mean": None, "n": 0}
    a = np.asarray(latencies_s, dtype=float) * 1000.0
    p50, p95, p99 = np.percentile(a, [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "max": float(a.max()), "mean": float(a.mean()), "n": int(a.size)}


def load_prompts(dataset: str = "routellm", n: int | None = None, seed: int = 0, max_chars: int | None = None) -> list[str]:
    """Real prompts from a bundled dataset (or routing-table file), shuffled with ``seed``."""
    from router.data import load_table

    prompts = [p for p in load_table(dataset).prompts if isinstance(p, str) and p.strip()]
    rng = random.Random(seed)
    rng.shuffle(prompts)
    if n is not None:
        prompts = prompts[:n]
    if max_chars is not None:
        prompts = [p[:max_chars] for p in prompts]
    return prompts


class _Bodies:
    """Request bodies for one run: cycles through the prompts, appends a nonce if asked."""

    def __init__(self, config: LoadConfig, prompts: Sequence[str]):
        if not prompts:
            raise ValueError("no prompts to send")
        self.config = config
        self.prompts = list(prompts)
        self.i = 0

    def _next_prompt(self) -> str:
        p = self.prompts[self.i % len(self.prompts)]
        self.i += 1
        if self.config.unique_prompts:
            # A trailing request number changes the text (and so any cache key) but not its length class.
            p = f"{p}\n[{self.i}]"
        return p

    def next(self) -> dict:
        c = self.config
        if c.endpoint == "route":
            body: dict = {}
            if c.prompts_per_request == 1:
                body["prompt"] = self._next_prompt()
            else:  # /v1/route takes a list in the same field
                body["prompt"] = [self._next_prompt() for _ in range(c.prompts_per_request)]
            if c.lam is not None:
                body["lambda"] = c.lam
            if c.reward is not None:
                body["reward"] = c.reward
            return body
        # Chat bodies stay plain OpenAI; λ and reward travel in the router's headers (see ``headers``).
        return {"model": c.chat_model, "messages": [{"role": "user", "content": self._next_prompt()}], "stream": c.stream}

    def headers(self) -> dict[str, str]:
        c = self.config
        h: dict[str, str] = {}
        if c.endpoint == "chat":
            if c.lam is not None:
                h[LAMBDA_HEADER] = repr(float(c.lam))
            if c.reward is not None:
                h[REWARD_HEADER] = c.reward
        return h


def _error_kind(exc: BaseException) -> str:
    import aiohttp

    if isinstance(exc, asyncio.TimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.ClientConnectionError):
        return "connection"
    return type(exc).__name__


async def _one(session, config: LoadConfig, body: dict, start: float, t0: float, records: list[Record], headers=None) -> None:
    """Send one request; append its record. ``start`` is the (scheduled) start, on ``time.perf_counter``."""
    import aiohttp

    status, model, fallbacks = "?", None, None
    try:
        async with session.post(config.target, json=body, headers=headers, timeout=aiohttp.ClientTimeout(total=config.timeout_s)) as resp:
            await resp.read()  # the whole body, SSE streams included
            status = str(resp.status)
            model = resp.headers.get("x-router-model")
            fallbacks = resp.headers.get("x-router-fallbacks")
    except BaseException as exc:  # noqa: BLE001 - every failure is a data point, not a crash
        if isinstance(exc, asyncio.CancelledError):
            raise
        status = _error_kind(exc)
    records.append(Record(start=start - t0, latency=time.perf_counter() - start, status=status, model=model, fallbacks=fallbacks))


async def _closed_loop(session, config: LoadConfig, bodies: _Bodies, t0: float, records: list[Record]) -> int:
    deadline = t0 + config.duration_s
    issued = 0

    async def worker() -> None:
        nonlocal issued
        while issued < config.max_requests and time.perf_counter() < deadline:
            issued += 1
            await _one(session, config, bodies.next(), time.perf_counter(), t0, records, bodies.headers())

    await asyncio.gather(*(worker() for _ in range(config.concurrency)))
    return issued


async def _open_loop(session, config: LoadConfig, bodies: _Bodies, t0: float, records: list[Record]) -> int:
    rng = np.random.default_rng(config.seed)
    deadline = t0 + config.duration_s
    tasks: set[asyncio.Task] = set()
    issued = 0
    next_at = t0
    while issued < config.max_requests:
        next_at += float(rng.exponential(1.0 / config.rate))
        if next_at >= deadline:
            break
        delay = next_at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        issued += 1
        if len(tasks) >= config.max_in_flight:
            records.append(Record(start=next_at - t0, latency=0.0, status="client_overflow"))
            continue
        task = asyncio.create_task(_one(session, config, bodies.next(), next_at, t0, records, bodies.headers()))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)
    return issued


async def run_load_async(config: LoadConfig, prompts: Sequence[str] | None = None) -> LoadResult:
    import aiohttp

    if prompts is None:
        prompts = load_prompts(config.dataset, seed=config.seed, max_chars=config.max_prompt_chars)
    bodies = _Bodies(config, prompts)
    limit = config.concurrency if config.mode == "closed" else config.max_in_flight
    connector = aiohttp.TCPConnector(limit=limit + config.warmup_requests + 1, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        warm: list[Record] = []
        for _ in range(config.warmup_requests):
            await _one(session, config, bodies.next(), time.perf_counter(), time.perf_counter(), warm, bodies.headers())
        records: list[Record] = []
        started_at = time.time()
        t0 = time.perf_counter()
        if config.mode == "closed":
            sent = await _closed_loop(session, config, bodies, t0, records)
        else:
            sent = await _open_loop(session, config, bodies, t0, records)
        elapsed = time.perf_counter() - t0
    return summarize(config, records, sent, elapsed, started_at)


def summarize(config: LoadConfig, records: Sequence[Record], sent: int, elapsed: float, started_at: float = 0.0) -> LoadResult:
    ok = [r for r in records if r.status.startswith("2")]
    errors: dict[str, int] = {}
    for r in records:
        if not r.status.startswith("2"):
            errors[r.status] = errors.get(r.status, 0) + 1
    models: dict[str, int] = {}
    for r in ok:
        if r.model:
            models[r.model] = models.get(r.model, 0) + 1
    answered = [r.latency for r in records if r.status != "client_overflow"]
    thr = len(ok) / elapsed if elapsed > 0 else 0.0
    return LoadResult(
        config=config.model_dump(),
        started_at=started_at,
        elapsed_s=elapsed,
        sent=sent,
        ok=len(ok),
        errors=errors,
        throughput_rps=thr,
        prompts_per_s=thr * config.prompts_per_request,
        offered_rps=config.rate if config.mode == "open" else None,
        latency_ms=latency_summary([r.latency for r in ok]),
        latency_all_ms=latency_summary(answered),
        models=models,
        fallbacks=sum(1 for r in ok if r.fallbacks),
        records=[asdict(r) for r in sorted(records, key=lambda r: r.start)] if config.keep_records else None,
    )


def run_load(config: LoadConfig, prompts: Sequence[str] | None = None) -> LoadResult:
    """Run one bounded load test (blocking). ``prompts`` overrides the dataset."""
    return asyncio.run(run_load_async(config, prompts))


def run_sweep(config: LoadConfig, rates: Sequence[float], prompts: Sequence[str] | None = None, on_result=None) -> list[LoadResult]:
    """Open-loop runs at each offered rate in turn (same bounds per step)."""
    if prompts is None:
        prompts = load_prompts(config.dataset, seed=config.seed, max_chars=config.max_prompt_chars)
    results = []
    for rate in rates:
        step = config.model_copy(update={"mode": "open", "rate": float(rate)})
        LoadConfig.model_validate(step.model_dump())  # re-validate the updated copy
        result = run_load(step, prompts)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def plot_sweep(results: Sequence[LoadResult], path: str | Path, title: str = "latency vs offered load") -> Path:
    """Latency percentiles (log scale) and achieved throughput against the offered rate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    offered = [r.offered_rps for r in results]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for key, style in (("p50", "o-"), ("p95", "s--"), ("p99", "^:")):
        ys = [r.latency_ms[key] if r.latency_ms[key] is not None else math.nan for r in results]
        ax1.plot(offered, ys, style, label=key)
    ax1.set_xlabel("offered load (requests/s)")
    ax1.set_ylabel("latency of successful requests (ms)")
    ax1.set_yscale("log")
    ax1.legend()
    ax1.grid(True, which="both", alpha=0.3)
    ax2.plot(offered, [r.throughput_rps for r in results], "o-", label="achieved (2xx)")
    ax2.plot(offered, offered, "k:", label="offered")
    err = [sum(r.errors.values()) / max(r.sent, 1) for r in results]
    ax2b = ax2.twinx()
    ax2b.plot(offered, err, "r^--", label="error fraction")
    ax2b.set_ylabel("error fraction", color="r")
    ax2b.set_ylim(0, 1)
    ax2.set_xlabel("offered load (requests/s)")
    ax2.set_ylabel("throughput (requests/s)")
    ax2.legend(loc="upper left")
    ax2.grid(True, alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_json(obj, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    return path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m load_tests.generator",
        description="Bounded HTTP load against the router's /v1/route or /v1/chat/completions (loopback targets only by default).",
    )
    p.add_argument("--url", default="http://127.0.0.1:8000", help="service base URL (default %(default)s)")
    p.add_argument("--endpoint", choices=sorted(ENDPOINTS), default="route")
    p.add_argument("--mode", choices=["closed", "open"], default="closed")
    p.add_argument("--concurrency", type=int, default=1, help="closed loop: requests in flight")
    p.add_argument("--rate", type=float, help="open loop: Poisson arrivals per second")
    p.add_argument("--sweep", help="comma-separated open-loop rates, run in turn (writes a plot with --plot)")
    p.add_argument("--requests", type=int, default=100, help="max requests per run (default %(default)s)")
    p.add_argument("--duration", type=float, default=30.0, help="max seconds per run (default %(default)s)")
    p.add_argument("--timeout", type=float, default=30.0, help="per-request timeout in seconds")
    p.add_argument("--batch", type=int, default=1, help="prompts per /v1/route request (list input)")
    p.add_argument("--lam", type=float, default=0.5, help="λ sent with each request")
    p.add_argument("--reward", help="reward type sent with each request")
    p.add_argument("--dataset", default="routellm", help="bundled dataset or table file the prompts come from")
    p.add_argument("--max-prompt-chars", type=int)
    p.add_argument("--no-unique", action="store_true", help="send prompts verbatim (server caches may hit)")
    p.add_argument("--stream", action="store_true", help="chat: request SSE streaming")
    p.add_argument("--warmup", type=int, default=0, help="sequential warm-up requests, not measured")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--allow-remote", action="store_true", help="allow a non-loopback target (off by default)")
    p.add_argument("--records", action="store_true", help="include every request in the JSON")
    p.add_argument("--out", help="write the result JSON here")
    p.add_argument("--plot", help="sweep: write the latency-vs-offered-load plot here (PNG)")
    return p


def config_from_args(args: argparse.Namespace, **override) -> LoadConfig:
    values = dict(
        url=args.url, endpoint=args.endpoint, mode=args.mode, concurrency=args.concurrency, rate=args.rate,
        max_requests=args.requests, duration_s=args.duration, timeout_s=args.timeout, prompts_per_request=args.batch,
        lam=args.lam, reward=args.reward, dataset=args.dataset, max_prompt_chars=args.max_prompt_chars,
        unique_prompts=not args.no_unique, stream=args.stream, warmup_requests=args.warmup, seed=args.seed,
        allow_remote=args.allow_remote, keep_records=args.records,
    )
    values.update(override)
    return LoadConfig(**values)


def main(argv: list[str] | None = None) -> int:
    from pydantic import ValidationError

    args = build_parser().parse_args(argv)
    try:
        if args.sweep:
            rates = [float(x) for x in args.sweep.split(",") if x.strip()]
            if not rates or any(r <= 0 for r in rates):
                raise ValueError("--sweep needs positive rates, e.g. --sweep 5,10,20")
            config = config_from_args(args, mode="open", rate=rates[0])
            results = run_sweep(config, rates, on_result=lambda r: print(f"rate={r.offered_rps:g}/s: {r.line()}", flush=True))
            payload = {"kind": "sweep", "results": [r.to_dict() for r in results]}
            if args.plot:
                print(f"plot: {plot_sweep(results, args.plot)}")
        else:
            config = config_from_args(args)
            result = run_load(config)
            print(result.line())
            payload = result.to_dict()
    except (ValidationError, ValueError, FileNotFoundError) as exc:
        msg = str(exc) if not isinstance(exc, ValidationError) else "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors()
        )
        print(f"load_tests.generator: error: {msg}", file=sys.stderr)
        return 2
    if args.out:
        print(f"wrote {write_json(payload, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Fuzz the HTTP API with malformed bodies: no 5xx, no crash.

Why hypothesis and not schemathesis: the service reads request bodies as raw bytes and validates
them itself (``serve_app.api``), so that malformed JSON, NaN λ and the like get the router's own
4xx messages. Its OpenAPI document therefore declares no request-body schemas, and schemathesis
would generate little beyond empty bodies. Hypothesis (already a dev dependency) generates the
bodies directly: random bytes, random JSON, and route/chat-shaped objects whose every field may
have the wrong type or value, plus a fixed list of known-bad inputs (empty/missing/oversized
prompt, bad λ, unknown reward or model, NaN/Infinity literals, deep nesting, wrong methods).

The ``Authorization`` header is fuzzed too (missing, other schemes, malformed, overlong, non-ASCII,
near-miss and truncated keys). Against a router with caller keys, ``--api-key-env`` names an
environment variable holding a valid key, which every case that does not set its own header
carries, so that the bodies get past the key check to the parser; a 401 must not echo the
presented header.

Each case is sent once; the run records the status of every answer. The service passes when no
answer is a 5xx — except 502/503 on ``/v1/chat/completions``, which mean "the backends failed" or
"none configured" and are legitimate answers for a well-formed chat request — when every 4xx
carries an error message, and when ``/healthz`` still answers 200 at the end.

    python -m load_tests.fuzz --url http://127.0.0.1:8000 --examples 300 --out results/load/fuzz.json
    ROUTER_API_KEY=rk-... python -m load_tests.fuzz --url http://127.0.0.1:8000 --api-key-env ROUTER_API_KEY
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from load_tests.generator import check_target, write_json

ROUTE, CHAT = "/v1/route", "/v1/chat/completions"


@dataclass
class Case:
    path: str
    body: bytes
    headers: dict = field(default_factory=dict)
    method: str = "POST"

    def describe(self) -> str:
        text = self.body[:160].decode("utf-8", "replace")
        # Authorization values may be near misses of a real key: reports show only their start.
        headers = {k: (f"{v[:12]}...({len(v)} chars)" if k.lower() == "authorization" and len(v) > 12 else v) for k, v in self.headers.items()}
        return f"{self.method} {self.path} headers={headers} body={text!r}{'...' if len(self.body) > 160 else ''}"


def _j(obj) -> bytes:
    return json.dumps(obj, allow_nan=True).encode()


def fixed_cases(max_prompt_chars: int = 100_000) -> list[Case]:
    """Known-bad (and a few borderline) inputs, each one deliberate."""
    big = "x " * (max_prompt_chars // 2 + 10)
    deep = b"[" * 5000 + b"]" * 5000
    cases = [
        Case(ROUTE, b""), Case(ROUTE, b"{"), Case(ROUTE, b"null"), Case(ROUTE, b"[]"), Case(ROUTE, b'"just a string"'),
        Case(ROUTE, b"\xff\xfe\x00garbage"), Case(ROUTE, deep), Case(ROUTE, _j({})),
        Case(ROUTE, _j({"prompt": ""})), Case(ROUTE, _j({"prompt": "   "})), Case(ROUTE, _j({"prompt": []})),
        Case(ROUTE, _j({"prompt": None})), Case(ROUTE, _j({"prompt": 12})), Case(ROUTE, _j({"prompt": ["ok", 3]})),
        Case(ROUTE, _j({"prompt": [["nested"]]})), Case(ROUTE, _j({"prompt": {"a": "b"}})),
        Case(ROUTE, _j({"prompt": big})), Case(ROUTE, _j({"prompt": ["a"] * 5000})),
        Case(ROUTE, b'{"prompt": "hi", "lambda": NaN}'), Case(ROUTE, b'{"prompt": "hi", "lambda": Infinity}'),
        Case(ROUTE, b'{"prompt": "hi", "lambda": -Infinity}'), Case(ROUTE, b'{"prompt": "hi", "lambda": 1e999}'),
        Case(ROUTE, _j({"prompt": "hi", "lambda": -1})), Case(ROUTE, _j({"prompt": "hi", "lambda": "abc"})),
        Case(ROUTE, _j({"prompt": "hi", "lambda": True})), Case(ROUTE, _j({"prompt": "hi", "lambda": [1]})),
        Case(ROUTE, _j({"prompt": "hi", "reward": "nope"})), Case(ROUTE, _j({"prompt": "hi", "reward": 3})),
        Case(ROUTE, _j({"prompt": "hi", "model": "no-such-model"})), Case(ROUTE, _j({"prompt": "hi", "unknown_field": 1})),
        Case(ROUTE, _j({"prompt": "\u0000\ud7ff\U0010ffff"})), Case(ROUTE, '{"prompt": "\\ud800"}'.encode()),
        Case(ROUTE, b"", method="GET"), Case(ROUTE, b"", method="PUT"),
        Case(ROUTE, _j({"prompt": "hi"}), headers={"Content-Type": "text/plain"}),
        Case(CHAT, b""), Case(CHAT, b"{"), Case(CHAT, _j({})), Case(CHAT, _j({"messages": []})),
        Case(CHAT, _j({"messages": "hello"})), Case(CHAT, _j({"messages": [{"role": "user"}]})),
        Case(CHAT, _j({"messages": [{"role": "user", "content": None}]})), Case(CHAT, _j({"messages": [None, 3]})),
        Case(CHAT, _j({"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]})),
        Case(CHAT, _j({"model": "router--1", "messages": [{"role": "user", "content": "hi"}]})),
        Case(CHAT, _j({"model": "router-nan", "messages": [{"role": "user", "content": "hi"}]})),
        Case(CHAT, _j({"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]})),
        Case(CHAT, _j({"model": 7, "messages": [{"role": "user", "content": "hi"}]})),
        Case(CHAT, _j({"messages": [{"role": "user", "content": "hi"}]}), headers={"x-router-lambda": "NaN"}),
        Case(CHAT, _j({"messages": [{"role": "user", "content": "hi"}]}), headers={"x-router-lambda": "-3"}),
        Case(CHAT, _j({"messages": [{"role": "user", "content": "hi"}]}), headers={"x-router-reward": "bogus"}),
        Case(CHAT, _j({"messages": [{"role": "user", "content": "hi"}], "router_lambda": "x"})),
        Case(CHAT, _j({"messages": [{"role": "user", "content": big}]})),
        Case(CHAT, _j({"messages": [{"role": "user", "content": "hi"}], "stream": "yes"})),
        Case("/v1/models", b"", method="POST"), Case("/healthz", b"{}", method="POST"), Case("/v1/nothing", b"{}"),
    ]
    ok_chat = _j({"messages": [{"role": "user", "content": "hi"}]})
    for value in auth_values():
        cases += [Case(ROUTE, _j({"prompt": "hi"}), headers={"Authorization": value}), Case(CHAT, ok_chat, headers={"Authorization": value})]
    return cases


def auth_values(api_key: str | None = None) -> list[str]:
    """Bad ``Authorization`` values; with ``api_key``, also near misses of it."""
    fake = "rk-nobody-" + "0" * 64
    values = ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer rk-", "Bearer rk--" + "0" * 64, f"Bearer {fake}",
              f"bearer {fake}", fake, f"Bearer {fake} extra", "Bearer " + "A" * 8000, "Bearer \u00ff\u00fe\u00e9", "Bearer \t  ",
              "Token " + fake, "Bearer rk-UPPER-" + "f" * 64, "Bearer rk-x-" + "g" * 64]  # fmt: skip
    if api_key:
        flipped = api_key[:-1] + ("0" if api_key[-1] != "0" else "1")
        values += [f"Bearer {flipped}", f"Bearer {api_key[:-8]}", api_key, f"Bearer {api_key}{api_key}", f"Bearer  {api_key} x"]
    return values


def case_strategy():
    """Hypothesis strategy of malformed (and sometimes valid) requests."""
    from hypothesis import strategies as st

    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                        st.text(max_size=40))
    json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                               max_leaves=12)
    short_text = st.text(max_size=60)
    prompt = st.one_of(short_text, st.lists(short_text, max_size=6), json_values)
    lam = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10**6), st.text(max_size=8), json_values)
    reward = st.one_of(st.sampled_from(["linear", "routerbench", "exponential", "lin", "wtp", "exp", "", "LINEAR"]), json_values)
    route_obj = st.fixed_dictionaries({}, optional={"prompt": prompt, "lambda": lam, "reward": reward,
                                                    "model": st.one_of(short_text, json_values), "extra": json_values})
    message = st.one_of(st.fixed_dictionaries({}, optional={"role": st.one_of(st.sampled_from(["user", "system", "assistant", "tool"]), json_values),
                                                            "content": st.one_of(short_text, json_values)}), json_values)
    chat_obj = st.fixed_dictionaries({}, optional={
        "model": st.one_of(st.sampled_from(["router", "router-0.5", "router-abc", "router-1e400", "router-"]), short_text, json_values),
        "messages": st.one_of(st.lists(message, max_size=4), json_values),
        "stream": st.one_of(st.booleans(), json_values),
        "router_lambda": lam,
        "max_tokens": json_values,
    })
    header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=90)
    authorization = st.one_of(st.sampled_from(auth_values()), header_text, st.builds(lambda t: "Bearer " + t, header_text),
                              st.builds(lambda t: "Bearer rk-" + t, header_text))  # fmt: skip
    headers = st.one_of(st.just({}), st.fixed_dictionaries({}, optional={
        "x-router-lambda": st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=10),
        "x-router-reward": st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=10),
        "Authorization": authorization,
    }))
    encode = lambda obj: json.dumps(obj, allow_nan=True).encode()  # noqa: E731 - NaN/Infinity literals on purpose
    route_case = st.builds(lambda o, h: Case(ROUTE, encode(o), h), route_obj, headers)
    chat_case = st.builds(lambda o, h: Case(CHAT, encode(o), h), chat_obj, headers)
    raw_case = st.builds(lambda p, b: Case(p, b), st.sampled_from([ROUTE, CHAT]), st.binary(max_size=120))
    json_case = st.builds(lambda p, o: Case(p, encode(o)), st.sampled_from([ROUTE, CHAT]), json_values)
    return st.one_of(route_case, route_case, chat_case, chat_case, raw_case, json_case)


def send(url: str, case: Case, timeout_s: float = 60.0, api_key: str | None = None) -> tuple[str, dict | None]:
    """``(status, parsed JSON body or None)``; a transport failure gives its kind as the status."""
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {api_key}"} if api_key else {}), **case.headers}
    # HTTP header values are latin-1 on the wire; anything else is sent as its UTF-8 bytes.
    headers = {k: v.encode("utf-8").decode("latin-1") if not all(ord(c) < 256 for c in v) else v for k, v in headers.items()}
    req = urllib.request.Request(url + case.path, data=case.body if case.method != "GET" else None, headers=headers, method=case.method)
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except TimeoutError:
        return "timeout", None
    except (urllib.error.URLError, ConnectionError, OSError) as exc:
        return f"connection:{type(exc).__name__}", None
    try:
        body = json.loads(raw) if raw else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    return str(status), body


def _bad(case: Case, status: str, body) -> str | None:
    """Why this answer breaks the contract, or None."""
    if not status.isdigit():
        return f"no HTTP answer ({status})"
    code = int(status)
    if code >= 500:
        if case.path == CHAT and code in (502, 503):
            return None  # backends failed / none configured: a legitimate answer to a chat request
        return f"server error {code}"
    if 400 <= code < 500 and code not in (404, 405):
        msg = (body or {}).get("error", {}).get("message") if isinstance(body, dict) and isinstance(body.get("error"), dict) else None
        if not msg:
            return f"{code} without an error message"
        presented = case.headers.get("Authorization", "").partition(" ")[2].strip()
        if len(presented) >= 8 and presented in json.dumps(body):
            return f"{code} echoes the presented Authorization value"
    return None


def run_fuzz(url: str, examples: int = 200, seed: int = 0, include_fixed: bool = True, timeout_s: float = 60.0,
             allow_remote: bool = False, api_key: str | None = None) -> dict:
    from hypothesis import HealthCheck, Phase, given, seed as hseed, settings

    check_target(url, allow_remote)
    url = url.rstrip("/")
    statuses: dict[str, int] = {}
    problems: list[dict] = []

    def check(case: Case) -> None:
        status, body = send(url, case, timeout_s, api_key)
        statuses[status] = statuses.get(status, 0) + 1
        why = _bad(case, status, body)
        if why:
            problems.append({"problem": why, "case": case.describe()})

    if include_fixed:
        for case in fixed_cases():
            check(case)
        for value in auth_values(api_key)[-5:] if api_key else ():
            check(Case(ROUTE, _j({"prompt": "hi"}), headers={"Authorization": value}))

    @hseed(seed)
    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=case_strategy())
    def generated(case: Case) -> None:
        check(case)

    if examples > 0:
        generated()
    health, _ = send(url, Case("/healthz", b"", method="GET"), timeout_s)
    return {
        "kind": "fuzz",
        "cases": sum(statuses.values()),
        "statuses": dict(sorted(statuses.items())),
        "problems": problems,
        "server_errors": sum(1 for p in problems if p["problem"].startswith(("server error", "no HTTP"))),
        "healthz_after": health,
        "passed": not problems and health == "200",
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m load_tests.fuzz", description=__doc__.splitlines()[0])
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--examples", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--allow-remote", action="store_true")
    p.add_argument("--api-key-env", help="environment variable holding a valid caller key (router with auth: required)")
    p.add_argument("--out")
    args = p.parse_args(argv)
    try:
        api_key = None
        if args.api_key_env:
            api_key = os.environ.get(args.api_key_env)
            if not api_key:
                raise ValueError(f"--api-key-env: environment variable {args.api_key_env!r} is not set")
        result = run_fuzz(args.url, args.examples, args.seed, allow_remote=args.allow_remote, api_key=api_key)
    except ValueError as exc:
        print(f"load_tests.fuzz: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: v for k, v in result.items() if k != "problems"}, indent=2))
    for prob in result["problems"][:20]:
        print(f"PROBLEM: {prob['problem']}: {prob['case']}")
    if args.out:
        write_json(result, args.out)
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())

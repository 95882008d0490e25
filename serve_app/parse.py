"""Parsing and checking requests as plain functions (no Serve, no network): bodies are validated
against the models of ``serve_app.protocol``, λ and the reward are resolved (``router.rewards`` is
the one validator of both), a chat is flattened into the text the router reads, and the fallback
order is computed. Every problem becomes a ``RequestError`` with a message for the caller.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

from pydantic import ValidationError

from router.messages import MalformedPrompt, check_encodable, flatten_messages
from router.rewards import check_lambda, check_reward as _check_reward
from serve_app.protocol import (
    LAMBDA_FIELD,
    LAMBDA_HEADER,
    REWARD_FIELD,
    REWARD_HEADER,
    ChatCompletionRequest,
    RequestError,
    RouteRequest,
)

# "router" or "router-<λ>", e.g. router-0.5, router-1e-3.
_ROUTER_NAME = re.compile(r"^router(?:-(?P<lam>.+))?$")


@dataclass(frozen=True)
class Limits:
    max_prompt_chars: int
    max_prompts_per_request: int


def parse_json_object(raw: bytes) -> dict:
    """The request body as a JSON object, or a 400 that says what is wrong with it."""
    if not raw or not raw.strip():
        raise RequestError(400, "request body is empty; send a JSON object")
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestError(400, f"malformed JSON: {exc}") from None
    except RecursionError:
        # json recurses per nesting level: a body nested thousands deep is the client's fault.
        raise RequestError(400, "malformed JSON: nested too deeply") from None
    if not isinstance(body, dict):
        raise RequestError(400, f"request body must be a JSON object, got {type(body).__name__}")
    return body


def check_lambda_value(value: Any, source: str, text_ok: bool = False) -> float:
    """λ as a finite float >= 0 (``router.rewards.check_lambda``), or a 400 naming ``source``.
    JSON bodies must give a number; headers and model names give text (``text_ok``)."""
    if isinstance(value, str) and not text_ok:
        raise RequestError(400, f"{source}: lambda must be a number, got {value!r}", param=source)
    try:
        return check_lambda(value, source)
    except ValueError as exc:
        raise RequestError(400, str(exc), param=source) from None


def check_reward(name: Any, source: str) -> str:
    try:
        return _check_reward(name, source)
    except ValueError as exc:
        raise RequestError(400, str(exc), param=source) from None


def check_prompts(prompts: Sequence[Any], limits: Limits, what: str = "prompt") -> list[str]:
    """Non-empty strings, not too many, none longer than ``max_prompt_chars`` (we reject rather than
    cut text the caller may think was read; below the limit the encoder reads the first max-length
    tokens, as it did in training). Over a limit is a 400, like any other value outside the
    published schema (which states both limits)."""
    if len(prompts) == 0:
        raise RequestError(400, f"{what} is an empty list; send at least one prompt", param=what)
    if len(prompts) > limits.max_prompts_per_request:
        raise RequestError(
            400, f"{len(prompts)} prompts in one request; the limit is {limits.max_prompts_per_request}", param=what
        )
    out = []
    for i, p in enumerate(prompts):
        where = what if len(prompts) == 1 else f"{what}[{i}]"
        if not isinstance(p, str):
            raise RequestError(400, f"{where} must be a string, got {type(p).__name__}", param=what)
        if not p.strip():
            raise RequestError(400, f"{where} is empty", param=what)
        try:
            check_encodable(p, where)
        except MalformedPrompt as exc:
            raise RequestError(400, str(exc), param=what) from None
        if len(p) > limits.max_prompt_chars:
            raise RequestError(
                400, f"{where} has {len(p)} characters; the limit is {limits.max_prompt_chars}", param=what
            )
        out.append(p)
    return out


def _validation_message(exc: ValidationError) -> tuple[str, Optional[str]]:
    err = exc.errors()[0]
    loc = ".".join(str(x) for x in err.get("loc", ()))
    if err.get("type") == "missing":
        return f"missing required field {loc!r}", loc
    if err.get("type") == "extra_forbidden":
        return f"unknown field {loc!r}", loc
    return f"{loc}: {err.get('msg')}", loc or None


# One sentence per field says a wrong type better than pydantic's per-member union errors.
_TYPE_MESSAGES = {
    "prompt": "prompt must be a string or a list of strings",
    "model": "model must be a non-empty string",
    "stream": "stream must be true or false",
}


def _validated(model, body: dict, drop: tuple[str, ...] = ()):
    """``body`` (less the ``drop`` fields, checked by hand for their own messages) validated by
    ``model`` (``serve_app.protocol``), or a 400 naming the field."""
    try:
        return model.model_validate({k: v for k, v in body.items() if k not in drop})
    except ValidationError as exc:
        message, param = _validation_message(exc)
        top = (param or "").split(".")[0] or None
        if top in _TYPE_MESSAGES and top in body:
            message = _TYPE_MESSAGES[top]
        raise RequestError(400, message, param=top) from None


@dataclass(frozen=True)
class RoutePlan:
    prompts: list[str]
    lam: float
    reward: str
    override: Optional[str]


def parse_route_request(raw: bytes, limits: Limits, default_lambda: float, default_reward: str, pool: Sequence[str]) -> RoutePlan:
    body = parse_json_object(raw)
    # λ is checked by hand so that NaN/Infinity (accepted by Python's JSON) get a clear message.
    req = _validated(RouteRequest, body, drop=("lambda", "reward"))
    prompts = check_prompts([req.prompt] if isinstance(req.prompt, str) else req.prompt, limits)
    lam_raw = body.get("lambda")
    lam = default_lambda if lam_raw is None else check_lambda_value(lam_raw, "lambda")
    reward = default_reward if body.get("reward") is None else check_reward(body["reward"], "reward")
    override = check_override(req.model, pool) if req.model is not None else None
    return RoutePlan(prompts, lam, reward, override)


def check_override(model: str, pool: Sequence[str]) -> str:
    if model not in pool:
        raise RequestError(400, f"unknown model {model!r}; the pool is {list(pool)}", param="model")
    return model


def parse_router_model_name(name: str) -> tuple[bool, Optional[float]]:
    """(is the router pseudo-model, λ in the name if any): ``router`` -> (True, None),
    ``router-0.5`` -> (True, 0.5), a pool model -> (False, None)."""
    m = _ROUTER_NAME.match(name)
    if not m:
        return False, None
    if m.group("lam") is None:
        return True, None
    return True, check_lambda_value(m.group("lam"), "model", text_ok=True)


def chat_text(messages: Any) -> str:
    """The text the router reads for a chat, by the one rule in ``router.messages`` (user turns
    joined by blank lines), so a logged request routes as it did live; a bad list is a 400."""
    try:
        return flatten_messages(messages)
    except MalformedPrompt as exc:
        raise RequestError(400, str(exc), param="messages") from None


@dataclass
class ChatPlan:
    """A checked chat request: what to route on, how, and the body to forward."""

    text: str
    lam: float
    reward: str
    override: Optional[str]
    stream: bool
    forward_body: dict = field(default_factory=dict)
    lambda_source: str = "default"


def parse_chat_request(
    raw: bytes,
    headers: Mapping[str, str],
    limits: Limits,
    default_lambda: float,
    default_reward: str,
    pool: Sequence[str],
) -> ChatPlan:
    """λ precedence: the ``x-router-lambda`` header, then the ``router_lambda`` body field, then a
    ``router-<λ>`` model name, then the app default. ``model`` names the router (``router``,
    ``router-<λ>``) or, as an explicit override, a pool model."""
    body = parse_json_object(raw)
    text = chat_text(body.get("messages"))
    check_prompts([text], limits, what="messages")
    if LAMBDA_FIELD in body and body[LAMBDA_FIELD] is not None:
        check_lambda_value(body[LAMBDA_FIELD], LAMBDA_FIELD)
    req = _validated(ChatCompletionRequest, body, drop=(LAMBDA_FIELD, REWARD_FIELD))
    if not req.model:
        raise RequestError(400, "model must be a non-empty string", param="model")
    is_router, name_lam = parse_router_model_name(req.model)
    override = None if is_router else check_override(req.model, pool)
    header_lam = headers.get(LAMBDA_HEADER)
    if header_lam is not None:
        lam, source = check_lambda_value(header_lam, LAMBDA_HEADER, text_ok=True), "header"
    elif body.get(LAMBDA_FIELD) is not None:
        lam, source = float(body[LAMBDA_FIELD]), "body"
    elif name_lam is not None:
        lam, source = name_lam, "model"
    else:
        lam, source = default_lambda, "default"
    # Both are checked even when the header wins: a bad body field is the caller's error either way.
    body_reward = None if body.get(REWARD_FIELD) is None else check_reward(body[REWARD_FIELD], REWARD_FIELD)
    if headers.get(REWARD_HEADER) is not None:
        reward = check_reward(headers[REWARD_HEADER], REWARD_HEADER)
    else:
        reward = body_reward or default_reward
    forward = {k: v for k, v in body.items() if k not in (LAMBDA_FIELD, REWARD_FIELD)}
    return ChatPlan(text, lam, reward, override, req.stream, forward, source)


def fallback_order(reward: Mapping[str, float], cost: Mapping[str, float], available: Sequence[str]) -> list[str]:
    """Models to try, best reward first (ties: cheaper first, as in ``router.rewards.decide``),
    keeping only those with a configured backend."""
    avail = set(available)
    return sorted((m for m in reward if m in avail), key=lambda m: (-reward[m], cost[m], m))

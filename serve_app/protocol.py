"""Request and response bodies of the routing API (pydantic), the error type every handler raises,
and the OpenAPI schema built from them.

Requests are validated against these models by ``serve_app.parse`` (strict types: a schema-valid
body is accepted, anything else is a 400 with a message that names the field). The models carry
only what is fixed; what depends on the running app (the pool, the prompt limits) is put into
the published schema by :func:`request_schemas`, so ``/openapi.json`` describes exactly what this
app accepts. Errors use OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``, so
OpenAI clients show the message.
"""

from __future__ import annotations

import copy
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from router.rewards import LAMBDA_TEXT, REWARD_ALIASES, REWARDS

ROUTER_MODEL = "router"
LAMBDA_HEADER = "x-router-lambda"
REWARD_HEADER = "x-router-reward"
# Body fields of /v1/chat/completions the router reads and removes before forwarding.
LAMBDA_FIELD = "router_lambda"
REWARD_FIELD = "router_reward"
REWARD_NAMES = tuple(REWARDS) + tuple(REWARD_ALIASES)
RewardName = Literal["linear", "routerbench", "exponential", "exp", "lin", "wtp"]
# A non-blank string: one character that ``str.isspace()`` (what the code's ``strip()`` removes) does
# not call whitespace. Spelled out, because a schema's ``\S`` means different sets in different regex
# engines (ECMA's ``\s`` lacks \x1c-\x1f and \x85, which Python strips).
NOT_BLANK = r"[^\t\n\x0b\x0c\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"


class RequestError(Exception):
    """A problem with the caller's request (4xx) or with the backends (5xx), with a message for the caller."""

    def __init__(self, status: int, message: str, param: Optional[str] = None, type: Optional[str] = None,
                 headers: Optional[dict[str, str]] = None):  # fmt: skip
        super().__init__(message)
        self.headers = headers  # response headers, e.g. Retry-After on a 429
        self.status = status
        self.message = message
        self.param = param
        self.type = type or ("invalid_request_error" if status < 500 else "server_error" if status == 500 else "upstream_error")

    def to_body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.status}}


class ErrorDetail(BaseModel):
    message: str = Field(description="What is wrong, for a person to read.")
    type: str = Field(description="invalid_request_error (4xx), server_error (500) or upstream_error (502/503/504).")
    param: Optional[str] = Field(None, description="The request field the error is about, if any.")
    code: int = Field(description="The HTTP status.")


class ErrorResponse(BaseModel):
    """Every 4xx/5xx body (OpenAI's error shape)."""

    error: ErrorDetail


# -- /v1/route ----------------------------------------------------------------------------------


class RouteRequest(BaseModel):
    """``POST /v1/route``. λ and reward default to the app's ``default_lambda``/``default_reward``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True)

    prompt: Union[str, list[str]] = Field(
        description="One prompt, or a list of prompts routed in one call (each non-blank).",
        json_schema_extra={"anyOf": [{"type": "string", "pattern": NOT_BLANK},
                                     {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": NOT_BLANK}}]},
    )  # fmt: skip
    lam: Optional[float] = Field(
        None, alias="lambda", description="Cost trade-off λ (a finite number >= 0; larger = cheaper).",
        json_schema_extra={"anyOf": [{"type": "number", "minimum": 0}, {"type": "null"}]},
    )  # fmt: skip
    reward: Optional[RewardName] = Field(None, description="linear, routerbench or exponential (aliases lin, wtp, exp).")
    model: Optional[str] = Field(None, description="Explicit override: return this pool model as the choice.")


class ModelScore(BaseModel):
    quality: float = Field(description="Predicted quality in [0, 1].")
    cost: float = Field(description="Predicted cost in USD.")
    reward: float = Field(description="Reward at the request's λ.")
    uncertainty: Optional[float] = Field(
        None, description="How unsure the predicted quality is: the std of the ensemble members' predicted quality "
        "(null when the router is a single network, which has no estimate).",
    )  # fmt: skip


class RouteDecision(BaseModel):
    model: str = Field(description="The chosen model (the override, if one was given).")
    best_model: str = Field(description="The model with the best reward (equals `model` without an override).")
    overridden: bool = Field(description="True when `model` came from the request's explicit override.")
    scores: dict[str, ModelScore] = Field(description="Per pool model: predicted quality, cost, reward and uncertainty.")


class RouteResponse(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    object: Literal["route.list"] = "route.list"
    lam: float = Field(alias="lambda", description="The λ used.")
    reward_type: str = Field(description="The reward used.")
    decisions: list[RouteDecision] = Field(description="One per prompt, in input order.")


# -- /v1/chat/completions -----------------------------------------------------------------------


class ChatMessage(BaseModel):
    """One chat turn (other OpenAI fields, e.g. ``name``, are kept and forwarded)."""

    model_config = ConfigDict(extra="allow", strict=True)

    role: str = Field(description="system, user, assistant, ... (user turns are what the router reads).")
    content: Union[str, list[Union[str, dict[str, Any]]], None] = Field(
        None, description="Text, or a list of content parts (text parts are read; others are forwarded untouched)."
    )


class ChatCompletionRequest(BaseModel):
    """``POST /v1/chat/completions``: OpenAI's body; the router picks the model and forwards it
    (every field not listed here is forwarded as is)."""

    model_config = ConfigDict(extra="allow", strict=True)

    messages: list[ChatMessage] = Field(
        description="The conversation; at least one turn must have non-blank text (the router routes on the user turns).",
        json_schema_extra={"minItems": 1, "contains": {"type": "object", "required": ["content"],
                                                       "properties": {"content": {"type": "string", "pattern": NOT_BLANK}}}},
    )  # fmt: skip
    model: str = Field(
        ROUTER_MODEL, description="`router` (the router picks), `router-<λ>` (λ in the name) or a pool model (override)."
    )
    stream: bool = Field(False, description="Stream the answer as server-sent events.")
    router_lambda: Optional[float] = Field(
        None, description="λ for this request (the x-router-lambda header wins over it).",
        json_schema_extra={"anyOf": [{"type": "number", "minimum": 0}, {"type": "null"}]},
    )  # fmt: skip
    router_reward: Optional[RewardName] = Field(None, description="Reward for this request (the x-router-reward header wins).")


class ChatCompletion(BaseModel):
    """The backend's answer, passed through (``model`` is set to the pool model that answered)."""

    model_config = ConfigDict(extra="allow")

    id: Optional[str] = None
    object: Optional[str] = None
    model: str
    choices: list[dict[str, Any]] = Field(default_factory=list)
    usage: Optional[dict[str, Any]] = None


# -- /v1/models, /healthz -----------------------------------------------------------------------


class ModelCard(BaseModel):
    id: str
    object: str = "model"
    owned_by: str = "llm-router"
    routable: bool = Field(description="True for the router pseudo-model, which picks a pool model per request.")
    has_backend: bool = Field(description="True when /v1/chat/completions can forward to this model.")


class ModelList(BaseModel):
    object: str = "list"
    data: list[ModelCard]


class Health(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["ok", "starting"] = Field(description="`ok` once every deployment answers; `starting` (503) before.")
    pool: list[str]
    backends: list[str]


# -- the published schema -----------------------------------------------------------------------

REQUEST_MODELS = {"/v1/route": RouteRequest, "/v1/chat/completions": ChatCompletionRequest}


def request_schemas(pool: list[str], max_prompt_chars: int, max_prompts_per_request: int) -> dict[str, dict]:
    """JSON schemas (components) of the request bodies, with this app's pool and limits filled in."""
    _, top = models_json_schema([(m, "validation") for m in REQUEST_MODELS.values()],
                                by_alias=True, ref_template="#/components/schemas/{model}")  # fmt: skip
    schemas = copy.deepcopy(top.get("$defs", {}))
    route = schemas["RouteRequest"]["properties"]
    text = {"type": "string", "pattern": NOT_BLANK, "maxLength": max_prompt_chars}
    route["prompt"]["anyOf"] = [text, {"type": "array", "minItems": 1, "maxItems": max_prompts_per_request, "items": text}]
    route["model"]["anyOf"] = [{"type": "string", "enum": list(pool)}, {"type": "null"}]
    chat = schemas["ChatCompletionRequest"]["properties"]
    chat["model"] = {
        "description": chat["model"]["description"],
        "default": ROUTER_MODEL,
        "anyOf": [{"type": "string", "enum": [ROUTER_MODEL, *pool]}, {"type": "string", "pattern": f"^{ROUTER_MODEL}-{LAMBDA_TEXT}$"}],
    }
    for schema in schemas.values():
        for prop in schema.get("properties", {}).values():
            # pydantic also writes the Python type next to our anyOf; the anyOf is the contract.
            if "anyOf" in prop:
                prop.pop("type", None)
    return schemas


def header_parameters() -> list[dict]:
    """The optional headers of /v1/chat/completions."""
    return [
        {"name": LAMBDA_HEADER, "in": "header", "required": False, "description": "λ for this request (wins over the body).",
         "schema": {"type": "string", "pattern": f"^{LAMBDA_TEXT}$"}},
        {"name": REWARD_HEADER, "in": "header", "required": False, "description": "Reward for this request.",
         "schema": {"type": "string", "enum": list(REWARD_NAMES)}},
    ]  # fmt: skip

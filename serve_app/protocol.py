"""Request and response bodies of the routing API (pydantic), and the error type every handler raises.

Errors use OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``, so OpenAI clients
show the message.
"""

from __future__ import annotations

from typing import Optional, Union

from pydantic import BaseModel, ConfigDict, Field


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


class RouteRequest(BaseModel):
    """``POST /v1/route``. λ and reward default to the app's ``default_lambda``/``default_reward``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    prompt: Union[str, list[str]] = Field(description="One prompt, or a list of prompts routed in one call.")
    lam: Optional[float] = Field(None, alias="lambda", description="Cost trade-off λ (finite, >= 0).")
    reward: Optional[str] = Field(None, description="linear, routerbench or exponential (aliases lin, wtp, exp).")
    model: Optional[str] = Field(None, description="Explicit override: return this pool model as the choice.")


class ModelScore(BaseModel):
    quality: float = Field(description="Predicted quality in [0, 1].")
    cost: float = Field(description="Predicted cost in USD.")
    reward: float = Field(description="Reward at the request's λ.")


class RouteDecision(BaseModel):
    model: str = Field(description="The chosen model (the override, if one was given).")
    best_model: str = Field(description="The model with the best reward (equals `model` without an override).")
    overridden: bool = Field(description="True when `model` came from the request's explicit override.")
    scores: dict[str, ModelScore] = Field(description="Per pool model: predicted quality, cost and reward.")


class RouteResponse(BaseModel):
    object: str = "route.list"
    lam: float = Field(serialization_alias="lambda")
    reward_type: str
    decisions: list[RouteDecision] = Field(description="One per prompt, in input order.")


class ModelCard(BaseModel):
    id: str
    object: str = "model"
    owned_by: str = "llm-router"
    routable: bool = Field(description="True for the router pseudo-model, which picks a pool model per request.")
    has_backend: bool = Field(description="True when /v1/chat/completions can forward to this model.")


class ModelList(BaseModel):
    object: str = "list"
    data: list[ModelCard]

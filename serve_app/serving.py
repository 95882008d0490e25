"""What the dispatcher does per request, independent of Serve: route prompts, answer chats through
the chosen backend with fallback, list models. Decisions are the router's own
(:meth:`router.core.Router.decide`); the prediction is injected as an async function (prompts ->
``Prediction``), which is the Embedder -> Scorer chain under Serve and a local model in unit tests.
"""

from __future__ import annotations

import time
from typing import Awaitable, Callable, Mapping, Optional, Sequence

from starlette.responses import JSONResponse, Response, StreamingResponse

import numpy as np

from router.decision import Decision
from router.prediction import Prediction
from serve_app.auth.gate import KeyGate
from serve_app.backends import BackendClient, BackendError, read_usage, relay_sse
from serve_app.config import AppArgs, BackendConfig
from serve_app.metrics import RouterMetrics
from serve_app.protocol import ModelCard, ModelList, ModelScore, RequestError, RouteDecision, RouteResponse
from serve_app.parse import ChatPlan, Limits, fallback_order, parse_chat_request, parse_route_request
from serve_app.protocol import ROUTER_MODEL

PredictFn = Callable[[list[str]], Awaitable[Prediction]]


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


_MAX_FLOAT = float(np.finfo(np.float64).max)


def _finite(x: float) -> float:
    """A reward as JSON can carry it: a huge λ (1e300 is a valid λ) can overflow the linear reward
    to -inf, which JSON cannot encode; the decision itself was made on the exact values."""
    return float(np.clip(x, -_MAX_FLOAT, _MAX_FLOAT))


class RouterService:
    def __init__(
        self,
        router,
        backends: Mapping[str, BackendConfig],
        args: AppArgs,
        predict: PredictFn,
        metrics: Optional[RouterMetrics] = None,
    ):
        self.router = router  # a router.core.Router (or anything with .models and .decide)
        self.pool = tuple(router.models)
        # Only backends of pool models can be chosen; others in the file are ignored (listed in /v1/models as absent).
        self.backends = {m: b for m, b in backends.items() if m in self.pool}
        self.args = args
        self.limits = Limits(args.max_prompt_chars, args.max_prompts_per_request)
        self.predict = predict
        self.metrics = metrics or RouterMetrics.noop()
        self.client = BackendClient(args.backend_timeout_s)
        self.metrics.pool_size.set(len(self.backends))
        self.gate = KeyGate(args, self.pool, self.backends, self.metrics)  # [keys] caller keys, limits, budgets

    async def _decide(self, prompts: list[str], lam: float, reward: str, endpoint: str) -> list[Decision]:
        t0 = time.perf_counter()
        prediction = await self.predict(prompts)
        self.metrics.latency.observe(_ms(t0), tags={"stage": "predict", "endpoint": endpoint})
        t1 = time.perf_counter()
        decisions = self.router.decide(prediction, lam, reward)
        self.metrics.latency.observe(_ms(t1), tags={"stage": "decide", "endpoint": endpoint})
        return decisions

    def _count_decision(self, model: str, predicted_cost: float, endpoint: str) -> None:
        self.metrics.decisions.inc(1, tags={"model": model, "endpoint": endpoint})
        if predicted_cost > 0:  # Ray counters refuse increments <= 0
            self.metrics.predicted_cost.inc(predicted_cost, tags={"model": model})

    # -- /v1/route ------------------------------------------------------------------------------
    async def route(self, raw: bytes, headers: Mapping[str, str] = {}, out_headers: Optional[dict] = None) -> RouteResponse:
        ticket = await self.gate.admit(headers, "route", raw)  # [keys] 401/429 before the body is parsed
        default_lam, default_reward = ticket.default_lambda(self.args.default_lambda), ticket.default_reward(self.args.default_reward)  # [keys]
        plan = parse_route_request(raw, self.limits, default_lam, default_reward, self.pool)
        ticket.check_model(plan.override)  # [keys]
        lam, reward = ticket.steer(plan.lam, plan.reward)  # [keys]
        decisions = await self._decide(plan.prompts, lam, reward, "route")
        out = []
        for d in decisions:
            chosen = plan.override or ticket.pick(d)  # [keys]
            self._count_decision(chosen, d.cost[chosen], "route")
            unc = d.uncertainty or {}
            scores = {m: ModelScore(quality=d.quality[m], cost=d.cost[m], reward=_finite(d.reward[m]), uncertainty=unc.get(m))
                      for m in self.pool}  # fmt: skip
            out.append(RouteDecision(model=chosen, best_model=d.model, overridden=plan.override is not None, scores=scores))
        if out_headers is not None:
            out_headers.update(ticket.headers())  # [keys]
        return RouteResponse(lam=lam, reward_type=reward, decisions=out)

    # -- /v1/chat/completions -------------------------------------------------------------------
    def candidates(self, plan: ChatPlan, decision: Decision) -> list[str]:
        """Backends to try in order: the override alone, else pool models by reward (see ``fallback_order``)."""
        if plan.override is not None:
            if plan.override not in self.backends:
                raise RequestError(400, f"model {plan.override!r} has no backend configured", param="model")
            return [plan.override]
        order = fallback_order(decision.reward, decision.cost, list(self.backends))
        return order[: self.args.max_attempts]

    async def chat(self, raw: bytes, headers: Mapping[str, str]) -> Response:
        t0 = time.perf_counter()
        ticket = await self.gate.admit(headers, "chat", raw)  # [keys] 401/429 before the body is parsed
        default_lam, default_reward = ticket.default_lambda(self.args.default_lambda), ticket.default_reward(self.args.default_reward)  # [keys]
        plan = parse_chat_request(raw, headers, self.limits, default_lam, default_reward, self.pool)
        ticket.check_model(plan.override)  # [keys]
        plan.lam, plan.reward = ticket.steer(plan.lam, plan.reward)  # [keys]
        if not self.backends:
            raise RequestError(503, "no backends are configured for this router (start it with a backends_file)")
        (decision,) = await self._decide([plan.text], plan.lam, plan.reward, "chat")
        order = await ticket.reserve(self.candidates(plan, decision), decision)  # [keys] allowed models; budget 429 / cheapest
        failures: list[BackendError] = []
        for model in order:
            backend = self.backends[model]
            t_b = time.perf_counter()
            try:
                if plan.stream:
                    upstream = await self.client.open_stream(backend, plan.forward_body)
                else:
                    answer = await self.client.complete(backend, plan.forward_body)
            except BackendError as exc:
                failures.append(exc)
                self.metrics.fallbacks.inc(1, tags={"model": model, "reason": exc.reason})
                continue
            self.metrics.latency.observe(_ms(t_b), tags={"stage": "backend", "endpoint": "chat"})
            self._count_decision(model, decision.cost[model], "chat")
            out_headers = self._headers(model, decision, plan, failures)
            self.metrics.latency.observe(_ms(t0), tags={"stage": "total", "endpoint": "chat"})
            if plan.stream:
                out_headers.update(ticket.headers())  # [keys] (spend as of the stream's start; settled when it ends)
                return StreamingResponse(ticket.metered(relay_sse(upstream, model), backend), media_type="text/event-stream", headers=out_headers)  # [keys] metered
            if isinstance(answer, dict):
                answer["model"] = model
                self._observe_cost(backend, answer)
            out_headers.update(await ticket.settle(backend, answer))  # [keys]
            return JSONResponse(answer, headers=out_headers)
        await ticket.release()  # [keys]
        tried = ", ".join(f"{f.model} ({f.reason})" for f in failures)
        raise RequestError(502, f"every backend tried failed: {tried}", type="upstream_error")

    def _headers(self, model: str, decision: Decision, plan: ChatPlan, failures: Sequence[BackendError]) -> dict:
        h = {
            "x-router-model": model,
            "x-router-best-model": decision.model,
            "x-router-lambda": repr(plan.lam),
            "x-router-reward": plan.reward,
        }
        if failures:
            h["x-router-fallbacks"] = ",".join(f"{f.model}={f.reason}" for f in failures)
        return h

    def _observe_cost(self, backend: BackendConfig, answer: dict) -> None:
        usage = read_usage(answer)
        if usage is None:
            return
        cost = backend.observed_cost(*usage)
        if cost > 0:
            self.metrics.observed_cost.inc(cost, tags={"model": backend.model})

    # -- /v1/models -----------------------------------------------------------------------------
    def models(self) -> ModelList:
        cards = [ModelCard(id=ROUTER_MODEL, routable=True, has_backend=bool(self.backends))]
        cards += [ModelCard(id=m, routable=False, has_backend=m in self.backends) for m in self.pool]
        return ModelList(data=cards)

    async def close(self) -> None:
        await self.client.close()
        self.gate.close()  # [keys]

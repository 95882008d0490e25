"""``KeyGate``: the one object the request path talks to about caller keys.

    ticket = await gate.admit(headers, "chat", raw)      # 401 / 429 (rate), before the body is parsed
    plan   = parse(..., ticket.default_lambda(app_λ), ticket.default_reward(app_reward))
    ticket.check_model(plan.override)                     # 403 for a model the key may not use
    lam, reward = ticket.steer(plan.lam, plan.reward)     # the controller's λ when the key has a spend target
    order  = await ticket.reserve(candidates, decision)   # chat: allowed models, budget (429 or cheapest only)
    ...    = await ticket.settle(backend, answer)         # chat: real cost from usage; returns the x-router-* headers
             await ticket.release()                       # chat: every backend failed

With ``auth: off`` every ticket is open: nothing is checked, counted or added.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from pathlib import Path
from typing import AsyncIterator, Callable, Mapping, Optional, Sequence

from router.decision import Decision
from serve_app.auth import budget, limits
from serve_app.auth.budget import ControllerSettings, LambdaController
from serve_app.auth.keys import KeyEntry, KeyStore
from serve_app.auth.ledger import Ledger, Period, ledger_kind, open_ledger
from serve_app.backends import read_usage
from serve_app.config import AppArgs, BackendConfig
from serve_app.metrics import RouterMetrics
from serve_app.protocol import RequestError
from serve_app.parse import fallback_order

log = logging.getLogger("ray.serve")

WWW_AUTH = {"WWW-Authenticate": 'Bearer realm="llm-router"'}
STATE_EVERY = 20  # save a controller's state to the ledger every this many settled requests


def bearer(headers: Mapping[str, str]) -> Optional[str]:
    """The token of ``Authorization: Bearer <token>``, else None."""
    value = headers.get("authorization") or headers.get("Authorization")
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class KeyGate:
    def __init__(self, args: AppArgs, pool: Sequence[str], backends: Mapping[str, BackendConfig], metrics: RouterMetrics,
                 ledger: Optional[Ledger] = None, clock: Callable[[], float] = time.time,
                 settings: ControllerSettings = ControllerSettings()):  # fmt: skip
        self.args = args
        self.pool = tuple(pool)
        self.backends = backends
        self.metrics = metrics
        self.clock = clock
        self.settings = settings
        self.enabled = args.auth == "required"
        self.store: Optional[KeyStore] = None
        self.ledger: Optional[Ledger] = None
        self.controllers: dict[str, LambdaController] = {}
        self._signatures: dict[str, list] = {}
        if self.enabled:
            assert args.keys_file is not None  # AppArgs checks it
            self.store = KeyStore(args.keys_file, self.pool, args.keys_poll_s)
            url = args.resolved_ledger_url()
            self.ledger = ledger or open_ledger(url, default_ledger_path(args.keys_file))
        # Reservations outlive the slowest possible answer (every attempt timing out), then expire.
        self.reservation_ttl_s = args.backend_timeout_s * args.max_attempts + 60.0

    # -- live updates and health ------------------------------------------------------------------
    def reconfigure(self, user_config: Optional[dict] = None) -> None:
        """Re-read the keys file now (the Dispatcher's ``reconfigure``; polling does it within keys_poll_s anyway)."""
        if self.store is not None:
            self.store.reload()

    def describe(self) -> dict:
        """For /healthz: the mode and counts, nothing secret (no ids, hashes or ledger URL)."""
        if not self.enabled:
            return {"mode": "off"}
        assert self.store is not None
        return {"mode": "required", "keys": len(self.store.keys), "revoked": sum(k.revoked for k in self.store.keys.values()),
                "ledger": ledger_kind(self.args.resolved_ledger_url()), "keys_file_ok": self.store.last_error is None}  # fmt: skip

    def close(self) -> None:
        if self.ledger is not None:
            self.ledger.close()

    # -- admission ------------------------------------------------------------------------------
    async def call_ledger(self, fn, *args):
        """A ledger operation in a worker thread; an unreachable store is a 503, never a 500 with its
        address in the message (a Redis URL may carry a password)."""
        try:
            return await asyncio.to_thread(fn, *args)
        except RequestError:
            raise
        except Exception as exc:  # noqa: BLE001
            log.error("ledger (%s) %s failed: %s", self.ledger.kind if self.ledger else "-", getattr(fn, "__name__", "?"), type(exc).__name__)
            raise RequestError(503, "the router's spend ledger is unavailable; retry later", type="server_error",
                               headers={"Retry-After": "1"}) from None  # fmt: skip

    def _refuse(self, key_id: str, status: int, reason: str) -> None:
        self.metrics.key_refusals.inc(1, tags={"key": key_id, "status": str(status), "reason": reason})

    async def admit(self, headers: Mapping[str, str], endpoint: str, raw: bytes = b"") -> "Ticket":
        if not self.enabled:
            self._log_body(endpoint, "-", raw)
            return Ticket(self, None, endpoint)
        assert self.store is not None and self.ledger is not None
        key, why = self.store.authenticate(bearer(headers))
        if key is None or why != "ok":
            # Label "-" unless the secret was right (revoked): never a presented, possibly secret, string.
            self._refuse(key.id if key is not None else "-", 401, why)
            message = {
                "missing": "missing API key: send `Authorization: Bearer <key>` (keys are made with `router keys create`)",
                "invalid": "invalid API key",
                "revoked": f"API key {key.id!r} has been revoked" if key is not None else "invalid API key",
            }[why]
            raise RequestError(401, message, type="invalid_api_key", headers=dict(WWW_AUTH))
        self._log_body(endpoint, key.id, raw)
        now = self.clock()
        if limits.has_limits(key):
            try:
                await self.call_ledger(limits.check_rate, self.ledger, key, now)
            except RequestError as exc:
                self._refuse(key.id, 429, exc.param or "rate")
                raise
        ticket = Ticket(self, key, endpoint, budget.periods(key.policy, now))
        if key.policy.has_budget and (endpoint == "chat" or key.policy.on_exhausted == "cheapest"):
            ticket.spent = await self.call_ledger(self.ledger.spent, key.id, ticket.periods, now)
            gone = budget.exhausted(ticket.periods, ticket.spent)
            if gone is not None:
                if key.policy.on_exhausted == "refuse":  # only chat gets here: /v1/route spends nothing
                    self._refuse(key.id, 429, f"budget_{gone.name.split(':')[0]}")
                    raise budget.budget_error(key.id, gone, ticket.spent[gone.name], now)
                ticket.cheapest = True
        self.metrics.key_requests.inc(1, tags={"key": key.id, "endpoint": endpoint})
        return ticket

    def _log_body(self, endpoint: str, key_id: str, raw: bytes) -> None:
        if self.args.log_request_bodies and raw:
            log.info("request body (log_request_bodies is on) %s key=%s: %s", endpoint, key_id, raw[:4096].decode("utf-8", "replace"))

    # -- the λ controller -----------------------------------------------------------------------
    def key_lambda(self, key: KeyEntry) -> float:
        p = key.policy
        return self.args.default_lambda if p.default_lambda is None else p.default_lambda

    def key_reward(self, key: KeyEntry) -> str:
        return key.policy.default_reward or self.args.default_reward

    def controller(self, key: KeyEntry) -> Optional[LambdaController]:
        target = key.policy.spend_target_usd_per_1000
        if target is None:
            return None
        signature = [target, self.key_lambda(key), self.key_reward(key)]
        ctl = self.controllers.get(key.id)
        if ctl is None or self._signatures.get(key.id) != signature:
            # A new replica (or a restart) resumes from the ledger's state when the policy is unchanged.
            assert self.ledger is not None
            try:
                saved = self.ledger.get_state(key.id)
            except Exception as exc:  # noqa: BLE001 - start from λ₀ instead
                log.error("reading the λ controller of key %s failed: %s", key.id, type(exc).__name__)
                saved = None
            state = saved if saved and saved.get("signature") == signature else None
            ctl = LambdaController(target / 1000.0, self.key_lambda(key), self.key_reward(key), self.settings, state)
            self.controllers[key.id] = ctl
            self._signatures[key.id] = signature
        return ctl


class Ticket:
    """One admitted request of one key (or an open ticket with auth off)."""

    def __init__(self, gate: KeyGate, key: Optional[KeyEntry], endpoint: str, periods: Sequence[Period] = ()):
        self.gate = gate
        self.key = key
        self.endpoint = endpoint
        self.periods = list(periods)
        self.spent: dict = {}
        self.cheapest = False
        self.override: Optional[str] = None
        self.lam: Optional[float] = None
        self.decision: Optional[Decision] = None
        self.reservation: Optional[str] = None
        self.settled = False

    # -- before the decision --------------------------------------------------------------------
    def default_lambda(self, app_default: float) -> float:
        return app_default if self.key is None else self.gate.key_lambda(self.key)

    def default_reward(self, app_default: str) -> str:
        return app_default if self.key is None else self.gate.key_reward(self.key)

    @property
    def allowed(self) -> Optional[list[str]]:
        return None if self.key is None else self.key.policy.models

    def check_model(self, override: Optional[str]) -> None:
        self.override = override
        if override is not None and self.allowed is not None and override not in self.allowed:
            assert self.key is not None
            self.gate._refuse(self.key.id, 403, "model")
            raise RequestError(403, f"key {self.key.id!r} may not use model {override!r}; it may use {self.allowed}",
                               param="model", type="permission_error")  # fmt: skip

    def steer(self, lam: float, reward: str) -> tuple[float, str]:
        """The λ and reward to decide with: the controller's for a key with a spend target, else the request's."""
        ctl = self.gate.controller(self.key) if self.key is not None else None
        if ctl is not None:
            lam, reward = ctl.lam, ctl.reward
        self.lam = lam
        if self.key is not None:
            self.gate.metrics.key_lambda.set(lam, tags={"key": self.key.id})
        return lam, reward

    # -- after the decision ---------------------------------------------------------------------
    def pick(self, decision: Decision) -> str:
        """/v1/route: the model this key would be routed to (best allowed; cheapest when the budget is spent)."""
        if self.key is None or (self.allowed is None and not self.cheapest):
            return decision.model
        if self.override is not None and not self.cheapest:
            return self.override
        allowed = self.allowed or list(decision.reward)
        if self.cheapest:
            return min(allowed, key=lambda m: (decision.cost[m], m))
        return fallback_order(decision.reward, decision.cost, allowed)[0]

    def _order(self, order: list[str], decision: Decision) -> list[str]:
        # "Cheapest model only" also overrides an explicit model choice: it is the key's spending rule.
        if self.key is None or (self.override is not None and not self.cheapest):
            return order
        with_backend = [m for m in self.gate.backends if self.allowed is None or m in self.allowed]
        if not with_backend:
            self.gate._refuse(self.key.id, 403, "model")
            raise RequestError(403, f"none of the models key {self.key.id!r} may use ({self.allowed}) has a backend",
                               type="permission_error")  # fmt: skip
        if self.cheapest:
            return [min(with_backend, key=lambda m: (decision.cost[m], m))]
        if self.allowed is None:
            return order
        return fallback_order(decision.reward, decision.cost, with_backend)[: self.gate.args.max_attempts]

    async def reserve(self, order: list[str], decision: Decision) -> list[str]:
        """/v1/chat/completions: the backends to try for this key, with the first one's predicted cost
        reserved against the key's budgets (429 naming the budget, or the cheapest model only)."""
        self.decision = decision
        if self.key is None:
            return order
        order = self._order(order, decision)
        if not self.key.policy.has_budget:
            return order
        gate, key = self.gate, self.key
        assert gate.ledger is not None
        now = gate.clock()
        self.reservation = uuid.uuid4().hex
        predicted = decision.cost[order[0]]
        res = await gate.call_ledger(gate.ledger.reserve, key.id, self.periods, predicted, self.reservation,
                                     now + gate.reservation_ttl_s, not self.cheapest, now)  # fmt: skip
        if not res.ok:
            period = next(p for p in self.periods if p.name == res.exceeded)
            if key.policy.on_exhausted == "refuse":
                self.reservation = None
                gate._refuse(key.id, 429, f"budget_{period.name.split(':')[0]}")
                raise budget.budget_error(key.id, period, res.spent[period.name], now, predicted)
            self.cheapest = True
            order = self._order(order, decision)
            res = await gate.call_ledger(gate.ledger.reserve, key.id, self.periods, decision.cost[order[0]], self.reservation,
                                         now + gate.reservation_ttl_s, False, now)  # fmt: skip
        self.spent = res.spent
        return order

    async def settle(self, backend: BackendConfig, answer: Optional[dict]) -> dict:
        """The answer came back: charge its real cost (``usage`` × the backend's prices; the predicted
        cost when the backend reported no usage). Returns the headers for the caller."""
        if self.key is None or self.settled:
            return self.headers()
        self.settled = True
        gate, key = self.gate, self.key
        assert gate.ledger is not None
        usage = read_usage(answer)
        if usage is not None:
            cost, tokens = backend.observed_cost(*usage), sum(usage)
        else:
            cost, tokens = (self.decision.cost.get(backend.model, 0.0) if self.decision else 0.0), 0
        now = gate.clock()
        window, end = limits.window(now)
        try:
            self.spent = await asyncio.to_thread(gate.ledger.settle, key.id, self.reservation or "-", self.periods, cost, tokens,
                                                 window, end + limits.WINDOW_S, now)  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - the answer is already there; a ledger outage must not lose it
            log.error("ledger settle failed for key %s: %s", key.id, type(exc).__name__)
        if cost > 0:
            gate.metrics.key_spend.inc(cost, tags={"key": key.id})
        if tokens > 0:
            gate.metrics.key_tokens.inc(tokens, tags={"key": key.id})
        ctl = gate.controller(key)
        if ctl is not None:
            ctl.observe(cost)
            if ctl.n % STATE_EVERY == 0:
                state = dict(ctl.state(), signature=gate._signatures.get(key.id))
                try:
                    await asyncio.to_thread(gate.ledger.put_state, key.id, state)
                except Exception as exc:  # noqa: BLE001 - only the resume point is lost
                    log.error("saving the λ controller of key %s failed: %s", key.id, type(exc).__name__)
        return self.headers()

    async def release(self) -> None:
        """No answer (every backend failed): give the reservation back."""
        if self.key is None or self.reservation is None or self.settled:
            return
        self.settled = True
        gate = self.gate
        assert gate.ledger is not None
        now = gate.clock()
        window, end = limits.window(now)
        try:
            await asyncio.to_thread(gate.ledger.settle, self.key.id, self.reservation, self.periods, 0.0, 0, window, end, now)
        except Exception as exc:  # noqa: BLE001 - the reservation expires by itself
            log.error("ledger release failed for key %s: %s", self.key.id, type(exc).__name__)

    async def metered(self, chunks: AsyncIterator[bytes], backend: BackendConfig) -> AsyncIterator[bytes]:
        """A relayed SSE stream, settled when it ends, with the usage of its final chunk if it has one."""
        answer = None
        try:
            async for line in chunks:
                if answer is None and self.key is not None and b'"usage"' in line and line.startswith(b"data:"):
                    try:
                        chunk = json.loads(line[5:])
                        answer = chunk if read_usage(chunk) is not None else None
                    except (json.JSONDecodeError, UnicodeDecodeError):
                        pass
                yield line
        finally:
            try:
                await self.settle(backend, answer)
            except Exception as exc:  # noqa: BLE001
                log.error("settling a stream failed for key %s: %s", self.key.id if self.key else "-", type(exc).__name__)

    def headers(self) -> dict:
        """Where the caller stands: key id, λ used, spend and remaining budget of the tightest period."""
        if self.key is None:
            return {}
        h = {"x-router-key": self.key.id}
        if self.lam is not None:
            h["x-router-lambda"] = repr(self.lam)
        if self.spent:
            capped = [p for p in self.periods if p.cap is not None]
            if capped:
                tight = min(capped, key=lambda p: p.cap - self.spent.get(p.name, 0.0))
                h["x-router-spend-usd"] = f"{self.spent.get(tight.name, 0.0):.6f}"
                h["x-router-budget-remaining-usd"] = f"{max(0.0, tight.cap - self.spent.get(tight.name, 0.0)):.6f}"
                h["x-router-spend-period"] = tight.name
            else:
                month = self.periods[-1]
                h["x-router-spend-usd"] = f"{self.spent.get(month.name, 0.0):.6f}"
                h["x-router-spend-period"] = month.name
        if self.cheapest:
            h["x-router-budget"] = "exhausted; cheapest model only"
        return h


def default_ledger_path(keys_file: str) -> Path:
    p = Path(keys_file)
    return p.with_name(p.stem + ".ledger.sqlite")

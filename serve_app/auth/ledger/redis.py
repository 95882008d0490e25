"""The ledger on Redis (``ledger_url: redis://host:6379/0``), for routers on several Serve nodes.

Each operation is one Lua script, which Redis runs atomically. A key's data share the hash tag
``{<key id>}`` so that a Redis Cluster keeps them in one slot (scripts may only touch one slot).
Numbers come back from Lua as strings: Lua numbers would be truncated to integers.
"""

from __future__ import annotations

import json
import math
from typing import Optional, Sequence

from serve_app.auth.ledger.base import Ledger, Period, RateResult, SpendResult

PREFIX = "llm-router"

# KEYS: req counter, tok counter. ARGV: max_req ('' = none), max_tok, expires_at (epoch s).
HIT = """
local req = tonumber(redis.call('GET', KEYS[1]) or '0')
local tok = tonumber(redis.call('GET', KEYS[2]) or '0')
if ARGV[1] ~= '' and req >= tonumber(ARGV[1]) then return {'requests_per_min', tostring(req), tostring(tok)} end
if ARGV[2] ~= '' and tok >= tonumber(ARGV[2]) then return {'tokens_per_min', tostring(req), tostring(tok)} end
req = redis.call('INCR', KEYS[1])
redis.call('EXPIREAT', KEYS[1], ARGV[3])
return {'', tostring(req), tostring(tok)}
"""

# Sum a key's live reservations (deleting expired ones); used by RESERVE and SPENT.
_RESERVED = """
local function reserved(hash, now)
  local total = 0
  local all = redis.call('HGETALL', hash)
  for i = 1, #all, 2 do
    local amt, exp = string.match(all[i + 1], '^([^|]+)|([^|]+)$')
    if tonumber(exp) <= now then redis.call('HDEL', hash, all[i]) else total = total + tonumber(amt) end
  end
  return total
end
"""

# KEYS: reservations hash, then one spend counter per period.
# ARGV: now, amount, reservation id, reservation expires_at, enforce ('1'/'0'), then one cap per period ('' = none).
RESERVE = _RESERVED + """
local now = tonumber(ARGV[1])
local amount = tonumber(ARGV[2])
local res = reserved(KEYS[1], now)
local out = {''}
local fail = ''
for j = 2, #KEYS do
  local spent = tonumber(redis.call('GET', KEYS[j]) or '0') + res
  out[#out + 1] = string.format('%.17g', spent)
  local cap = ARGV[4 + j]
  if ARGV[5] == '1' and fail == '' and cap ~= '' and spent + amount > tonumber(cap) + 1e-12 then fail = tostring(j - 1) end
end
out[1] = fail
if fail == '' then
  redis.call('HSET', KEYS[1], ARGV[3], string.format('%.17g', amount) .. '|' .. ARGV[4])
  local ttl = math.ceil(tonumber(ARGV[4]) - now) + 60
  if redis.call('TTL', KEYS[1]) < ttl then redis.call('EXPIRE', KEYS[1], ttl) end
end
return out
"""

# KEYS: reservations hash, tok counter, then one spend counter per period.
# ARGV: reservation id, cost, tokens, tok expires_at, then one expires_at per period.
SETTLE = """
redis.call('HDEL', KEYS[1], ARGV[1])
if tonumber(ARGV[3]) > 0 then
  redis.call('INCRBY', KEYS[2], ARGV[3])
  redis.call('EXPIREAT', KEYS[2], ARGV[4])
end
local out = {}
for j = 3, #KEYS do
  local v = redis.call('INCRBYFLOAT', KEYS[j], ARGV[2])
  redis.call('EXPIREAT', KEYS[j], ARGV[2 + j])
  out[#out + 1] = v
end
return out
"""

# KEYS: reservations hash, then one spend counter per period. ARGV: now.
SPENT = _RESERVED + """
local res = reserved(KEYS[1], tonumber(ARGV[1]))
local out = {}
for j = 2, #KEYS do out[#out + 1] = string.format('%.17g', tonumber(redis.call('GET', KEYS[j]) or '0') + res) end
return out
"""


def _k(key_id: str, what: str) -> str:
    return f"{PREFIX}:{{{key_id}}}:{what}"


def _s(x) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


class RedisLedger(Ledger):
    kind = "redis"

    def __init__(self, url: str):
        import redis

        # The URL may carry a password: it is kept only inside the client, never logged or shown.
        self.client = redis.Redis.from_url(url, socket_timeout=5.0, socket_connect_timeout=5.0)
        self._hit = self.client.register_script(HIT)
        self._reserve = self.client.register_script(RESERVE)
        self._settle = self.client.register_script(SETTLE)
        self._spent = self.client.register_script(SPENT)

    def hit(self, key_id, window, window_expires_at, max_requests, max_tokens, now) -> RateResult:
        limited, req, tok = self._hit(
            keys=[_k(key_id, f"req:{window}"), _k(key_id, f"tok:{window}")],
            args=["" if max_requests is None else max_requests, "" if max_tokens is None else max_tokens, math.ceil(window_expires_at)],
        )
        limited = _s(limited)
        return RateResult(not limited, int(float(_s(req))), int(float(_s(tok))), limited or None)

    def reserve(self, key_id, periods: Sequence[Period], amount, reservation_id, reservation_expires_at, enforce, now) -> SpendResult:
        out = self._reserve(
            keys=[_k(key_id, "res")] + [_k(key_id, f"usd:{p.name}") for p in periods],
            args=[repr(now), repr(float(amount)), reservation_id, repr(reservation_expires_at), "1" if enforce else "0"]
            + ["" if p.cap is None else repr(p.cap) for p in periods],
        )
        fail = _s(out[0])
        spent = {p.name: float(_s(v)) for p, v in zip(periods, out[1:])}
        return SpendResult(not fail, spent, periods[int(fail) - 1].name if fail else None)

    def settle(self, key_id, reservation_id, periods, cost, tokens, window, window_expires_at, now) -> dict:
        out = self._settle(
            keys=[_k(key_id, "res"), _k(key_id, f"tok:{window}")] + [_k(key_id, f"usd:{p.name}") for p in periods],
            args=[reservation_id, repr(float(cost)), int(tokens), math.ceil(window_expires_at)] + [math.ceil(p.expires_at) for p in periods],
        )
        return {p.name: float(_s(v)) for p, v in zip(periods, out)}

    def spent(self, key_id, periods, now) -> dict:
        out = self._spent(keys=[_k(key_id, "res")] + [_k(key_id, f"usd:{p.name}") for p in periods], args=[repr(now)])
        return {p.name: float(_s(v)) for p, v in zip(periods, out)}

    def get_state(self, key_id) -> Optional[dict]:
        raw = self.client.get(_k(key_id, "state"))
        return json.loads(raw) if raw else None

    def put_state(self, key_id, state) -> None:
        self.client.set(_k(key_id, "state"), json.dumps(state))

    def close(self) -> None:
        self.client.close()

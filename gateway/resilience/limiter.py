"""Token buckets for per-key rate limits: requests per minute and tokens per minute.

Each limit is a bucket holding up to a minute's allowance that refills
continuously (`limit / 60` per second), so bursts up to the limit pass and the
steady rate is the limit. A request takes 1 from the request bucket and its
estimated tokens from the token bucket, only if both have enough; the token
bucket is later corrected by the difference between actual and estimated usage
(it may go below zero, which delays the next requests).

`MemoryLimiter` serves one replica; `RedisLimiter` keeps the buckets in Redis
(one Lua script per check, the clock being Redis's own) so replicas share one
limit. Redis trouble fails open: a limit is not worth an outage.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Final, Protocol

from gateway.clock import MONOTONIC, TimeSource
from gateway.resilience.config import RateLimit

_log = logging.getLogger(__name__)
RPM: Final = "rpm"
TPM: Final = "tpm"


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: str | None = None  # which limit refused: "rpm" or "tpm"
    retry_after_s: float = 0.0


ALLOWED: Final = Decision(True)


class Limiter(Protocol):
    async def acquire(self, key: str, limit: RateLimit, tokens: int) -> Decision:
        """Take one request and `tokens` from `key`'s buckets, or refuse without taking."""
        ...

    async def settle(self, key: str, limit: RateLimit, delta_tokens: int) -> None:
        """Charge (positive) or refund (negative) the token bucket after the call."""
        ...

    async def close(self) -> None: ...


def refill(level: float, updated: float, now: float, capacity: int) -> float:
    """A bucket's level at `now`, given its level at `updated`."""
    return min(float(capacity), level + max(0.0, now - updated) * capacity / 60.0)


def shortfall_wait(level: float, need: float, capacity: int) -> float:
    """Seconds until a bucket at `level` holds `need`."""
    return max(0.0, need - level) * 60.0 / capacity


class MemoryLimiter:
    """Buckets in this process: `{(key, kind): [level, updated]}`."""

    def __init__(self, clock: TimeSource = MONOTONIC) -> None:
        self._clock = clock
        self._buckets: dict[tuple[str, str], list[float]] = {}

    def _level(self, key: str, kind: str, capacity: int, now: float) -> list[float]:
        bucket = self._buckets.get((key, kind))
        if bucket is None:
            bucket = self._buckets[(key, kind)] = [float(capacity), now]
        else:
            bucket[0] = refill(bucket[0], bucket[1], now, capacity)
            bucket[1] = now
        return bucket

    async def acquire(self, key: str, limit: RateLimit, tokens: int) -> Decision:
        now = self._clock.time()
        rpm, tpm = limit.requests_per_minute, limit.tokens_per_minute
        requests = self._level(key, RPM, rpm, now) if rpm else None
        if requests is not None and rpm and requests[0] < 1:
            return Decision(False, RPM, shortfall_wait(requests[0], 1, rpm))
        token_bucket = self._level(key, TPM, tpm, now) if tpm else None
        if token_bucket is not None and tpm:
            need = min(tokens, tpm)
            if token_bucket[0] < need:
                return Decision(False, TPM, shortfall_wait(token_bucket[0], need, tpm))
            token_bucket[0] -= tokens
        if requests is not None:
            requests[0] -= 1
        return ALLOWED

    async def settle(self, key: str, limit: RateLimit, delta_tokens: int) -> None:
        tpm = limit.tokens_per_minute
        if not tpm or not delta_tokens:
            return
        bucket = self._level(key, TPM, tpm, self._clock.time())
        bucket[0] = min(float(tpm), bucket[0] - delta_tokens)

    async def close(self) -> None:
        return None


# KEYS: request bucket, token bucket. ARGV: rpm, tpm (0 = no limit), tokens.
# Returns {allowed, limit, retry_after_s as a string} (Redis truncates Lua floats).
_ACQUIRE: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function level(key, cap)
  local v = redis.call('HMGET', key, 'l', 't')
  local l, ts = tonumber(v[1]), tonumber(v[2])
  if l == nil or ts == nil then return cap end
  return math.min(cap, l + math.max(0, now - ts) * cap / 60)
end
local function store(key, cap, l)
  redis.call('HSET', key, 'l', l, 't', now)
  redis.call('EXPIRE', key, math.ceil((cap - l) * 60 / cap) + 60)
end
local rpm, tpm, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local rl, tl
if rpm > 0 then
  rl = level(KEYS[1], rpm)
  if rl < 1 then return {0, 'rpm', tostring((1 - rl) * 60 / rpm)} end
end
if tpm > 0 then
  tl = level(KEYS[2], tpm)
  local need = math.min(cost, tpm)
  if tl < need then return {0, 'tpm', tostring((need - tl) * 60 / tpm)} end
  store(KEYS[2], tpm, tl - cost)
end
if rpm > 0 then store(KEYS[1], rpm, rl - 1) end
return {1, '', '0'}
"""

# KEYS: token bucket. ARGV: tpm, delta (actual - estimated tokens).
_SETTLE: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local cap, delta = tonumber(ARGV[1]), tonumber(ARGV[2])
local v = redis.call('HMGET', KEYS[1], 'l', 't')
local l, ts = tonumber(v[1]), tonumber(v[2])
if l == nil or ts == nil then l = cap else l = math.min(cap, l + math.max(0, now - ts) * cap / 60) end
l = math.min(cap, l - delta)
redis.call('HSET', KEYS[1], 'l', l, 't', now)
redis.call('EXPIRE', KEYS[1], math.ceil((cap - l) * 60 / cap) + 60)
return 1
"""


class RedisLimiter:
    """Buckets in Redis, shared by every replica using the same URL and prefix."""

    def __init__(self, url: str, prefix: str, *, timeout_s: float = 0.5) -> None:
        import redis.asyncio as redis_asyncio

        self._client: Any = redis_asyncio.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self._prefix = prefix
        self._acquire = self._client.register_script(_ACQUIRE)
        self._settle = self._client.register_script(_SETTLE)
        self._warned_at = -math.inf

    def _keys(self, key: str) -> list[str]:
        # One hash tag per key alias: both buckets live in the same cluster slot.
        base = f"{self._prefix}ratelimit:{{{key}}}:"
        return [base + RPM, base + TPM]

    async def acquire(self, key: str, limit: RateLimit, tokens: int) -> Decision:
        args = [limit.requests_per_minute or 0, limit.tokens_per_minute or 0, tokens]
        try:
            allowed, kind, wait = await self._acquire(keys=self._keys(key), args=args)
        except Exception as exc:  # redis errors, timeouts, connection refused
            self._warn(exc)
            return ALLOWED
        if int(allowed):
            return ALLOWED
        return Decision(False, _text(kind), float(_text(wait)))

    async def settle(self, key: str, limit: RateLimit, delta_tokens: int) -> None:
        if not limit.tokens_per_minute or not delta_tokens:
            return
        try:
            await self._settle(keys=self._keys(key)[1:],
                               args=[limit.tokens_per_minute, delta_tokens])
        except Exception as exc:
            self._warn(exc)

    def _warn(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._warned_at > 30:
            self._warned_at = now
            _log.warning("rate limits not enforced: Redis unavailable (%s)", type(exc).__name__)

    async def close(self) -> None:
        await self._client.aclose()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

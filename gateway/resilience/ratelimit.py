"""Per-key rate limits as a `CallHook`: requests and tokens per minute for each
key alias (`rate_limits.keys.<alias>`, else `rate_limits.default`), refused with
429 `rate_limit_exceeded` and `Retry-After`.

Tokens are counted up front from the request (estimated prompt plus
`max_tokens`) and settled with the call's actual usage when it ends.
"""

from __future__ import annotations

import math
from typing import Final

from opentelemetry.context import Context

from gateway import errors
from gateway.call import Call
from gateway.clock import MONOTONIC, TimeSource
from gateway.config import GatewayConfig
from gateway.hooks import BaseHook
from gateway.resilience.config import RateLimit, RateLimitConfig
from gateway.resilience.limiter import RPM, Limiter, MemoryLimiter, RedisLimiter
from gateway.telemetry import names as n
from gateway.telemetry.instruments import Instruments

_STATE: Final = "rate_limit.tokens"
_UNITS: Final = {RPM: "requests per minute", "tpm": "tokens per minute"}


def estimate_tokens(call: Call) -> int:
    """What the call may use: its estimated prompt plus the output it allows itself."""
    return call.client.prompt_tokens + (call.client.max_tokens or 0)


class RateLimitHook(BaseHook):
    def __init__(self, config: RateLimitConfig, limiter: Limiter, instruments: Instruments) -> None:
        self.config = config
        self.limiter = limiter
        self.instruments = instruments

    async def on_request(self, call: Call) -> None:
        alias = call.principal.alias
        limit = self.config.for_key(alias)
        if limit.unlimited:
            return
        tokens = estimate_tokens(call) if limit.tokens_per_minute else 0
        await self._take(alias, limit, tokens, call.server_context)
        if tokens:
            call.state[_STATE] = tokens

    async def take_request(self, alias: str, context: Context | None) -> None:
        """One request that uses no tokens (a call on a stored response), from `alias`'s
        request bucket; raises RateLimited as `on_request` does."""
        limit = self.config.for_key(alias)
        if not limit.unlimited:
            await self._take(alias, limit, 0, context)

    async def _take(self, alias: str, limit: RateLimit, tokens: int,
                    context: Context | None) -> None:
        decision = await self.limiter.acquire(alias, limit, tokens)
        if not decision.allowed:
            kind = decision.limit or RPM
            self.instruments.rate_limited.add(
                1, {n.GATEWAY_KEY_ALIAS: alias, n.LABEL_LIMIT: kind}, context=context)
            raise _refusal(alias, kind, limit, decision.retry_after_s)

    async def on_finish(self, call: Call) -> None:
        estimate = call.state.pop(_STATE, None)
        if not isinstance(estimate, int):
            return
        limit = self.config.for_key(call.principal.alias)
        await self.limiter.settle(call.principal.alias, limit, call.usage.total - estimate)

    async def close(self) -> None:
        await self.limiter.close()


def _refusal(alias: str, kind: str, limit: RateLimit, wait_s: float) -> errors.RateLimited:
    value = limit.requests_per_minute if kind == RPM else limit.tokens_per_minute
    seconds = max(1, math.ceil(wait_s))
    return errors.RateLimited(
        f"Rate limit reached for key '{alias}' on {_UNITS[kind]}: limit {value}. "
        f"Please try again in {seconds}s.",
        headers={"retry-after": str(seconds)},
    )


def build_rate_limit_hook(config: GatewayConfig, instruments: Instruments,
                          clock: TimeSource = MONOTONIC) -> RateLimitHook | None:
    """The hook for `config.resilience.rate_limits`, or None when no limit is set; buckets
    kept in memory refill on `clock` (Redis's refill on Redis's own)."""
    limits = config.resilience.rate_limits
    if not limits.enabled:
        return None
    storage = config.storage
    limiter: Limiter
    if storage.backend == "redis" and storage.redis_url:
        limiter = RedisLimiter(storage.redis_url, storage.redis_prefix)
    else:
        limiter = MemoryLimiter(clock)
    return RateLimitHook(limits, limiter, instruments)

"""When to retry: exponential backoff with jitter, the upstream's Retry-After, and
the request's remaining time. Pure, no I/O (the random source is passed in).
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

from gateway.resilience.config import RetryPolicy


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the upstream asked us to wait (`retry-after-ms`, `retry-after` as seconds
    or as an HTTP date), or None when it did not say."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def backoff_s(policy: RetryPolicy, retry: int, rng: random.Random) -> float:
    """The pause before retry number `retry` (0 for the first retry)."""
    base = min(policy.max_backoff_s, policy.initial_backoff_s * policy.multiplier ** retry)
    return base * (1.0 - policy.jitter * rng.random())


def retry_delay(policy: RetryPolicy, retry: int, retry_after: float | None, remaining_s: float,
                rng: random.Random) -> float | None:
    """How long to wait before retrying, or None to give up on this model now:
    a Retry-After longer than `max_retry_after_s`, or a wait that would use up the
    request's remaining time."""
    if retry_after is not None and retry_after > policy.max_retry_after_s:
        return None
    delay = max(backoff_s(policy, retry, rng), retry_after or 0.0)
    if delay >= remaining_s:
        return None
    return delay

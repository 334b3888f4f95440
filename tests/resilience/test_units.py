"""The pure parts: breaker state machine, backoff and Retry-After, attempt deadlines,
rate-limit buckets."""

from __future__ import annotations

import random
from email.utils import formatdate

import pytest

from gateway import errors
from gateway.resilience import outcome
from gateway.resilience.backoff import backoff_s, parse_retry_after, retry_delay
from gateway.resilience.breaker import CLOSED, HALF_OPEN, OPEN, Breakers, CircuitBreaker
from gateway.resilience.config import BreakerPolicy, ModelPolicy, RateLimit, RetryPolicy
from gateway.resilience.deadline import plan
from gateway.resilience.limiter import MemoryLimiter
from gateway.testing import FakeClock


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _breaker(**policy: float) -> tuple[CircuitBreaker, Clock, list[int]]:
    clock, changes = Clock(), []
    breaker = CircuitBreaker(BreakerPolicy(**policy), clock, changes.append)  # type: ignore[arg-type]
    return breaker, clock, changes


def test_breaker_opens_after_consecutive_failures() -> None:
    """N consecutive failures open the circuit; a success in between resets the count."""
    breaker, _, changes = _breaker(failure_threshold=3)
    breaker.failure()
    breaker.failure()
    breaker.success()
    breaker.failure()
    breaker.failure()
    assert breaker.state == CLOSED
    breaker.failure()
    assert breaker.state == OPEN and changes == [OPEN]
    assert not breaker.allow()


def test_breaker_opens_on_error_ratio_over_the_window() -> None:
    """Failures at or above error_ratio of at least min_requests in the window open it."""
    breaker, clock, _ = _breaker(failure_threshold=100, error_ratio=0.5, min_requests=10,
                                 window_s=10)
    for _ in range(5):
        breaker.success()
        breaker.failure()
        clock.now += 0.1
    assert breaker.state == OPEN


def test_breaker_window_forgets_old_outcomes() -> None:
    """Outcomes older than the window no longer count towards the ratio."""
    breaker, clock, _ = _breaker(failure_threshold=100, error_ratio=0.5, min_requests=4,
                                 window_s=10)
    for _ in range(3):
        breaker.failure()
        breaker.success()
    clock.now += 11
    breaker.success()
    breaker.failure()
    assert breaker.state == CLOSED


def test_half_open_lets_one_probe_through() -> None:
    """After the cooldown exactly one probe passes; its success closes the circuit."""
    breaker, clock, changes = _breaker(failure_threshold=1, cooldown_s=5)
    breaker.failure()
    clock.now += 4.9
    assert not breaker.allow()
    clock.now += 0.2
    assert breaker.allow()
    assert breaker.state == HALF_OPEN
    assert not breaker.allow()
    breaker.success()
    assert breaker.state == CLOSED and changes == [OPEN, HALF_OPEN, CLOSED]
    assert breaker.allow() and breaker.allow()


def test_failed_probe_reopens_and_released_probe_frees_the_slot() -> None:
    """A failed probe re-opens for another cooldown; a probe without verdict frees the slot."""
    breaker, clock, _ = _breaker(failure_threshold=1, cooldown_s=5)
    breaker.failure()
    clock.now += 5
    assert breaker.allow()
    breaker.release()
    assert breaker.allow()
    breaker.failure()
    assert breaker.state == OPEN and not breaker.allow()
    clock.now += 5
    assert breaker.allow()


def test_breakers_report_state_changes_with_labels() -> None:
    """The registry creates one breaker per provider+model, reporting 0 then each change."""
    seen: list[tuple[int, dict[str, str]]] = []
    breakers = Breakers(lambda state, attrs: seen.append((state, dict(attrs))))
    labels = {"gen_ai.request.model": "m"}
    breaker = breakers.get("p", "m", BreakerPolicy(failure_threshold=1), labels)
    assert breaker is breakers.get("p", "m", BreakerPolicy(), labels)
    assert breaker is not None
    breaker.failure()
    assert seen == [(CLOSED, labels), (OPEN, labels)]
    assert breakers.get("p", "off", BreakerPolicy(enabled=False), labels) is None


def test_retry_after_forms() -> None:
    """Retry-After as seconds, as an HTTP date, and retry-after-ms are all understood."""
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": formatdate(1000 + 30, usegmt=True)},
                             now=1000) == pytest.approx(30)
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_backoff_grows_with_jitter_and_cap() -> None:
    """Delays grow by the multiplier up to the cap, minus up to `jitter` of each."""
    policy = RetryPolicy(initial_backoff_s=1, multiplier=2, max_backoff_s=5, jitter=0.5)
    rng = random.Random(7)
    for retry, base in enumerate([1, 2, 4, 5, 5]):
        delay = backoff_s(policy, retry, rng)
        assert base * 0.5 <= delay <= base


def test_retry_delay_respects_retry_after_and_the_deadline() -> None:
    """Retry-After raises the pause; too long a Retry-After or no time left means no retry."""
    policy = RetryPolicy(initial_backoff_s=0.1, jitter=0, max_retry_after_s=10)
    rng = random.Random(0)
    assert retry_delay(policy, 0, 2.0, 30, rng) == 2.0
    assert retry_delay(policy, 0, None, 30, rng) == pytest.approx(0.1)
    assert retry_delay(policy, 0, 11.0, 30, rng) is None
    assert retry_delay(policy, 0, 2.0, 1.5, rng) is None


def test_deadlines_first_token_only_with_a_fallback_left() -> None:
    """The first-token rule applies while a fallback remains; the attempt timeout is capped
    by the request deadline, and each expiry names its own error."""
    policy = ModelPolicy(first_token_timeout_s=5, attempt_timeout_s=30)
    with_fallback = plan(100, "m", policy, request_at=120, request_s=20, fallback_left=True)
    assert with_fallback.start == 105 and with_fallback.answer_at == 120
    assert isinstance(with_fallback.expired(first_seen=False), outcome.FirstTokenTimeout)
    assert isinstance(with_fallback.expired(first_seen=True), outcome.DeadlineExceeded)
    last = plan(100, "m", policy, request_at=200, request_s=100, fallback_left=False)
    assert last.start == 130
    timed_out = last.expired(first_seen=False)
    assert type(timed_out) is errors.UpstreamTimeout


def test_classify_reasons() -> None:
    """Each upstream failure maps to its fallback reason; client errors do not fall back."""
    assert outcome.classify(errors.UpstreamStatus(503, b"")) == outcome.STATUS_5XX
    assert outcome.classify(errors.UpstreamStatus(429, b"")) == outcome.STATUS_429
    assert outcome.classify(errors.UpstreamStatus(400, b"")) is None
    assert outcome.classify(errors.UpstreamUnreachable("x")) == outcome.CONNECTION_ERROR
    assert outcome.classify(outcome.FirstTokenTimeout("x")) == outcome.FIRST_TOKEN_TIMEOUT
    assert outcome.classify(errors.UpstreamTimeout("x")) == outcome.TIMEOUT
    assert not outcome.counts_as_failure(outcome.BUDGET)


async def test_memory_limiter_refills_over_the_minute() -> None:
    """A bucket refills at limit/60 per second and says how long until a request fits."""
    clock = FakeClock(start=0.0)
    limiter = MemoryLimiter(clock)
    limit = RateLimit(requests_per_minute=60, tokens_per_minute=600)
    assert (await limiter.acquire("k", limit, 500)).allowed
    refused = await limiter.acquire("k", limit, 300)
    assert (refused.allowed, refused.limit) == (False, "tpm")
    assert refused.retry_after_s == pytest.approx(20.0)
    await clock.advance(20)
    assert (await limiter.acquire("k", limit, 300)).allowed
    await limiter.settle("k", limit, -300)
    assert (await limiter.acquire("k", limit, 300)).allowed

"""Circuit breakers, one per provider+model: closed -> open after consecutive
failures or a high error ratio over a window; open -> half-open after a
cooldown, letting exactly one probe through; the probe's outcome closes or
re-opens it.

The state machine is pure (the clock is passed in); `Breakers` keeps one per
provider+model for the app, on the app's clock, and reports each state change to
a gauge.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from gateway.clock import MONOTONIC, TimeSource
from gateway.resilience.config import BreakerPolicy

CLOSED: Final = 0
HALF_OPEN: Final = 1
OPEN: Final = 2
_BUCKETS: Final = 10

Clock = Callable[[], float]
StateListener = Callable[[int], None]


class _Window:
    """Outcome counts over the last `window_s`, in ten rolling buckets."""

    __slots__ = ("_failures", "_ids", "_totals", "_width")

    def __init__(self, window_s: float) -> None:
        self._width = window_s / _BUCKETS
        self._ids = [-1] * _BUCKETS
        self._totals = [0] * _BUCKETS
        self._failures = [0] * _BUCKETS

    def add(self, now: float, failed: bool) -> None:
        bucket = int(now / self._width)
        slot = bucket % _BUCKETS
        if self._ids[slot] != bucket:
            self._ids[slot] = bucket
            self._totals[slot] = 0
            self._failures[slot] = 0
        self._totals[slot] += 1
        if failed:
            self._failures[slot] += 1

    def counts(self, now: float) -> tuple[int, int]:
        """(total, failures) within the window."""
        oldest = int(now / self._width) - _BUCKETS + 1
        total = failures = 0
        for slot in range(_BUCKETS):
            if self._ids[slot] >= oldest:
                total += self._totals[slot]
                failures += self._failures[slot]
        return total, failures

    def clear(self) -> None:
        self._ids = [-1] * _BUCKETS


class CircuitBreaker:
    """One provider+model's circuit. Call `allow()` before an attempt, then exactly
    one of `success()`, `failure()` or `release()` (no verdict) for it."""

    __slots__ = ("_clock", "_consecutive", "_listener", "_opened_at", "_probing", "_window",
                 "policy", "state")

    def __init__(self, policy: BreakerPolicy, clock: Clock = time.monotonic,
                 listener: StateListener | None = None) -> None:
        self.policy = policy
        self.state = CLOSED
        self._clock = clock
        self._listener = listener
        self._window = _Window(policy.window_s)
        self._consecutive = 0
        self._opened_at = 0.0
        self._probing = False

    def allow(self) -> bool:
        """Whether an attempt may go to this upstream now (claims the probe when half-open)."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN:
            if self._clock() - self._opened_at < self.policy.cooldown_s:
                return False
            self._set(HALF_OPEN)
        if self._probing:
            return False
        self._probing = True
        return True

    def success(self) -> None:
        if self.state != CLOSED:
            self._close()
            return
        self._consecutive = 0
        self._window.add(self._clock(), False)

    def failure(self) -> None:
        if self.state == HALF_OPEN:
            self._open()
            return
        if self.state == OPEN:
            return  # an attempt let through before the circuit opened
        now = self._clock()
        self._consecutive += 1
        self._window.add(now, True)
        if self._consecutive >= self.policy.failure_threshold or self._ratio_tripped(now):
            self._open()

    def release(self) -> None:
        """The attempt ended without saying anything about the upstream's health."""
        if self.state == HALF_OPEN:
            self._probing = False

    def _ratio_tripped(self, now: float) -> bool:
        total, failures = self._window.counts(now)
        return total >= self.policy.min_requests and failures >= self.policy.error_ratio * total

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._probing = False
        self._set(OPEN)

    def _close(self) -> None:
        self._consecutive = 0
        self._probing = False
        self._window.clear()
        self._set(CLOSED)

    def _set(self, state: int) -> None:
        if state != self.state:
            self.state = state
            if self._listener is not None:
                self._listener(state)


GaugeSetter = Callable[[int, Mapping[str, Any]], None]


class Breakers:
    """The app's breakers, created on first use, keyed by (provider, model)."""

    def __init__(self, report: GaugeSetter | None = None, clock: TimeSource = MONOTONIC) -> None:
        self._report = report
        self._clock = clock
        self._breakers: dict[tuple[str, str], CircuitBreaker] = {}

    def get(self, provider: str, model: str, policy: BreakerPolicy,
            labels: Mapping[str, Any]) -> CircuitBreaker | None:
        """The breaker for `provider`+`model`, or None when breakers are off for it."""
        breaker = self._breakers.get((provider, model))
        if breaker is not None:
            return breaker
        if not policy.enabled:
            return None
        report = self._report
        listener: StateListener | None = None
        if report is not None:
            attrs = dict(labels)

            def listener(state: int) -> None:
                report(state, attrs)

            report(CLOSED, attrs)
        breaker = CircuitBreaker(policy, self._clock.time, listener)  # the clock is bound by now
        self._breakers[(provider, model)] = breaker
        return breaker

    def state(self, provider: str, model: str) -> int | None:
        breaker = self._breakers.get((provider, model))
        return None if breaker is None else breaker.state

    def states(self) -> list[tuple[str, str, int]]:
        """(provider, model, state) of every breaker created so far."""
        return [(provider, model, breaker.state)
                for (provider, model), breaker in self._breakers.items()]

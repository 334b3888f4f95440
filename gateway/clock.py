"""The clock the request path's logic reads time through: request and attempt
deadlines, retry pauses, circuit breaker cooldowns and windows, rate-limit buckets.

Injected (`create_app(clock=...)`) so that tests drive time themselves
(`gateway.testing.FakeClock`): a 5 s first-token rule or a 7 s Retry-After is
then checked in milliseconds. The default, `LoopClock`, is the event loop's own
clock: `time` is the loop's `time`, `call_at` the fast paths' timers' (coarse, or
the loop's own when switched off) and `sleep` asyncio's, each bound once, so
reading it costs what calling the loop did.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from gateway.fastpaths import timers_of


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class TimeSource(Protocol):
    def time(self) -> float:
        """Seconds on a monotonic clock (only differences mean anything)."""
        ...


class Scheduler(TimeSource, Protocol):
    def call_at(self, when: float, callback: Callable[[], None]) -> Cancellable:
        """Run `callback` once `time()` has reached `when`."""
        ...


class Clock(Scheduler, Protocol):
    def sleep(self, delay: float) -> Awaitable[None]:
        """Wait `delay` seconds of this clock."""
        ...


class _Monotonic:
    """Wall-independent time for the pure parts used without a loop (breakers, buckets)."""

    time = staticmethod(time.monotonic)


MONOTONIC: TimeSource = _Monotonic()


def _unbound() -> float:
    raise RuntimeError("LoopClock used before it was bound to an event loop")


def _unbound_call(when: float, callback: Callable[[], None]) -> Cancellable:
    raise RuntimeError("LoopClock used before it was bound to an event loop")


class LoopClock:
    """The event loop's clock, bound once (`running()`, or `bind` when the app starts:
    after the timers' switch, so that it arms the timers chosen); from then on every
    member is the loop's or the timers' own method."""

    __slots__ = ("call_at", "loop", "sleep", "time")

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.time: Callable[[], float] = _unbound
        self.call_at: Callable[[float, Callable[[], None]], Cancellable] = _unbound_call
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        if loop is not None:
            self.bind(loop)

    @classmethod
    def running(cls) -> LoopClock:
        """Bound to the running loop, or still unbound outside one."""
        try:
            return cls(asyncio.get_running_loop())
        except RuntimeError:
            return cls()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.time = loop.time
        self.call_at = timers_of(loop).call_at

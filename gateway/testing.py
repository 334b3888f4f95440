"""Test doubles for the gateway's own tests and for yours: a clock that time
travels (`FakeClock`) and the in-memory provider (`MemoryProvider`), so that
fallbacks, retries, circuit breakers, budgets and deadlines run in milliseconds
without sockets, subprocesses or real sleeps:

    async with FakeClock() as clock:  # time jumps whenever every task is waiting on it
        app = create_app(config, providers={"up": MemoryProvider(cfg, handler)}, clock=clock)
        ...

Not imported by the gateway itself.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from types import TracebackType

from gateway.providers.memory import MemoryProvider, MemoryRequest, MemoryResponse, Reply

__all__ = ["FakeClock", "MemoryProvider", "MemoryRequest", "MemoryResponse", "Reply"]

# Loop iterations that count as "everything is waiting" where the loop's queue of
# ready callbacks cannot be seen (asyncio's can; uvloop's cannot).
_BLIND_SETTLE_ROUNDS = 50


class _FakeTimer:
    __slots__ = ("callback",)

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback: Callable[[], None] | None = callback

    def cancel(self) -> None:
        self.callback = None


class FakeClock:
    """A `gateway.clock.Clock` whose time moves only when it is told to: by `advance`,
    or, inside `async with clock:`, by jumping to the next timer or sleep whenever
    every task is waiting (trio's autojump, for asyncio). Everything under test must
    then wait on this clock or on other tasks, never on real time or I/O."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._timers: list[tuple[float, int, _FakeTimer]] = []
        self._order = itertools.count()
        self._driver: asyncio.Task[None] | None = None
        self._armed = asyncio.Event()

    def time(self) -> float:
        return self._now

    def call_at(self, when: float, callback: Callable[[], None]) -> _FakeTimer:
        timer = _FakeTimer(callback)
        heapq.heappush(self._timers, (when, next(self._order), timer))
        self._armed.set()
        return timer

    async def sleep(self, delay: float) -> None:
        if delay <= 0:
            await asyncio.sleep(0)
            return
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not woken.done():
                woken.set_result(None)

        timer = self.call_at(self._now + delay, wake)
        try:
            await woken
        finally:
            timer.cancel()

    async def advance(self, seconds: float) -> None:
        """Move time forward by `seconds`, firing what falls due on the way in order and
        letting the tasks it wakes run before the next."""
        if self._driver is not None:  # the time jumps anyway: wait like any other task
            await self.sleep(seconds)
            return
        target = self._now + seconds
        await settle()
        while (due := self._next_due()) is not None and due <= target:
            self._fire(due)
            await settle()
        self._now = max(self._now, target)
        await settle()

    async def __aenter__(self) -> FakeClock:
        self._driver = asyncio.get_running_loop().create_task(self._jump_when_idle())
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        driver, self._driver = self._driver, None
        if driver is not None:
            driver.cancel()
            try:
                await driver
            except asyncio.CancelledError:
                pass

    async def _jump_when_idle(self) -> None:
        while True:
            await settle()
            due = self._next_due()
            if due is None:
                self._armed.clear()
                await self._armed.wait()
                continue
            self._fire(due)

    def _next_due(self) -> float | None:
        timers = self._timers
        while timers and timers[0][2].callback is None:
            heapq.heappop(timers)
        return timers[0][0] if timers else None

    def _fire(self, when: float) -> None:
        """Set the time to `when` and run every live timer due by then."""
        self._now = max(self._now, when)
        timers = self._timers
        while timers and timers[0][0] <= self._now:
            callback = heapq.heappop(timers)[2].callback
            if callback is not None:
                callback()


async def settle() -> None:
    """Return once every other task is waiting (nothing left in the loop's ready queue).
    One settler at a time: two would keep each other busy."""
    loop = asyncio.get_running_loop()
    ready = getattr(loop, "_ready", None)  # asyncio's queue of callbacks to run next
    if ready is None:
        for _ in range(_BLIND_SETTLE_ROUNDS):
            await asyncio.sleep(0)
        return
    await asyncio.sleep(0)
    while ready:  # noqa: ASYNC110 - no event says "the loop has nothing else to run"
        await asyncio.sleep(0)

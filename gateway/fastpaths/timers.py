"""Coarse timers for the request path: read timeouts and attempt deadlines.

Every request arms two or three timers (the attempt's deadline, the upstream
read timeout, one per wait for a streamed chunk) and nearly always cancels them
unfired. `loop.call_at` costs that a timer handle each, which uvloop backs with
a libuv timer it allocates, starts and stops: about 2.5 µs a timer, most of a
request's timer cost. Here timers due in the same `RESOLUTION` slot share one
loop timer; arming one is a set insertion and cancelling it a removal. A slot
whose timers were all cancelled gives its loop timer back at once, so nothing
accumulates for timeouts minutes away; under load the requests that overlap in
a slot's 10 ms share its loop timer.

A timer fires at the end of its slot: never early, at most `RESOLUTION` late.
With the coarse timers switched off (`use_coarse_timers(False)`, chosen once at
start) every timer is the loop's own `call_at` instead.

`Deadline` is `asyncio.timeout_at` on these timers, with the same semantics:
when it expires the task is cancelled, and leaving the scope with that
cancellation (and no other cancel request) turns it into `TimeoutError`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.clock import Cancellable, Scheduler

RESOLUTION = 0.01  # seconds


class Timer:
    """One armed callback; `cancel()` disarms it (a no-op once it fired)."""

    def __init__(self, slot: _Slot, callback: Callable[[], None]) -> None:
        self._slot: _Slot | None = slot
        self._callback: Callable[[], None] | None = callback

    def cancel(self) -> None:
        slot = self._slot
        if slot is not None:
            self._slot = None
            self._callback = None
            slot.remove(self)

    def _take(self) -> Callable[[], None] | None:
        callback = self._callback
        self._slot = None
        self._callback = None
        return callback


class _Slot:
    """The timers due in one RESOLUTION slot, and the loop timer that fires them."""

    def __init__(self, owner: CoarseTimers, index: int) -> None:
        self.owner = owner
        self.index = index
        self.timers: set[Timer] = set()
        self.handle: asyncio.TimerHandle | None = None

    def remove(self, timer: Timer) -> None:
        timers = self.timers
        timers.discard(timer)
        if not timers:
            self.owner._release(self)


class CoarseTimers:
    """Timers of one event loop, grouped by `RESOLUTION` slot."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.time: Callable[[], float] = loop.time
        self._slots: dict[int, _Slot] = {}

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        """Run `callback` once the loop's clock passes `when` (at most RESOLUTION later)."""
        index = math.ceil(when / RESOLUTION)
        slot = self._slots.get(index)
        if slot is None:
            slot = self._slots[index] = _Slot(self, index)
            slot.handle = self.loop.call_at(index * RESOLUTION, self._fire, index)
        timer = Timer(slot, callback)
        slot.timers.add(timer)
        return timer

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return self.call_at(self.loop.time() + delay, callback)

    def _release(self, slot: _Slot) -> None:
        """A slot whose timers were all cancelled: its loop timer goes too (nothing is
        kept for the long timeouts that nearly never fire)."""
        if self._slots.get(slot.index) is slot:
            del self._slots[slot.index]
            if slot.handle is not None:
                slot.handle.cancel()

    def _fire(self, index: int) -> None:
        slot = self._slots.pop(index, None)
        if slot is None:
            return
        for timer in list(slot.timers):
            callback = timer._take()
            if callback is not None:
                try:
                    callback()
                except Exception as exc:  # as the loop reports a failing callback
                    self.loop.call_exception_handler({
                        "message": "Exception in a coarse timer callback", "exception": exc})


class _LoopTimer(Timer):
    """A Timer that is one of the loop's own timer handles."""

    def __init__(self, handle: asyncio.TimerHandle) -> None:
        self._slot = None
        self._callback = None
        self._handle = handle

    def cancel(self) -> None:
        self._handle.cancel()


class LoopTimers(CoarseTimers):
    """The fallback (GATEWAY_COARSE_TIMERS=false): each timer is the loop's own
    `call_at`, exact to the loop's clock, one loop timer per arm (what
    `asyncio.timeout_at` and aiohttp do)."""

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        return _LoopTimer(self.loop.call_at(when, callback))


_current: CoarseTimers | None = None
_coarse = True


def use_coarse_timers(enabled: bool) -> None:
    """Chosen once at start (the app's `FastPaths.coarse_timers`): coarse timers, or
    the loop's own for every loop from then on."""
    global _coarse, _current
    _coarse = enabled
    _current = None


def timers(loop: asyncio.AbstractEventLoop | None = None) -> CoarseTimers:
    """The timers of `loop` (default: the running loop)."""
    global _current
    loop = loop if loop is not None else asyncio.get_running_loop()
    current = _current
    if current is None or current.loop is not loop:
        current = _current = CoarseTimers(loop) if _coarse else LoopTimers(loop)
    return current


_ENTERED, _EXPIRING, _EXPIRED, _EXITED = 1, 2, 3, 4


class Deadline:
    """`asyncio.timeout_at(when)` on coarse timers (or on `clock`: a test's fake one),
    entered and left by hand:

        deadline = Deadline(when)  # in the task it limits
        try:
            ...
        except BaseException as exc:
            exc = deadline.leave(exc)  # TimeoutError if this deadline cancelled the task
            ...
        else:
            deadline.leave(None)
    """

    def __init__(self, when: float | None, clock: Scheduler | None = None) -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a Deadline needs a running task")
        self._task: asyncio.Task[object] = task
        self._clock: Scheduler = clock if clock is not None else timers(task.get_loop())
        self._cancelling = task.cancelling()
        self._state = _ENTERED
        self._timer: Cancellable | None = None
        self._soon: asyncio.Handle | None = None  # an expiry already due, queued on the loop
        self._when: float | None = None
        self.reschedule(when)

    def when(self) -> float | None:
        return self._when

    def reschedule(self, when: float | None) -> None:
        if self._state != _ENTERED:
            raise RuntimeError("cannot reschedule a deadline that expired or was left")
        self._when = when
        self._disarm()
        if when is not None:
            if when <= self._clock.time():
                self._soon = self._task.get_loop().call_soon(self._on_timeout)
            else:
                self._timer = self._clock.call_at(when, self._on_timeout)

    def expired(self) -> bool:
        return self._state in (_EXPIRING, _EXPIRED)

    def leave(self, exc: BaseException | None) -> BaseException | None:
        """Leave the scope with `exc` (None: normally); returns the exception to raise
        instead: TimeoutError when this deadline's cancellation is what ended it."""
        self._disarm()
        if self._state == _EXPIRING:
            self._state = _EXPIRED
            if self._task.uncancel() <= self._cancelling and isinstance(
                    exc, asyncio.CancelledError):
                timeout = TimeoutError()
                timeout.__cause__ = exc
                return timeout
        elif self._state == _ENTERED:
            self._state = _EXITED
        return exc

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._soon is not None:
            self._soon.cancel()
            self._soon = None

    def _on_timeout(self) -> None:
        self._timer = None
        self._soon = None
        self._task.cancel()
        self._state = _EXPIRING

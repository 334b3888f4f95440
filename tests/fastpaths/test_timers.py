"""Coarse timers and Deadline: never early, at most one slot late, one loop timer per
slot, cancelled timers gone, and asyncio.timeout_at's cancellation semantics."""

import asyncio
from functools import partial
from typing import Any

import pytest

from gateway.fastpaths import timers as t
from gateway.fastpaths.timers import RESOLUTION, CoarseTimers, Deadline


async def test_a_timer_fires_after_its_time_and_within_one_slot() -> None:
    """The callback runs once the loop clock passed `when`, at most RESOLUTION later."""
    loop = asyncio.get_running_loop()
    fired: list[float] = []
    when = loop.time() + 0.05
    t.timers().call_at(when, lambda: fired.append(loop.time()))
    await asyncio.sleep(0.05 + 3 * RESOLUTION)
    assert len(fired) == 1
    assert when <= fired[0] <= when + RESOLUTION + 0.01  # slack for a busy loop


async def test_a_cancelled_timer_never_fires_and_is_released() -> None:
    """cancel() disarms it and drops it from its slot (nothing kept for long timeouts)."""
    timers = CoarseTimers(asyncio.get_running_loop())
    fired: list[int] = []
    timer = timers.call_later(0.02, lambda: fired.append(1))
    timer.cancel()
    timer.cancel()  # twice is harmless
    assert timers._slots == {}  # its slot and loop timer are gone too
    await asyncio.sleep(0.02 + 3 * RESOLUTION)
    assert fired == []


async def test_timers_due_in_one_slot_share_one_loop_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many timers due within one slot arm the loop once; each still fires."""
    loop = asyncio.get_running_loop()
    armed: list[float] = []
    real_call_at = loop.call_at

    def counting_call_at(when: float, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
        armed.append(when)
        return real_call_at(when, *args, **kwargs)

    monkeypatch.setattr(loop, "call_at", counting_call_at)
    timers = CoarseTimers(loop)
    base = (int(loop.time() / RESOLUTION) + 5) * RESOLUTION  # the start of a slot, 5 slots on
    fired: list[int] = []
    for i in range(50):
        timers.call_at(base + RESOLUTION * 0.5 + i * 1e-5, partial(fired.append, i))
    assert len(armed) == 1
    await asyncio.sleep(base + 3 * RESOLUTION - loop.time())
    assert sorted(fired) == list(range(50))


async def test_a_failing_callback_is_reported_and_the_others_still_run() -> None:
    """An exception in one callback goes to the loop's exception handler."""
    loop = asyncio.get_running_loop()
    reported: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _, context: reported.append(context))
    try:
        timers = CoarseTimers(loop)
        fired: list[int] = []
        when = loop.time() + 0.01

        def boom() -> None:
            raise ValueError("boom")

        timers.call_at(when, boom)
        timers.call_at(when, lambda: fired.append(1))
        await asyncio.sleep(0.01 + 3 * RESOLUTION)
    finally:
        loop.set_exception_handler(None)
    assert fired == [1]
    assert isinstance(reported[0]["exception"], ValueError)


async def test_timers_follow_the_running_loop() -> None:
    """timers() belongs to one loop; another loop gets its own."""
    mine = t.timers()
    assert mine.loop is asyncio.get_running_loop() and t.timers() is mine
    other = asyncio.new_event_loop()
    try:
        assert t.timers(other).loop is other
    finally:
        other.close()


async def _limited(when_from_now: float, work: float) -> tuple[str, bool]:
    loop = asyncio.get_running_loop()
    deadline = Deadline(loop.time() + when_from_now)
    try:
        await asyncio.sleep(work)
    except BaseException as caught:
        exc = deadline.leave(caught)
        return type(exc).__name__, deadline.expired()
    deadline.leave(None)
    return "done", deadline.expired()


async def test_an_expired_deadline_becomes_timeout_error() -> None:
    """Work past the deadline is cancelled and reported as TimeoutError."""
    assert await _limited(0.02, 5) == ("TimeoutError", True)


async def test_work_within_the_deadline_is_untouched() -> None:
    """Leaving in time disarms the deadline: nothing is cancelled later."""
    assert await _limited(0.05, 0) == ("done", False)
    await asyncio.sleep(0.05 + 3 * RESOLUTION)  # the task would have been cancelled here


async def test_a_deadline_already_past_expires_at_once() -> None:
    """A deadline in the past cancels the work at its first wait."""
    assert await _limited(-1, 5) == ("TimeoutError", True)


async def test_an_outside_cancel_stays_a_cancel() -> None:
    """A cancel from elsewhere is not mistaken for the deadline's."""
    task = asyncio.ensure_future(_limited(5, 5))
    await asyncio.sleep(0.01)
    task.cancel()
    assert await task == ("CancelledError", False)


async def test_an_outside_cancel_during_expiry_stays_a_cancel() -> None:
    """Expired and also cancelled from outside: the outside cancel wins, as in asyncio."""
    loop = asyncio.get_running_loop()
    deadlines: list[Deadline] = []
    result: list[str] = []

    async def work() -> None:
        deadline = Deadline(loop.time() + 5)
        deadlines.append(deadline)
        try:
            await asyncio.sleep(5)
        except BaseException as caught:
            result.append(type(deadline.leave(caught)).__name__)
            raise

    task = asyncio.ensure_future(work())
    await asyncio.sleep(0)
    deadlines[0]._on_timeout()  # the deadline expires...
    task.cancel()  # ...and someone else cancels before the task ran again
    await asyncio.gather(task, return_exceptions=True)
    assert result == ["CancelledError"]
    assert task.cancelled()


async def test_reschedule_moves_the_deadline() -> None:
    """A rescheduled deadline fires at its new time, not the old one."""
    loop = asyncio.get_running_loop()
    deadline = Deadline(loop.time() + 0.02)
    deadline.reschedule(loop.time() + 5)
    await asyncio.sleep(0.02 + 3 * RESOLUTION)  # not cancelled at the old time
    deadline.reschedule(loop.time() - 1)  # already past: expires at the next wait
    with pytest.raises(asyncio.CancelledError) as caught:
        await asyncio.sleep(5)
    assert isinstance(deadline.leave(caught.value), TimeoutError)
    with pytest.raises(RuntimeError):
        deadline.reschedule(None)


def test_a_deadline_needs_a_running_task() -> None:
    """Outside a task there is nothing to cancel."""
    with pytest.raises(RuntimeError):
        Deadline(None)


async def test_a_slot_gives_back_its_loop_timer_once_emptied() -> None:
    """Timeouts far ahead, armed and cancelled by every request, keep nothing: the last
    cancel in a slot cancels its loop timer; a slot still holding a timer keeps it."""
    loop = asyncio.get_running_loop()
    timers = CoarseTimers(loop)
    far = loop.time() + 600
    kept = timers.call_at(far, lambda: None)
    for i in range(1000):
        timers.call_at(far + i * RESOLUTION, lambda: None).cancel()
    assert list(timers._slots) == [next(iter(timers._slots))]  # only the one still armed
    slot = timers._slots[next(iter(timers._slots))]
    assert slot.handle is not None and not slot.handle.cancelled()
    kept.cancel()
    assert timers._slots == {} and slot.handle.cancelled()


async def test_switched_off_every_timer_is_the_loops_own() -> None:
    """use_coarse_timers(False): timers are the loop's own handles, exact and cancellable,
    and no slot is kept; switching back gives coarse timers again."""
    loop = asyncio.get_running_loop()
    t.use_coarse_timers(False)
    try:
        timers = t.timers()
        assert type(timers) is t.LoopTimers
        fired: list[float] = []
        when = loop.time() + 0.02
        timers.call_at(when, lambda: fired.append(loop.time()))
        timers.call_later(0.02, lambda: fired.append(-1.0)).cancel()
        assert timers._slots == {}
        deadline = Deadline(loop.time() + 0.01)
        with pytest.raises(TimeoutError):
            try:
                await asyncio.sleep(1)
            except BaseException as exc:
                raised = deadline.leave(exc)
                assert raised is not None
                raise raised from None
        await asyncio.sleep(0.03)
        assert len(fired) == 1 and fired[0] >= when
    finally:
        t.use_coarse_timers(True)
    assert type(t.timers()) is CoarseTimers

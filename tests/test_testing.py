"""FakeClock: time moves only when told, or jumps to the next timer once every task waits;
timers fire in order, cancelled ones never, and a Deadline runs on it."""

from __future__ import annotations

import asyncio

import pytest

from gateway.fastpaths import Deadline
from gateway.testing import FakeClock


async def test_advance_fires_due_timers_in_order_and_no_others() -> None:
    """advance() runs what falls due on the way, in time order, and sets the time."""
    clock = FakeClock(start=100.0)
    fired: list[str] = []
    clock.call_at(103.0, lambda: fired.append("b"))
    clock.call_at(101.0, lambda: fired.append("a"))
    clock.call_at(110.0, lambda: fired.append("late"))
    cancelled = clock.call_at(102.0, lambda: fired.append("cancelled"))
    cancelled.cancel()
    await clock.advance(5)
    assert fired == ["a", "b"] and clock.time() == 105.0


async def test_sleepers_wake_in_order_at_their_times() -> None:
    """Tasks sleeping on the clock wake at their own times, each seeing the time it asked for."""
    clock = FakeClock(start=0.0)
    woke: list[tuple[str, float]] = []

    async def nap(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.time()))

    tasks = [asyncio.create_task(nap("long", 7)), asyncio.create_task(nap("short", 2))]
    await clock.advance(10)
    await asyncio.gather(*tasks)
    assert woke == [("short", 2.0), ("long", 7.0)]


async def test_autojump_skips_waiting_without_real_time() -> None:
    """Inside `async with`, an hour of sleeping passes at once, in order."""
    loop = asyncio.get_running_loop()
    real_start = loop.time()
    async with FakeClock(start=0.0) as clock:
        await clock.sleep(3600)
        results = await asyncio.gather(clock.sleep(5), asyncio.sleep(0))
        assert clock.time() == 3605.0 and results == [None, None]
    assert loop.time() - real_start < 1.0


async def test_a_deadline_on_the_fake_clock_cancels_at_its_time() -> None:
    """gateway.fastpaths.Deadline armed on a FakeClock turns into TimeoutError at its time."""
    async with FakeClock(start=0.0) as clock:
        deadline = Deadline(5.0, clock)
        with pytest.raises(TimeoutError):
            try:
                await clock.sleep(60)
            except BaseException as exc:
                raise deadline.leave(exc) or exc from None
        assert clock.time() == 5.0


async def test_a_deadline_left_in_time_never_fires() -> None:
    """Leaving before the deadline disarms it: later time travel cancels nothing."""
    async with FakeClock(start=0.0) as clock:
        deadline = Deadline(5.0, clock)
        await clock.sleep(1)
        assert deadline.leave(None) is None
        await clock.sleep(10)
        assert not deadline.expired()

"""LoopClock, the default clock: the running loop's own time and the coarse timers,
bound once; used before it is bound it says so."""

from __future__ import annotations

import asyncio

import pytest

from gateway.clock import LoopClock
from gateway.fastpaths import timers_of


async def test_binds_to_the_running_loop_at_construction() -> None:
    """Made inside a loop, its members are the loop's time and the coarse timers' call_at."""
    loop = asyncio.get_running_loop()
    clock = LoopClock.running()
    assert clock.loop is loop
    assert clock.time == loop.time and clock.call_at == timers_of(loop).call_at
    fired = asyncio.Event()
    clock.call_at(clock.time() + 0.01, fired.set)
    await asyncio.wait_for(fired.wait(), 1.0)
    await clock.sleep(0)


def test_unbound_clock_refuses_until_bound() -> None:
    """Unbound (create_app's, until the app starts), it fails loudly until bound."""
    clock = LoopClock()
    with pytest.raises(RuntimeError, match="before it was bound"):
        clock.time()
    loop = asyncio.new_event_loop()
    try:
        clock.bind(loop)
        assert clock.time() == pytest.approx(loop.time(), abs=0.1)
    finally:
        loop.close()

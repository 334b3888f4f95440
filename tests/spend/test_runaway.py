"""The runaway guard: rate spikes against a key's own baseline, loops of identical
bodies, and the alert/throttle/block actions, as a span event, a metric and a 429."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from openai import AsyncOpenAI

from gateway.spend.config import RunawayConfig
from gateway.spend.runaway import LOOP, RATE_SPIKE, RunawayGuard
from tests.fakes.openai_upstream import Behaviour, RunningUpstream
from tests.spend.helpers import MESSAGES, spend_config, spend_gateway

T0 = 1_800_000_000.0  # a minute boundary


def _steady(guard: RunawayGuard, per_minute: int, minutes: int, start: float = T0) -> float:
    """Send `per_minute` distinct requests a minute for `minutes` minutes; returns the time."""
    now = start
    for minute in range(minutes):
        for i in range(per_minute):
            now = start + minute * 60 + i * (60 / per_minute)
            assert guard.check("k", f"{minute}-{i}".encode(), now) is None
    return start + minutes * 60


def test_the_50k_to_400k_loop_is_caught_within_the_first_minute() -> None:
    """A key used at 35/min (50k a day) that jumps to 278/min (400k a day) is flagged as a
    rate spike in the first minute of the jump, with the default settings."""
    guard = RunawayGuard(RunawayConfig())
    now = _steady(guard, 35, 60)
    baseline = guard.baseline("k")
    assert baseline is not None and 30 < baseline < 40
    flagged = [guard.check("k", f"x{i}".encode(), now + i * 60 / 278) for i in range(278)]
    first = next(i for i, v in enumerate(flagged) if v is not None)
    assert first < 278
    verdict = flagged[first]
    assert verdict is not None and verdict.kind == RATE_SPIKE and verdict.new
    assert verdict.action == "alert" and not verdict.reject
    assert sum(v is not None and v.new for v in flagged) == 1  # one episode, one notice


def test_no_spike_before_warmup_and_below_the_floor() -> None:
    """A new key has no baseline yet, and a quiet key may burst up to the floor."""
    guard = RunawayGuard(RunawayConfig())
    assert all(guard.check("k", None, T0 + i * 0.1) is None for i in range(500))
    quiet = RunawayGuard(RunawayConfig())
    now = _steady(quiet, 1, 30)
    assert all(quiet.check("k", None, now + i * 0.5) is None for i in range(60))


def test_spike_minutes_do_not_raise_the_baseline() -> None:
    """A runaway minute is not learnt: the baseline stays where normal traffic put it."""
    guard = RunawayGuard(RunawayConfig())
    now = _steady(guard, 20, 30)
    before = guard.baseline("k")
    for i in range(500):
        guard.check("k", None, now + i * 0.1)
    guard.check("k", None, now + 61)  # closes the spiking minute
    after = guard.baseline("k")
    assert before is not None and after is not None and after <= before


def test_idle_minutes_lower_the_baseline() -> None:
    """Hours of silence count as zeros, so the baseline decays."""
    guard = RunawayGuard(RunawayConfig())
    now = _steady(guard, 50, 30)
    high = guard.baseline("k")
    guard.check("k", None, now + 3 * 3600)
    low = guard.baseline("k")
    assert high is not None and low is not None and low < high / 5


def test_identical_bodies_past_the_threshold_are_a_loop() -> None:
    """The 21st identical body within a minute is flagged; a different body is not."""
    guard = RunawayGuard(RunawayConfig(action="throttle"))
    results = [guard.check("k", b"same", T0 + i) for i in range(21)]
    assert results[:20] == [None] * 20
    verdict = results[20]
    assert verdict is not None and verdict.kind == LOOP and verdict.reject
    assert verdict.retry_after_s == 40
    assert guard.check("k", b"other", T0 + 21) is None
    assert guard.check("k", b"same", T0 + 61) is None  # a new window


def test_block_refuses_every_request_of_the_key_for_block_s() -> None:
    """With `block`, the key is refused entirely until block_s has passed."""
    guard = RunawayGuard(RunawayConfig(action="block", loop_threshold=2, block_s=300))
    for i in range(3):
        guard.check("k", b"same", T0 + i)
    verdict = guard.check("k", b"different", T0 + 10)
    assert verdict is not None and verdict.reject and verdict.retry_after_s == 292
    assert guard.check("other-key", b"same", T0 + 10) is None
    assert guard.check("k", b"different", T0 + 303) is None


@pytest.mark.integration
async def test_loop_is_throttled_with_429_a_span_event_and_a_metric(upstream: RunningUpstream,
                                                                   tmp_path: Path) -> None:
    """The 4th identical request of a key gets 429 runaway_detected with Retry-After; the
    server span has the event and gateway_runaway_events_total counts it."""
    upstream.state.behaviour = Behaviour(completion_tokens=3)
    extra = "spend:\n  runaway: {action: throttle, loop_threshold: 3}\n"
    async with spend_gateway(spend_config(upstream.base_url, tmp_path / "l.db", extra)) as (gw, _):
        async with AsyncOpenAI(base_url=gw.base_url, api_key="k", max_retries=0) as sdk:
            for _ in range(3):
                await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
            with pytest.raises(openai.RateLimitError) as info:
                await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
            await sdk.chat.completions.create(model="gpt-4.1",
                                              messages=[{"role": "user", "content": "new"}])
        assert info.value.code == "runaway_detected"
        assert int(info.value.response.headers["retry-after"]) > 0
        assert upstream.state.total_requests == 4
        events = [e for s in gw.telemetry.spans_named("POST") for e in s.events
                  if e.name == "gateway.runaway"]
        assert len(events) == 1
        assert dict(events[0].attributes or {})["gateway.runaway.kind"] == "loop"
        [point] = gw.telemetry.points("gateway.runaway.events")
        assert dict(point.attributes) == {"gateway.key.alias": "anonymous",
                                          "gateway.runaway.kind": "loop",
                                          "gateway.action": "throttle"}
        assert point.value == 1

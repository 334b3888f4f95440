"""Long streams: clock events through a proxy give per-event delays, and the table's
per-event arithmetic is right."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from bench import longstreams, procs, targets


def _row(target: str, p50: float, p99: float, per_event: bool) -> longstreams.Row:
    return longstreams.Row(target, "t", 10, 10_000, 2.0, p50, p99, per_event)


def test_whole_stream_latency_is_spread_over_its_events() -> None:
    """For wrk's whole-stream rows, added latency per event is the difference in stream
    latency over the events in a stream (1,000 here), in µs."""
    table = longstreams.table([_row("bare", 100.0, 200.0, False), _row("gateway", 150.0, 400.0, False)])
    assert "| gateway | 10 | 10,000 | 2.0 | 150.00 | 400.00 | +50.00 | +200.00 |" in table


def test_per_event_delays_are_compared_directly() -> None:
    """For the slow streams, the delays are per event already: added is their difference, in µs."""
    table = longstreams.table([_row("bare", 0.5, 2.0, True), _row("gateway", 0.75, 3.0, True)])
    assert "| gateway | 10 | 10,000 | 2.0 | 0.75 | 3.00 | +250.0 | +1000.0 |" in table


@pytest.mark.integration
def test_slow_clock_streams_give_one_delay_per_event(tmp_path: Path) -> None:
    """Against the real upstream process, every event of every slow stream arrives and has a
    delay between zero and the stream's length."""
    port = procs.free_port()
    argv = [sys.executable, "-m", "bench.upstream", "--port", str(port), "--api-key", "sk-bench"]
    child = procs.start("upstream", argv, url=f"http://127.0.0.1:{port}", log_dir=tmp_path,
                        cwd=targets.ROOT, env=targets.python_env())
    try:
        asyncio.run(procs.wait_ready(child, "/v1/models", headers={"Authorization": "Bearer sk-bench"}))
        subject = longstreams.Subject("direct", child, "sk-bench",
                                      {"Authorization": "Bearer sk-bench"})
        plan = longstreams.Plan(slow_streams=3, slow_events=4, slow_gap_ms=20)
        row = asyncio.run(longstreams.slow_streams(subject, plan))
    finally:
        child.stop()
    assert (row.streams, row.events, row.per_event) == (3, 12, True)
    assert 0 <= row.p50_ms <= row.p99_ms < 80

"""Long streams: what each relayed event costs a proxy, in CPU and in delay.

Two rows per target, both on the upstream's clock streams (bench/wire.py: chat chunks that
carry the upstream's CLOCK_MONOTONIC send time):

- **1,000-event streams**, written by the upstream as fast as it can, driven by wrk at
  `long_connections`: CPU per event is the target's CPU per stream over the events in it;
  added latency per event is the difference with the bare proxy's whole-stream latency at
  p50 and p99, over the events in a stream.
- **slow concurrent streams** (default 100 streams of 300 events 100 ms apart: 30 s each),
  read by a Python client that stamps each event on arrival: the event's delay is arrival
  minus the upstream's send time (one machine, one clock), p50 and p99 over every event of
  every stream; CPU per event is the target's CPU over the window over the events relayed.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson

from bench import load, procs


@dataclass(frozen=True)
class Plan:
    long_events: int = 1000
    long_connections: int = 32
    duration_s: float = 5.0
    slow_streams: int = 100
    slow_events: int = 300
    slow_gap_ms: int = 100


@dataclass(frozen=True)
class Subject:
    """A running target to measure: where it listens, its process, what to send."""

    name: str
    child: procs.Child
    key: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Row:
    target: str
    test: str  # what was measured, e.g. "1000-event streams, 32 conns"
    streams: int
    events: int  # events relayed in the window
    cpu_us_per_event: float
    p50_ms: float  # whole-stream latency (wrk) or per-event delay (slow streams)
    p99_ms: float
    per_event: bool  # True: p50/p99 are per-event delays; False: whole streams


def _body(model: str) -> dict[str, object]:
    return {"model": model, "stream": True, "messages": [{"role": "user", "content": "a long answer"}]}


async def fast_streams(subject: Subject, plan: Plan, work: Path) -> Row:
    model = f"bench-clock-{plan.long_events}x0"
    script = load.write_lua(work / f"{subject.name}-long.lua", _body(model), subject.key, subject.headers)
    url = subject.child.url + "/v1/chat/completions"
    await load.run_wrk(url, script, connections=plan.long_connections, duration_s=1)
    before = subject.child.cpu_seconds()
    result = await load.run_wrk(url, script, connections=plan.long_connections,
                                duration_s=plan.duration_s, timeout_s=30)
    cpu = subject.child.cpu_seconds() - before
    if result.errors or not result.requests:
        raise load.LoadError(f"{subject.name}: {result.errors} errors in {result.requests} long streams")
    events = result.requests * plan.long_events
    return Row(subject.name, f"{plan.long_events:,}-event streams, {plan.long_connections} conns",
               result.requests, events, cpu * 1e6 / events, result.p50_ms, result.p99_ms, False)


async def _one_slow(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str],
                    delays: list[int]) -> None:
    async with session.post(url, data=body, headers=headers) as response:
        if response.status != 200:
            raise load.LoadError(f"slow stream answered {response.status}: {await response.text()}")
        async for line in response.content:
            arrived = time.monotonic_ns()
            if not line.startswith(b"data: {"):
                continue
            delta = orjson.loads(line[6:])["choices"][0]["delta"]
            stamp = delta.get("content", "").strip()
            if stamp:
                delays.append(arrived - int(stamp))


async def slow_streams(subject: Subject, plan: Plan) -> Row:
    model = f"bench-clock-{plan.slow_events}x{plan.slow_gap_ms}"
    body = orjson.dumps(_body(model))
    url = subject.child.url + "/v1/chat/completions"
    delays: list[int] = []
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=plan.slow_events * plan.slow_gap_ms / 1000 + 60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        before = subject.child.cpu_seconds()
        await asyncio.gather(*(_one_slow(session, url, body, subject.headers, delays)
                               for _ in range(plan.slow_streams)))
        cpu = subject.child.cpu_seconds() - before
    expected = plan.slow_streams * plan.slow_events
    if len(delays) != expected:
        raise load.LoadError(f"{subject.name}: {len(delays)} of {expected} clock events arrived")
    delays.sort()
    seconds = plan.slow_events * plan.slow_gap_ms / 1000
    return Row(subject.name, f"{plan.slow_streams} concurrent {seconds:g} s streams of "
               f"{plan.slow_events} events", plan.slow_streams, len(delays), cpu * 1e6 / len(delays),
               _pct(delays, 50) / 1e6, _pct(delays, 99) / 1e6, True)


def _pct(ordered: list[int], q: float) -> float:
    return float(ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))])


async def measure(subjects: list[Subject], plan: Plan, work: Path) -> list[Row]:
    """Both rows for every subject; the slow streams one target at a time (they take their
    full length each)."""
    rows = [await fast_streams(s, plan, work) for s in subjects]
    for subject in subjects:
        print(f"  {subject.name}: {plan.slow_streams} slow streams ...", flush=True)
        rows.append(await slow_streams(subject, plan))
    return rows


def table(rows: list[Row], bare: str = "bare") -> str:
    """CPU per event, and the added latency per event against the bare proxy at p50 and p99."""
    lines = ["| target | streams | events relayed | CPU µs/event | p50 ms | p99 ms "
             "| added per event vs bare, p50 µs | added per event vs bare, p99 µs |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for test in dict.fromkeys(r.test for r in rows):
        group = [r for r in rows if r.test == test]
        floor = next((r for r in group if r.target == bare), None)
        per = "per-event delay" if group[0].per_event else "whole stream"
        lines.append(f"| **{test}** ({per}) | | | | | | | |")
        for r in group:
            if floor is None:
                added50 = added99 = "-"
            elif r.per_event:  # the delay of each event, directly
                added50 = f"{(r.p50_ms - floor.p50_ms) * 1000:+.1f}"
                added99 = f"{(r.p99_ms - floor.p99_ms) * 1000:+.1f}"
            else:  # a whole stream's added latency spread over its events
                events = r.events / r.streams
                added50 = f"{(r.p50_ms - floor.p50_ms) * 1000 / events:+.2f}"
                added99 = f"{(r.p99_ms - floor.p99_ms) * 1000 / events:+.2f}"
            lines.append(f"| {r.target} | {r.streams:,} | {r.events:,} | {r.cpu_us_per_event:.1f} "
                         f"| {r.p50_ms:.2f} | {r.p99_ms:.2f} | {added50} | {added99} |")
    return "\n".join(lines)

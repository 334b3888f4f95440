"""What each event of a stream costs the gateway, measured in-process, part by part.

The relay does three things per upstream event that a bare pass-through does not: the
SSE split (`gateway.sse`), the dialect's stream watcher (usage, finish reasons, what to
forward) and the chunk timing (the attempt's recorder into the per-chunk histogram).
Each is timed here on the benchmark's own streams (fetched once from `bench/upstream.py`,
so the bytes are what the gateway relays in `bench/run.py`), in the thread's CPU time,
the best of several rounds; `all` runs them together, as the relay does. Whatever
`gateway` is first on the path is measured, so put the compiled build there:

    python bench/run.py ...          # builds .build/bench-compiled
    PYTHONPATH=.build/bench-compiled python -m bench.events
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from bench import dialects, procs, targets

NAMES = ("chat", "responses", "gemini", "messages")


@dataclass(frozen=True)
class Costs:
    """µs of CPU per stream for each part; `events` in the stream."""

    dialect: str
    events: int
    split: float
    watcher: float
    timer: float
    total: float


class _NoTimer:
    def first_chunk(self) -> None:
        pass

    def chunk(self) -> None:
        pass


def _dialect(name: str) -> Any:
    if name == "chat":
        from gateway.dialects.openai_chat import OpenAIChat
        return OpenAIChat()
    if name == "responses":
        from gateway.dialects.openai_responses.responses import OpenAIResponses
        return OpenAIResponses()
    if name == "gemini":
        from gateway.dialects.gemini.generate import GeminiStream
        return GeminiStream()
    from gateway.dialects.anthropic.messages import AnthropicMessages
    return AnthropicMessages()


def _recorders() -> Callable[[], Any]:
    """A factory of attempt recorders on the hot metrics, as the gateway builds them."""
    from gateway.fastpaths import HotMetrics
    from gateway.telemetry.instruments import create_instruments
    from gateway.telemetry.recorder import AttemptRecorder
    from gateway.telemetry.setup import Telemetry

    hot = HotMetrics(InstrumentationScope("gateway", "bench"), Resource.create({}))
    reader = InMemoryMetricReader()
    hot.attach(reader)
    meter = MeterProvider(metric_readers=[reader]).get_meter("gateway")
    tracer = TracerProvider().get_tracer("gateway")
    telemetry = Telemetry(tracer=tracer, meter=meter, instruments=create_instruments(meter, hot))
    parent = trace.set_span_in_context(tracer.start_span("server"))
    return lambda: AttemptRecorder(telemetry, parent, operation="chat", provider_name="openai",
                                   model="m", server_address="127.0.0.1", server_port=1,
                                   request_attributes={}, extra_attributes={})


def cpu_us(run: Callable[[], object], rounds: int, repeat: int,
           clock: Callable[[], int] = time.thread_time_ns) -> float:
    """The CPU time of one `run` by `clock` (the thread's by default), in µs: the best of
    `rounds` rounds of `repeat`."""
    best = float("inf")
    for _ in range(rounds):
        started = clock()
        for _ in range(repeat):
            run()
        best = min(best, (clock() - started) / repeat / 1000)
    return best


def measure(name: str, stream: bytes, repeat: int = 1000, rounds: int = 5) -> Costs:
    """The parts' CPU per stream for one dialect's stream bytes (one upstream read)."""
    from gateway.dialects.base import ClientRequest
    from gateway.sse import SSESplitter

    dialect = _dialect(name)
    model = dialects.ALL[name].body("stream").get("model", "gemini-bench")
    request = ClientRequest(dialect, dict(dialects.ALL[name].body("stream")), model, stream=True)
    events = SSESplitter().feed(stream)
    recorder = _recorders()

    def watcher(timer: Any) -> Any:
        return dialect.watch(request, model, False, timer, False)

    def timed(chunks: int) -> None:
        one = recorder()
        one.first_chunk()
        for _ in range(chunks):
            one.chunk()
        one.finish(response_model=None, usage=None, cost=None)

    def relayed() -> None:
        one = recorder()
        watcher(one).feed(SSESplitter().feed(stream))
        one.finish(response_model=None, usage=None, cost=None)

    split = cpu_us(lambda: SSESplitter().feed(stream), rounds, repeat)
    watch = (cpu_us(lambda: watcher(_NoTimer()).feed(events), rounds, repeat)
             - cpu_us(lambda: watcher(_NoTimer()), rounds, repeat))
    bare_recorder = cpu_us(lambda: timed(0), rounds, repeat)
    timer = cpu_us(lambda: timed(len(events) - 1), rounds, repeat) - bare_recorder
    total = cpu_us(relayed, rounds, repeat) - bare_recorder
    return Costs(name, len(events), split, watch, timer, total)


def table(rows: list[Costs]) -> str:
    lines = ["| dialect | events | split µs (per event) | watcher µs (per event) "
             "| chunk timing µs (per event) | all three µs (per event) |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        n = max(1, r.events)
        lines.append(f"| {r.dialect} | {r.events} | {r.split:.1f} ({r.split / n:.2f}) "
                     f"| {r.watcher:.1f} ({r.watcher / n:.2f}) | {r.timer:.1f} ({r.timer / n:.2f}) "
                     f"| {r.total:.1f} ({r.total / n:.2f}) |")
    return "\n".join(lines)


async def capture(upstream_url: str, names: tuple[str, ...]) -> dict[str, bytes]:
    """Each dialect's benchmark stream as the upstream sends it."""
    streams: dict[str, bytes] = {}
    async with aiohttp.ClientSession() as session:
        for name in names:
            dialect = dialects.ALL[name]
            async with session.post(upstream_url + dialect.path("stream"),
                                    json=dialect.body("stream"),
                                    headers=dialect.request_headers(targets.UPSTREAM_KEY)) as answer:
                answer.raise_for_status()
                streams[name] = await answer.read()
    return streams


def fetch(names: tuple[str, ...], completion_tokens: int) -> dict[str, bytes]:
    """Start the benchmark's upstream, take each dialect's stream from it, stop it."""
    with tempfile.TemporaryDirectory() as work:
        upstream = targets.start_upstream(completion_tokens, "uvloop", Path(work))
        try:
            asyncio.run(procs.wait_ready(upstream, "/v1/models",
                                         headers={"Authorization": f"Bearer {targets.UPSTREAM_KEY}"}))
            return asyncio.run(capture(upstream.url, names))
        finally:
            upstream.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dialects", default=",".join(NAMES))
    p.add_argument("--repeat", type=int, default=1000, help="streams per round (best of 5 rounds)")
    p.add_argument("--completion-tokens", type=int, default=20)
    a = p.parse_args(argv)
    names = tuple(n for n in a.dialects.split(",") if n)
    import gateway.sse
    compiled = not str(gateway.sse.__file__).endswith(".py")
    print(f"gateway from {Path(gateway.sse.__file__).parent} ({'compiled' if compiled else 'source'})")
    streams = fetch(names, a.completion_tokens)
    print(table([measure(name, streams[name], a.repeat) for name in names]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

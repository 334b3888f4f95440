"""What a request's two spans cost the gateway, recorded and encoded in-process.

Each proxied call has a SERVER span (the lifecycle's) and a CLIENT span per attempt
(the attempt recorder's). Here both are made by that code, on the gateway's tracer and
processor set-up (`LiteTracer`, spans encoded for OTLP as they end and queued; the
exporter thread joins the batches but posts nothing), for a chat completion answered
as JSON and as a 22-event stream, in the process's CPU time (the exporter thread
included), the best of several rounds. The same requests with the sampler
`always_off` (what `OTEL_TRACES_SAMPLER=always_off` gives the gateway: ids and
contexts are still made, nothing is recorded) are the baseline; the difference is
what sampled spans cost. `encode` is the span encoder alone on the two finished
spans. Whatever `gateway` is first on the path is measured, so for the compiled build:

    scripts/build-compiled
    PYTHONPATH=.build/compiled python -m bench.spans
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Sampler
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from bench import events

STREAM_EVENTS = 22  # the benchmark upstream's chat stream: 20 content chunks, a finish, usage
ROUTE = "/v1/chat/completions"


@dataclass(frozen=True)
class Costs:
    """µs of CPU per request: spans sampled, spans not sampled, and the encoder alone."""

    mode: str
    sampled: float
    unsampled: float
    encode: float

    @property
    def spans(self) -> float:
        return self.sampled - self.unsampled


class _Sink(SpanExporter):
    """An exporter that takes spans encoded as they ended, as the OTLP/HTTP one does, and
    builds its request body (`encode_spans`) the same way, then sends nothing."""

    accepts_encoded = True  # see fastexport.PreEncodingSpanProcessor

    def __init__(self) -> None:
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        from gateway.fastpaths.fastexport import encode_spans

        encode_spans(spans)
        self.exported += len(spans)
        return SpanExportResult.SUCCESS


class _Sent:
    """Where the requests went, as the edge's request object says (`Lifecycle.open`)."""

    scheme = "http"
    host = "127.0.0.1:8080"


_SENT = _Sent()

_CONFIG = """
providers:
  up: {kind: openai, base_url: "http://127.0.0.1:9/v1", api_key: "${BENCH_KEY}",
       provider_name: openai}
models:
  gpt-4.1: {provider: up, price_per_mtok: {input: 2.0, output: 8.0}}
"""


class _Rig:
    """The gateway's telemetry with one sampler, and a request's spans made on it by the
    gateway's own code: the lifecycle's SERVER span, the attempt recorder's CLIENT span."""

    def __init__(self, sampler: Sampler) -> None:
        from gateway.config import load
        from gateway.dialects.openai_chat import OpenAIChat
        from gateway.fastpaths import LiteTracer, batch_processor, select
        from gateway.hooks import OpenAccess
        from gateway.path.lifecycle import Lifecycle
        from gateway.telemetry.setup import resource_from_env, setup_telemetry

        env = {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"}
        base = setup_telemetry(env)
        self.sink = _Sink()
        fast = select(os.environ)
        provider = TracerProvider(resource=resource_from_env(env), sampler=sampler)
        processor = batch_processor(self.sink, fast)(
            self.sink, max_queue_size=8192, max_export_batch_size=512,
            schedule_delay_millis=1000)
        provider.add_span_processor(processor)
        tracer: Any = provider.get_tracer("gateway", "bench")
        if fast.lite_spans:
            tracer = LiteTracer(provider, [processor], InstrumentationScope("gateway", "bench"))
        self.telemetry = replace(base, tracer=tracer, tracer_provider=provider)
        self.lifecycle = Lifecycle(load(_CONFIG, {"BENCH_KEY": "bench"}), self.telemetry,
                                   OpenAccess(), [])
        self.dialect = OpenAIChat()
        self.finished: list[ReadableSpan] = []

    def request(self, stream: bool) -> None:
        """One chat completion's spans, as the lifecycle and the attempt record them."""
        from gateway.call import AttemptResult, Principal
        from gateway.telemetry import names as n
        from gateway.telemetry.recorder import AttemptRecorder
        from gateway.usage import Usage

        life = self.lifecycle
        headers = {"host": "127.0.0.1:8080", "content-type": "application/json"}
        visit = life.open(headers, self.dialect, ROUTE, _SENT, ROUTE)
        visit.principal = Principal("bench", "bench")
        call = life.admit(visit, _BODY_STREAM if stream else _BODY, headers)
        request: dict[str, Any] = self.dialect.request_attributes(call.client, False)
        recorder = AttemptRecorder(
            self.telemetry, call.server_context, operation="chat", provider_name="openai",
            model="gpt-4.1", server_address="127.0.0.1", server_port=8000,
            request_attributes=request,
            extra_attributes={n.GATEWAY_KEY_ALIAS: "bench", n.GATEWAY_TEAM: "bench",
                              n.GATEWAY_MODEL_REQUESTED: "gpt-4.1",
                              n.GATEWAY_MODEL_SERVED: "gpt-4.1",
                              n.GATEWAY_REQUEST_ID: call.request_id, n.GATEWAY_ATTEMPT: 1})
        answer: dict[str, Any] = {
            n.GEN_AI_RESPONSE_ID: f"chatcmpl-{random.getrandbits(64):x}",
            n.OPENAI_RESPONSE_SYSTEM_FINGERPRINT: "fp_bench",
            n.GEN_AI_RESPONSE_FINISH_REASONS: ["stop"]}
        if stream:
            recorder.first_chunk()
            for _ in range(STREAM_EVENTS - 2):
                recorder.chunk()
            answer[n.GATEWAY_STREAM_END] = "done"
        usage, cost = Usage(input=12, output=20), Decimal("0.000184")
        recorder.finish(response_model="gpt-4.1-2025-04-14", usage=usage, cost=cost,
                        response_attributes=answer)
        call.served_model, call.served_provider = call.model, "openai"  # as the chain sets them
        call.attempts.append(AttemptResult(call.model, "openai", usage, cost, status=200,
                                           committed=True))
        life._end(visit, call, 200, None)
        if isinstance(visit.span, ReadableSpan) and len(self.finished) < 2:
            self.finished += [visit.span, recorder.span]  # type: ignore[list-item]


_BODY = b'{"model":"gpt-4.1","messages":[{"role":"user","content":"Say hello."}]}'
_BODY_STREAM = _BODY[:-1] + b',"stream":true}'


def _cpu_us(run: Callable[[], object], rounds: int, repeat: int) -> float:
    """The process's CPU time of one `run` (the exporter thread's included), in µs."""
    return events.cpu_us(run, rounds, repeat, clock=time.process_time_ns)


def measure(mode: str, repeat: int = 2000, rounds: int = 5) -> Costs:
    """A request's span costs for `mode` (`json` or `stream`)."""
    from gateway.fastpaths.fastexport import EncodedSpan

    stream = mode == "stream"
    on, off = _Rig(ALWAYS_ON), _Rig(ALWAYS_OFF)
    for rig in (on, off):
        for _ in range(200):  # warm the caches (encoded attributes, series)
            rig.request(stream)
    sampled = unsampled = float("inf")
    for _ in range(rounds):  # alternated, so that a busy moment of the machine hits both
        sampled = min(sampled, _cpu_us(lambda: on.request(stream), 1, repeat))
        unsampled = min(unsampled, _cpu_us(lambda: off.request(stream), 1, repeat))
    spans = on.finished

    def encode() -> None:
        for span in spans:
            EncodedSpan(span)

    encoded = _cpu_us(encode, rounds, repeat)
    for rig in (on, off):
        rig.telemetry.tracer_provider.shutdown()  # type: ignore[union-attr]
    return Costs(mode, sampled, unsampled, encoded)


def table(rows: list[Costs]) -> str:
    lines = ["| request | spans sampled µs | not sampled µs | the two spans µs | encoding them µs |",
             "|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.mode} | {r.sampled:.1f} | {r.unsampled:.1f} | {r.spans:.1f} "
                     f"| {r.encode:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--modes", default="json,stream")
    p.add_argument("--repeat", type=int, default=2000, help="requests per round (best of 5)")
    a = p.parse_args(argv)
    import gateway.fastpaths.litespan as lite
    compiled = not str(lite.__file__).endswith(".py")
    print(f"gateway from {Path(lite.__file__).parent.parent} "
          f"({'compiled' if compiled else 'source'})")
    print(table([measure(mode, a.repeat) for mode in a.modes.split(",") if mode]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Start-up checks that the SDK-dependent fast paths still fit the installed SDK.

Each builds a little telemetry with the SDK's public classes, runs it through
the fast path, and compares the result with what the SDK's own code gives
through its public API. They raise on any difference, or on any private
attribute the fast path needs and does not find; `switches.select` then falls
back to the SDK's classes for that fast path. Each takes a few milliseconds,
once per process.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision, ParentBased
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanKind, StatusCode

from gateway.fastpaths import fastexport, hotmetrics, litespan, spanids

_ATTRIBUTES: dict[str, Any] = {"gen_ai.request.model": "m", "server.port": 443, "ratio": 0.5, "flag": True,
               "list": ("a", "b")}


class _Collect(SpanProcessor):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)


def _spans(tracer: trace_api.Tracer, collected: _Collect) -> list[ReadableSpan]:
    """A SERVER span and its CLIENT child, with an event, a link and an error status."""
    server = tracer.start_span("server", kind=SpanKind.SERVER, attributes=_ATTRIBUTES)
    context = trace_api.set_span_in_context(server, Context())
    client = tracer.start_span("client", context=context, kind=SpanKind.CLIENT,
                               links=[trace_api.Link(server.get_span_context(), {"k": "v"})])
    client.set_attributes({"gen_ai.usage.input_tokens": 3, "error.type": "timeout"})
    client.add_event("evt", {"n": 1})
    client.set_status(StatusCode.ERROR, "boom")
    client.end()
    server.end()
    return collected.spans


def lite_spans() -> None:
    """A LiteSpan reads back through the SDK's ReadableSpan properties as it was written,
    and the sampler shortcuts read the SDK samplers' fields."""
    provider = TracerProvider(resource=Resource({"service.name": "check"}))
    collected = _Collect()
    scope = InstrumentationScope("check", "1")
    spans = _spans(litespan.LiteTracer(provider, [collected], scope), collected)
    _check([s.name for s in spans] == ["client", "server"], "span names")
    client, server = spans
    _check(dict(server.attributes or {}) == _ATTRIBUTES, "attributes")
    _check(client.parent is not None and client.parent.span_id == server.context.span_id, "parent")
    _check(client.kind is SpanKind.CLIENT and client.status.status_code is StatusCode.ERROR,
           "kind and status")
    _check([e.name for e in client.events] == ["evt"] and len(client.links) == 1, "events, links")
    _check(client.resource is provider.resource and client.instrumentation_scope is scope,
           "resource and scope")
    start, end = client.start_time, client.end_time
    _check(start is not None and end is not None and start <= end, "times")
    _check(client.to_json() != "", "to_json")
    decisions = litespan._static_decisions(ParentBased(ALWAYS_ON))
    _check(decisions == (Decision.RECORD_AND_SAMPLE, Decision.RECORD_AND_SAMPLE, Decision.DROP),
           "sampler fields")
    span = litespan.LiteTracer(provider, [], scope).start_span("c")
    context = litespan.context_with(span, None)
    _check(trace_api.get_current_span(context) is span, "span in context")
    _check(spanids.TUPLE_LAYOUT, "SpanContext's tuple layout")
    own = span.get_span_context()
    dropped = litespan._non_recording(own)
    _check(dropped.get_span_context() is own and not dropped.is_recording()
           and litespan.span_context_in(litespan.context_with(dropped, None)) is own,
           "non-recording span")


def hot_metrics() -> None:
    """Hot instruments reach a reader's collection, with the SDK's point layout."""
    reader = InMemoryMetricReader()
    resource = Resource({"service.name": "check"})
    hot = hotmetrics.HotMetrics(InstrumentationScope("check"), resource)
    hot.attach(reader)
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    histogram = hot.histogram("h", "s", "", [1.0, 2.0])
    counter = hot.counter("c", "1", "")
    histogram.record(1.5, {"a": "b"})
    counter.add(2, {"a": "b"})
    provider.get_meter("check").create_counter("sdk").add(1)  # the gateway always has some
    data = reader.get_metrics_data()
    provider.shutdown()
    _check(data is not None, "no metrics data")
    assert data is not None
    metrics = {m.name: m for rm in data.resource_metrics for sm in rm.scope_metrics
               for m in sm.metrics}
    _check({"h", "c", "sdk"} <= set(metrics), "hot and SDK metrics side by side")
    point: Any = metrics["h"].data.data_points[0]
    _check(list(point.bucket_counts) == [0, 1, 0] and point.sum == 1.5, "histogram point")
    total: Any = metrics["c"].data.data_points[0]
    _check(total.value == 2, "counter point")


class _Keep(SpanExporter):
    accepts_encoded = True

    def __init__(self) -> None:
        self.batches: list[bytes] = []

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        self.batches.append(fastexport.encode_spans(spans))
        return SpanExportResult.SUCCESS


def otlp_export() -> None:
    """SDK spans encode to the same message as the SDK's OTLP encoder builds, also when
    queued already encoded by the pre-encoding processor."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    provider = TracerProvider(resource=Resource({"service.name": "check"}))
    collected = _Collect()
    provider.add_span_processor(collected)
    spans = _spans(provider.get_tracer("check", "1"), collected)
    ours = ExportTraceServiceRequest.FromString(fastexport.encode_spans(spans))
    _check(ours == encode_spans(spans), "encoded spans differ from the SDK's")
    exporter = _Keep()
    processor = fastexport.PreEncodingSpanProcessor(exporter, schedule_delay_millis=60_000)
    try:
        for span in spans:
            processor.on_end(span)
        processor.force_flush()
    finally:
        processor.shutdown()  # type: ignore[no-untyped-call]
    _check(exporter.batches == [fastexport.encode_spans(spans)], "pre-encoded batch differs")

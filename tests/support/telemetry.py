"""Telemetry built on in-memory exporters, so tests read spans and metric points."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, Metric
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from prometheus_client import CollectorRegistry

from gateway.fastpaths import HotMetrics, LiteTracer
from gateway.telemetry.content import ContentMode
from gateway.telemetry.events import ContentEvents
from gateway.telemetry.instruments import create_instruments
from gateway.telemetry.logs import OtelLogs
from gateway.telemetry.semconv import Semconv
from gateway.telemetry.setup import Telemetry


@dataclass
class TestTelemetry:
    telemetry: Telemetry
    spans: InMemorySpanExporter
    reader: InMemoryMetricReader
    log_records: InMemoryLogRecordExporter | None = None  # with `logs=True`

    def logs(self) -> list[ReadableLogRecord]:
        """The log records (and events) exported through the logs SDK so far."""
        assert self.telemetry.logs is not None and self.log_records is not None
        self.telemetry.logs.provider.force_flush(5000)
        return list(self.log_records.get_finished_logs())

    def close(self) -> None:
        """Detach the logs SDK's handler from the root logger (with `logs=True`)."""
        if self.telemetry.logs is not None:
            self.telemetry.logs.shutdown(5000)

    def finished_spans(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def spans_named(self, prefix: str) -> list[ReadableSpan]:
        return [s for s in self.finished_spans() if s.name.startswith(prefix)]

    def metrics(self) -> dict[str, Metric]:
        data = self.reader.get_metrics_data()
        found: dict[str, Metric] = {}
        if data is None:
            return found
        for resource_metrics in data.resource_metrics:
            for scope in resource_metrics.scope_metrics:
                for metric in scope.metrics:
                    found[metric.name] = metric
        return found

    def points(self, name: str) -> list[Any]:
        metric = self.metrics().get(name)
        return list(metric.data.data_points) if metric is not None else []


def make_test_telemetry(content: ContentMode = ContentMode.NO_CONTENT,
                        semconv: Semconv | None = None, hot: bool = True,
                        logs: bool = False) -> TestTelemetry:
    """Telemetry on in-memory readers (and a Prometheus reader), the hot metrics on unless
    `hot` is False (then the SDK's own instruments), in the given conventions' generation;
    with `logs`, the logs SDK on an in-memory exporter too (call `close` after)."""
    resource = Resource.create({"service.name": "llm-gateway-test"})
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider(resource=resource)
    reader = InMemoryMetricReader()
    registry = CollectorRegistry(auto_describe=True)
    readers = [reader, PrometheusMetricReader(registry=registry)]
    hot_metrics = HotMetrics(InstrumentationScope("gateway"), resource) if hot else None
    for each in readers:  # as setup_telemetry does
        if hot_metrics is not None:
            hot_metrics.attach(each)
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    meter = meter_provider.get_meter("gateway")
    processor = SimpleSpanProcessor(spans)
    tracer_provider.add_span_processor(processor)
    log_records = InMemoryLogRecordExporter() if logs else None
    otel_logs = OtelLogs([log_records], resource) if log_records is not None else None
    telemetry = Telemetry(
        logs=otel_logs,
        events=ContentEvents(otel_logs.provider if otel_logs is not None else None),
        tracer=LiteTracer(tracer_provider, [processor], InstrumentationScope("gateway")),
        meter=meter,
        instruments=create_instruments(meter, hot_metrics, semconv),
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        registry=registry,
        content=content,
    )
    return TestTelemetry(telemetry, spans, reader, log_records)


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def iter_points(tt: TestTelemetry, name: str) -> Iterator[tuple[dict[str, Any], Any]]:
    for point in tt.points(name):
        yield dict(point.attributes), point

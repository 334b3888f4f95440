"""Hot-path instruments give readers the same data as the SDK's own instruments."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from prometheus_client import CollectorRegistry, generate_latest

from gateway.fastpaths import hotmetrics
from gateway.fastpaths.hotmetrics import HotMetrics
from gateway.fastpaths.switches import select
from gateway.telemetry.instruments import Instruments, create_instruments

RESOURCE = Resource({"service.name": "hot-test", "service.instance.id": "i-1"})
A = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4.1", "server.port": 443}
B = {"gen_ai.operation.name": "embeddings", "gen_ai.request.model": "e", "error.type": "504"}


def _setup(hot: bool) -> tuple[Instruments, InMemoryMetricReader, CollectorRegistry]:
    memory = InMemoryMetricReader()
    registry = CollectorRegistry(auto_describe=True)
    readers: list[MetricReader] = [memory, PrometheusMetricReader(registry=registry)]
    metrics = None
    if hot:
        metrics = HotMetrics(InstrumentationScope("gateway", "1.0"), RESOURCE)
        for reader in readers:
            metrics.attach(reader)
    provider = MeterProvider(resource=RESOURCE, metric_readers=readers)
    return create_instruments(provider.get_meter("gateway", "1.0"), metrics), memory, registry


def _record(instruments: Instruments, context: Any) -> None:
    for value in (0.005, 0.01, 0.011, 3.0, 100.0, 0.0, -1.0, float("nan")):
        instruments.operation_duration.record(value, A, context=context)
    instruments.operation_duration.record(0.3, B)
    for tokens in (1, 4, 5, 70_000_000):
        instruments.token_usage.record(tokens, {**A, "gen_ai.token.type": "input"}, context=context)
    instruments.overhead.record(0.0002, {"gen_ai.operation.name": "chat"})
    instruments.cost.add(0.25, A, context=context)
    instruments.cost.add(0.5, dict(reversed(list(A.items()))), context=context)  # same series
    instruments.cost.add(-1.0, A)
    instruments.tallies.requests.add(("chat", "gpt-4.1", "openai", 200, None, "k", "t"))
    # By key (the request path's way): the same series as the attributes the key stands for.
    for _ in range(2):
        hotmetrics.record_keyed(instruments.operation_duration, 0.02, ("a",), _by_key, context)
        hotmetrics.record_keyed(instruments.token_usage, 9, ("a", "output"), _by_key, context)
        hotmetrics.add_keyed(instruments.cost, 0.125, ("a",), _by_key, context)
    hotmetrics.record_keyed(instruments.operation_duration, -1.0, ("a",), _by_key)
    hotmetrics.add_keyed(instruments.cost, float("nan"), ("a",), _by_key)


def _by_key(key: tuple[Any, ...]) -> dict[str, Any]:
    return dict(A) if len(key) == 1 else {**A, "gen_ai.token.type": key[1]}


def _points(reader: InMemoryMetricReader) -> dict[str, list[dict[str, Any]]]:
    data = reader.get_metrics_data()
    assert data is not None
    out: dict[str, list[dict[str, Any]]] = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            assert sm.scope.name == "gateway"
            for metric in sm.metrics:
                rows = []
                for point in metric.data.data_points:
                    row = {k: v for k, v in vars(point).items()
                           if k not in ("start_time_unix_nano", "time_unix_nano", "exemplars")}
                    row["attributes"] = dict(point.attributes)
                    # which measurement a counter's one-exemplar reservoir keeps is random
                    # in the SDK (the latest here), so compare the span, not the value
                    row["exemplar_spans"] = sorted((e.trace_id, e.span_id) for e in point.exemplars)
                    rows.append(row)
                out[f"{metric.name}|{metric.unit}|{metric.description}"] = sorted(rows, key=repr)
    return out


def test_same_points_and_prometheus_text_as_the_sdk() -> None:
    """Counts, sums, buckets, min/max, attributes, exemplars and /metrics text all match."""
    tracer = TracerProvider().get_tracer("t")
    span = tracer.start_span("chat")
    context = trace.set_span_in_context(span)
    sdk, sdk_memory, sdk_registry = _setup(hot=False)
    hot, hot_memory, hot_registry = _setup(hot=True)
    _record(sdk, context)
    _record(hot, context)
    assert _points(hot_memory) == _points(sdk_memory)
    lines = [sorted(generate_latest(r).decode().splitlines()) for r in (hot_registry, sdk_registry)]
    assert lines[0] == lines[1]  # the same text, metric families in another order


def test_each_reader_gets_exemplars_recorded_since_its_last_collection() -> None:
    """A collection by one reader does not take the exemplars another has not seen yet."""
    context = trace.set_span_in_context(TracerProvider().get_tracer("t").start_span("s"))
    instruments, memory, registry = _setup(hot=True)
    instruments.tallies.requests.add(("chat", "gpt-4.1", "openai", 200, None, "k", "t"))
    instruments.operation_duration.record(0.5, A, context=context)
    generate_latest(registry)  # the Prometheus reader collects first
    first = _points(memory)[f"{hot_name()}|s|GenAI operation duration."][0]
    assert len(first["exemplar_spans"]) == 1
    again = _points(memory)[f"{hot_name()}|s|GenAI operation duration."][0]
    assert again["exemplar_spans"] == [] and again["count"] == 1


def hot_name() -> str:
    return "gen_ai.client.operation.duration"


def test_series_appear_even_without_any_sdk_data() -> None:
    """With no SDK point collected, the hot series still reach the reader in their scope."""
    metrics = HotMetrics(InstrumentationScope("gateway", "1.0"), RESOURCE)
    histogram = metrics.histogram("h", "s", "d", (1, 2))
    histogram.record(1.5, {"k": "v"})
    merged = metrics.merge(None, metrics.collect(0))
    (rm,) = merged.resource_metrics
    assert rm.resource is RESOURCE
    (point,) = rm.scope_metrics[0].metrics[0].data.data_points
    assert list(point.bucket_counts) == [0, 1, 0]


def test_enabled_only_for_cumulative_explicit_buckets() -> None:
    """Delta temporality, exponential histograms or GATEWAY_FAST_METRICS=false keep the SDK's."""
    assert select({}).hot_metrics
    assert not select({"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "delta"}).hot_metrics
    assert not select(
        {"OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION": "base2_exponential_bucket_histogram"}
    ).hot_metrics
    assert not select({"GATEWAY_FAST_METRICS": "false"}).hot_metrics
    assert hotmetrics.exemplar_filter({"OTEL_METRICS_EXEMPLAR_FILTER": "always_off"}) == "always_off"
    assert hotmetrics.exemplar_filter({"OTEL_METRICS_EXEMPLAR_FILTER": "bogus"}) == "trace_based"


def test_record_many_records_like_record() -> None:
    """Amounts recorded together get the same counts, sums and bucket exemplars (span ids,
    the bucket's last amount) as record() gives one by one."""
    context = trace.set_span_in_context(TracerProvider().get_tracer("t").start_span("s"))
    metrics = HotMetrics(InstrumentationScope("gateway", "1.0"), RESOURCE)
    plain = metrics.histogram("plain", "s", "d", (0.01, 0.1))
    many = metrics.histogram("many", "s", "d", (0.01, 0.1))
    values = (0.005, 0.05, 0.5, 0.07, -1.0)
    for value in values:
        plain.record(value, A, context=context)
    hotmetrics.record_many(many, values, A, context)
    hotmetrics.record_many(many, (), A, context)
    points = {m.name: m.data.data_points[0] for m in metrics.collect(0)}
    ours, theirs = points["many"], points["plain"]
    assert (ours.count, ours.sum, ours.bucket_counts, ours.min, ours.max) == \
        (theirs.count, theirs.sum, theirs.bucket_counts, theirs.min, theirs.max)
    assert [(e.value, e.span_id, e.trace_id) for e in ours.exemplars] == \
        [(e.value, e.span_id, e.trace_id) for e in theirs.exemplars]


def _sdk_recorder() -> tuple[Any, InMemoryMetricReader]:
    """An attempt's recorder on the SDK's histograms (GATEWAY_FAST_METRICS=false), and the
    reader of its metrics."""
    from gateway.telemetry.recorder import AttemptRecorder
    from gateway.telemetry.setup import Telemetry

    instruments, memory, _ = _setup(hot=False)
    telemetry = Telemetry(tracer=TracerProvider().get_tracer("gateway"),
                          meter=None,  # type: ignore[arg-type]
                          instruments=instruments)
    recorder = AttemptRecorder(telemetry, trace.set_span_in_context(trace.INVALID_SPAN),
                               operation="chat", provider_name="openai", model="m",
                               server_address=None, server_port=None, request_attributes={},
                               extra_attributes={})
    return recorder, memory


CHUNK_METRIC = ("gen_ai.client.operation.time_per_output_chunk|s|"
                "Time between consecutive chunks after the first in a streaming operation.")


def test_long_stream_records_chunk_timings_in_batches() -> None:
    """A stream's chunk timings reach the histogram every CHUNK_BATCH chunks while it runs,
    and the rest when it finishes."""
    from gateway.telemetry.recorder import CHUNK_BATCH

    recorder, memory = _sdk_recorder()
    recorder.first_chunk()
    for _ in range(CHUNK_BATCH + 3):
        recorder.chunk()
    assert _points(memory)[CHUNK_METRIC][0]["count"] == CHUNK_BATCH
    recorder.finish(response_model="m", usage=None, cost=None)
    assert _points(memory)[CHUNK_METRIC][0]["count"] == CHUNK_BATCH + 3


def test_recorder_chunk_timings_with_sdk_instruments() -> None:
    """With the SDK's histograms (GATEWAY_FAST_METRICS=false) chunk timings still record."""
    recorder, memory = _sdk_recorder()
    recorder.first_chunk()
    recorder.chunk()
    recorder.chunk()
    recorder.finish(response_model="m", usage=None, cost=None)
    assert _points(memory)[CHUNK_METRIC][0]["count"] == 2


def test_interleaved_contexts_leave_each_its_own_exemplar() -> None:
    """Measurements under different spans' contexts, interleaved as concurrent requests do
    (the span-id lookup is remembered per context), each carry their own span's ids."""
    tracer = TracerProvider().get_tracer("t")
    spans = [tracer.start_span(f"s{i}") for i in range(3)]
    contexts = [trace.set_span_in_context(span) for span in spans]
    unsampled = trace.set_span_in_context(trace.NonRecordingSpan(trace.SpanContext(
        1, 2, is_remote=False, trace_flags=trace.TraceFlags(0))))
    histogram = hotmetrics.HotHistogram("h", "s", "", [1.0, 2.0, 3.0, 4.0])
    order = [0, 0, 1, 2, 1, 0]
    for bucket, index in enumerate(order):
        histogram.record(bucket + 0.5, A, context=contexts[index])
    histogram.record(4.5, A, context=unsampled)
    (series,) = histogram._series.values()
    ids = [(e[2], e[3]) if e else None for e in series.exemplars]
    expected = [(spans[i].get_span_context().span_id, spans[i].get_span_context().trace_id)
                for i in order[:4]]
    assert ids[:4] == expected  # buckets 0-3 got one measurement each, in order
    assert ids[4] == (spans[0].get_span_context().span_id, spans[0].get_span_context().trace_id)
    # the last bucket got 4.5 (span 1), 5.5 (span 0), then 4.5 unsampled, which leaves none
    assert series.counts[4] == 3


def test_keyed_index_starts_over_without_losing_series() -> None:
    """Past its bound the key index is cleared; measurements still land in their series."""
    keys = hotmetrics._MAX_KEYED + 10
    metrics = HotMetrics(InstrumentationScope("gateway", "1.0"), RESOURCE)
    histogram = metrics.histogram("h", "s", "d", (0.01, 0.1))
    counter = metrics.counter("c", "1", "d")
    for _ in range(2):
        for i in range(keys):
            histogram.record_keyed(0.05, (i,), lambda key: {"i": key[0]})
            counter.add_keyed(1, (i,), lambda key: {"i": key[0]})
    assert len(histogram._keyed) <= hotmetrics._MAX_KEYED
    assert len(counter._keyed) <= hotmetrics._MAX_KEYED
    points = {m.name: m.data.data_points for m in metrics.collect(0)}
    assert sorted((dict(p.attributes)["i"], p.count) for p in points["h"]) == \
        [(i, 2) for i in range(keys)]
    assert sorted((dict(p.attributes)["i"], p.value) for p in points["c"]) == \
        [(i, 2) for i in range(keys)]

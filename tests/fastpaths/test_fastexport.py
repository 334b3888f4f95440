"""The hand-written OTLP span encoder and its HTTP/gRPC exporters."""

from __future__ import annotations

import asyncio
import gzip
import math
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from aiohttp import web
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)

from gateway.fastpaths import fastexport
from gateway.fastpaths.litespan import AttributeBlock, LiteTracer, start_span
from gateway.telemetry.setup import setup_telemetry
from tests.support.otlp_receiver import grpc_receiver

EVERY_TYPE: dict[str, Any] = {
    "str": "gpt-4.1",
    "str.empty": "",
    "str.unicode": "héllo wörld ✓ 模型",
    "str.long": "x" * 300,
    "bool.true": True,
    "bool.false": False,
    "int.zero": 0,
    "int.small": 7,
    "int.big": 2**62,
    "int.negative": -12345,
    "int.min": -(2**63),
    "float": 0.125,
    "float.zero": 0.0,
    "float.negative": -3.5e-9,
    "seq.str": ("stop", "length"),
    "seq.int": (1, -2, 3),
    "seq.float": (0.5, 1.5),
    "seq.bool": (True, False),
    "seq.empty": (),
}


def _spans() -> list[ReadableSpan]:
    """Spans from two resources and three scopes with every kind of field the SDK sets."""
    memory = InMemorySpanExporter()
    spans: list[ReadableSpan] = []
    for index, resource in enumerate([
        Resource({"service.name": "llm-gateway", "service.instance.id": "a"}),
        Resource({"service.name": "other", "n": 3}, schema_url="https://opentelemetry.io/schemas/1.30.0"),
    ]):
        provider = TracerProvider(resource=resource,
                                  span_limits=SpanLimits(max_attributes=40, max_events=2, max_links=1))
        provider.add_span_processor(SimpleSpanProcessor(memory))
        tracers = [provider.get_tracer("gateway", "0.1.0"),
                   provider.get_tracer("other.scope", None, "https://example.com/schema",
                                       attributes={"scope.attr": "x", "scope.n": 2})]
        state = TraceState([("vendor", "v1"), ("b", "2")])
        remote = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, is_remote=True,
                             trace_flags=TraceFlags(1), trace_state=state)
        local_link = SpanContext(0x1234, 0x5678, is_remote=False)
        for tracer in tracers:
            server = tracer.start_span("POST /v1/chat/completions", kind=SpanKind.SERVER,
                                       context=set_span_in_context(NonRecordingSpan(remote)),
                                       attributes=dict(EVERY_TYPE))
            client = tracer.start_span(
                f"chat {index}", kind=SpanKind.CLIENT, context=set_span_in_context(server),
                links=[Link(remote, {"link.attr": 1, "link.seq": ("a",)}), Link(local_link)],
                attributes={"gen_ai.request.model": "gpt-4.1", "gateway.attempt": 1})
            client.add_event("gen_ai.details", {"gen_ai.output.messages": '[{"role":"assistant"}]',
                                                "n": 2}, timestamp=1_700_000_000_000_000_001)
            client.add_event("second")
            client.add_event("dropped: over the limit of two")
            client.set_status(Status(StatusCode.ERROR, "upstream answered 503"))
            client.end()
            for kind in (SpanKind.INTERNAL, SpanKind.PRODUCER, SpanKind.CONSUMER):
                tracer.start_span(f"k{kind.value}", kind=kind).end()
            server.set_status(Status(StatusCode.OK))
            server.end()
            many = tracer.start_span("many", attributes={f"a{i}": i for i in range(50)})
            many.end()
    spans.extend(memory.get_finished_spans())
    return spans


def _decode(data: bytes) -> ExportTraceServiceRequest:
    decoded: ExportTraceServiceRequest = ExportTraceServiceRequest.FromString(data)
    return decoded


def test_bytes_decode_to_the_sdk_encoding() -> None:
    """Every field the SDK encodes (attributes of each type, events, links, status,
    parents, flags, trace state, dropped counts, resources, scopes) decodes identically."""
    spans = _spans()
    ours = _decode(fastexport.encode_spans(spans))
    assert ours == sdk_encode(spans)
    assert len(ours.resource_spans) == 2
    assert [len(rs.scope_spans) for rs in ours.resource_spans] == [2, 2]
    client = next(s for s in ours.resource_spans[0].scope_spans[0].spans if s.name == "chat 0")
    assert client.dropped_events_count == 1 and client.dropped_links_count == 1
    assert client.flags == 0x100  # local parent
    many = next(s for s in ours.resource_spans[0].scope_spans[0].spans if s.name == "many")
    assert many.dropped_attributes_count == 10


def test_second_encoding_from_caches_is_identical() -> None:
    """Cached attribute, resource and scope encodings give the same bytes as the first pass."""
    spans = _spans()
    first = fastexport.encode_spans(spans)
    assert fastexport.encode_spans(spans, pause_every=3) == first


def _raw_span(attributes: dict[str, Any], events: Sequence[Event] = ()) -> ReadableSpan:
    context = SpanContext(1, 2, is_remote=False)
    return ReadableSpan("raw", context, attributes=attributes, events=events,
                        resource=Resource({}), instrumentation_scope=InstrumentationScope("s"),
                        start_time=1, end_time=2)


def test_values_outside_sdk_cleaning_match_the_sdk() -> None:
    """bytes, mappings, None (alone and in a sequence) and True/1 in the same key
    encode as the SDK would; an out-of-range int is dropped by both."""
    spans = [
        _raw_span({"b": b"\x00\xff", "m": {"k": "v", "n": {"deep": 1}}, "none": None,
                   "seq.none": ("a", None), "flag": True, "too.big": 2**64}),
        _raw_span({"flag": 1, "z": -0.0}, [Event("e", {"flag": 1.0}, timestamp=5)]),
        _raw_span({"flag": 1.0, "z": 0.0}),
    ]
    ours = _decode(fastexport.encode_spans(spans))
    assert ours == sdk_encode(spans)
    values = {kv.key: kv.value for kv in ours.resource_spans[0].scope_spans[0].spans[0].attributes}
    assert "too.big" not in values and values["flag"].bool_value is True


def test_zero_limits_and_lite_spans_match_the_sdk() -> None:
    """Spans whose limits dropped every attribute, event and link (only the counts are
    left), and the gateway's LiteSpans, encoded from their fields, match the SDK's encoding."""
    memory = InMemorySpanExporter()
    remote = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, is_remote=True,
                         trace_flags=TraceFlags(1), trace_state=TraceState([("vendor", "v1")]))
    bare = TracerProvider(span_limits=SpanLimits(max_attributes=0, max_events=0, max_links=0))
    bare.add_span_processor(SimpleSpanProcessor(memory))
    dropped = bare.get_tracer("t").start_span("nothing kept", attributes={"a": 1}, links=[Link(remote)])
    dropped.add_event("e")
    dropped.end()
    provider = TracerProvider(resource=Resource({"service.name": "llm-gateway"}))
    tracer = LiteTracer(provider, [SimpleSpanProcessor(memory)], InstrumentationScope("gateway", "1"))
    server = tracer.start_span("POST /v1/chat/completions", kind=SpanKind.SERVER,
                               context=set_span_in_context(NonRecordingSpan(remote)),
                               attributes=dict(EVERY_TYPE))
    client = tracer.start_span("chat gpt-4.1", kind=SpanKind.CLIENT,
                               context=set_span_in_context(server), links=[Link(remote, {"n": 1})],
                               attributes={"gen_ai.request.model": "gpt-4.1"})
    client.add_event("gen_ai.details", {"n": 2}, timestamp=1_700_000_000_000_000_001)
    client.set_status(Status(StatusCode.ERROR, "upstream answered 503"))
    client.end()
    server.end()
    spans = list(memory.get_finished_spans())
    assert [type(span).__name__ for span in spans] == ["ReadableSpan", "LiteSpan", "LiteSpan"]
    assert _decode(fastexport.encode_spans(spans)) == sdk_encode(spans)
    nothing = _decode(fastexport.encode_spans(spans[:1])).resource_spans[0].scope_spans[0].spans[0]
    assert (nothing.dropped_attributes_count, nothing.dropped_events_count,
            nothing.dropped_links_count) == (1, 1, 1)


def test_attribute_blocks_encode_as_the_sdk_would() -> None:
    """A lite span started with an attribute block encodes to the SDK's message: the
    block's fields (encoded once, then reused) and the span's own after them, also when a
    block key is given again at start or written over later, and on SDK spans."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({"service.name": "llm-gateway"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = LiteTracer(provider, [SimpleSpanProcessor(memory)], InstrumentationScope("gateway", "1"))
    block = AttributeBlock({"gen_ai.operation.name": "chat", "server.port": 443, "ratio": 0.5,
                            "flag": True, "str.empty": ""})
    spans = []
    for rest in ({"gateway.request.id": "a" * 32, "seq": ["x", "y"]}, {"gateway.request.id": "b"},
                 {"server.port": 8443, "n": 1}, {}):
        span = start_span(tracer, "chat m", set_span_in_context(NonRecordingSpan(SpanContext(
            1, 2, is_remote=True, trace_flags=TraceFlags(1)))), SpanKind.CLIENT, block, rest)
        spans.append(span)
    spans[1].set_attributes({"gen_ai.usage.input_tokens": 3, "ratio": 0.25})  # written over
    spans[3].set_attribute("flag", False)
    sdk_span = start_span(provider.get_tracer("t"), "sdk", set_span_in_context(spans[0]),
                          SpanKind.INTERNAL, block, {"k": "v"})
    for span in (*spans, sdk_span):
        span.end()
    finished = list(memory.get_finished_spans())
    assert [getattr(span, "_block", None) is block for span in finished] == [
        True, False, False, False, False]
    assert _decode(fastexport.encode_spans(finished)) == sdk_encode(finished)
    assert block.encoded is not None
    again = _decode(fastexport.encode_spans(finished[:1])).resource_spans[0].scope_spans[0].spans[0]
    assert [kv.key for kv in again.attributes] == [*block.values, "gateway.request.id", "seq"]


def test_short_string_tuples_are_cached_and_mixed_ones_kept_apart() -> None:
    """A short tuple of strings (finish reasons) is encoded once and reused; tuples that
    mix types compare equal as keys ((True,) == (1,)) and are encoded each time, so each
    keeps its own type."""
    spans = [_raw_span({"gen_ai.response.finish_reasons": ("stop",), "mixed": (True, "a")}),
             _raw_span({"gen_ai.response.finish_reasons": ("stop",), "mixed": (1, "a")})]
    assert _decode(fastexport.encode_spans(spans)) == sdk_encode(spans)
    assert _decode(fastexport.encode_spans(spans)) == sdk_encode(spans)  # from the cache
    tuples = fastexport._FIELDS[b"\x4a"][tuple]
    assert ("stop",) in tuples["gen_ai.response.finish_reasons"]
    assert not tuples.get("mixed")


def test_keys_of_unique_values_stop_being_cached() -> None:
    """A key whose every value is new (a request id) is no longer cached once it has
    missed often enough; its spans still encode as the SDK's, and keys of few values stay."""
    spans = [_raw_span({"gateway.request.id.test": f"{i:032x}", "gen_ai.request.model": "m"})
             for i in range(fastexport._UNIQUE_AFTER + 10)]
    assert _decode(fastexport.encode_spans(spans)) == sdk_encode(spans)
    assert "gateway.request.id.test" in fastexport._UNCACHED
    assert "gen_ai.request.model" not in fastexport._UNCACHED
    kept = fastexport._FIELDS[b"\x4a"][str].get("gateway.request.id.test", {})
    assert not any(f"{i:032x}" in kept for i in range(fastexport._UNIQUE_AFTER + 2, 1100))


def test_cached_fields_stay_bounded_and_floats_encode_from_their_head() -> None:
    """More repeated-looking values than the cache holds empty it rather than grow it, and
    every span still encodes as the SDK's; floats (never cached, -0.0 and 0.0 apart) too."""
    spans = [_raw_span({f"bounded.{i % 16}": f"v{i}", "n": i, "cost": i / 7, "zero": -0.0})
             for i in range(9_600)]
    assert _decode(fastexport.encode_spans(spans)) == sdk_encode(spans)
    kept = sum(len(values) for fields in fastexport._FIELDS.values()
               for by_key in fields.values() for values in by_key.values())
    assert kept <= fastexport._MAX_FIELDS
    assert _decode(fastexport.encode_spans(spans[-50:])) == sdk_encode(spans[-50:])
    signs = [_raw_span({"zero": 0.0}), _raw_span({"zero": -0.0})]
    values = [s.attributes[0].value.double_value for s in
              _decode(fastexport.encode_spans(signs)).resource_spans[0].scope_spans[0].spans]
    assert [math.copysign(1, v) for v in values] == [1, -1]


def test_a_key_that_cannot_be_encoded_drops_only_its_attribute(
        caplog: pytest.LogCaptureFixture) -> None:
    """A key that is no UTF-8 (a lone surrogate, as a client's tag name can carry) is
    logged and its attribute dropped, whatever its value's type, floats included: the
    span's other attributes are still exported."""
    span = _raw_span({"a.\ud800": 1.5, "cost": 2.5, "b.\udfff": "x", "model": "m"})
    decoded = _decode(fastexport.encode_spans([span]))
    [exported] = decoded.resource_spans[0].scope_spans[0].spans
    assert [a.key for a in exported.attributes] == ["cost", "model"]
    assert caplog.text.count("Failed to encode key") == 2


@pytest.fixture
async def collector() -> AsyncIterator[tuple[str, list[tuple[dict[str, str], bytes]], list[int]]]:
    """An OTLP/HTTP endpoint that records headers and raw bodies, answering with
    the statuses queued in the yielded list (then 200)."""
    seen: list[tuple[dict[str, str], bytes]] = []
    statuses: list[int] = []

    async def traces(request: web.Request) -> web.Response:
        body = await request.content.read()  # the raw bytes, still compressed
        seen.append(({k.lower(): v for k, v in request.headers.items()}, body))
        status = statuses.pop(0) if statuses else 200
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(), status=status,
                            headers={"retry-after": "0"}, content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_post("/custom/traces", traces)
    runner = web.AppRunner(app, access_log=None, auto_decompress=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen, statuses
    finally:
        await runner.cleanup()


@pytest.mark.integration
async def test_http_exporter_honours_endpoint_headers_and_gzip(
        collector: tuple[str, list[tuple[dict[str, str], bytes]], list[int]]) -> None:
    """The traces endpoint is used as given, headers are added, and gzip is applied when asked."""
    root, seen, _ = collector
    env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{root}/custom/traces",
           "OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=acme,authorization=Bearer%20t0k",
           "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "gzip",
           "OTEL_EXPORTER_OTLP_TIMEOUT": "3"}
    exporter = fastexport.OTLPHTTPSpanExporter(env)
    assert exporter.timeout_s == 3.0
    spans = _spans()
    for _ in range(2):  # the second export reuses the kept-alive connection
        assert await asyncio.to_thread(exporter.export, spans) is SpanExportResult.SUCCESS
    exporter.shutdown()
    assert len(seen) == 2
    headers, body = seen[0]
    assert headers["x-tenant"] == "acme" and headers["authorization"] == "Bearer t0k"
    assert headers["content-encoding"] == "gzip"
    assert headers["content-type"] == "application/x-protobuf"
    assert _decode(gzip.decompress(body)) == sdk_encode(spans)
    assert await asyncio.to_thread(exporter.export, spans) is SpanExportResult.FAILURE


@pytest.mark.integration
async def test_http_exporter_retries_transient_statuses_only(
        collector: tuple[str, list[tuple[dict[str, str], bytes]], list[int]]) -> None:
    """503 is retried (after Retry-After), 400 is not."""
    root, seen, statuses = collector
    exporter = fastexport.OTLPHTTPSpanExporter(
        {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{root}/custom/traces"})
    spans = _spans()[:2]
    statuses += [503, 503]
    assert await asyncio.to_thread(exporter.export, spans) is SpanExportResult.SUCCESS
    assert len(seen) == 3 and "content-encoding" not in seen[0][0]
    statuses.append(400)
    assert await asyncio.to_thread(exporter.export, spans) is SpanExportResult.FAILURE
    assert len(seen) == 4
    exporter.shutdown()


@pytest.mark.integration
def test_http_exporter_gives_up_on_a_dead_collector_within_its_timeout() -> None:
    """Connection refused is retried with backoff but never past the timeout."""
    exporter = fastexport.OTLPHTTPSpanExporter({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
                                                "OTEL_EXPORTER_OTLP_TIMEOUT": "0.5"})
    assert exporter.endpoint == "http://127.0.0.1:9/v1/traces"
    assert exporter.export(_spans()[:1]) is SpanExportResult.FAILURE
    exporter.shutdown()


def test_endpoint_and_compression_resolution() -> None:
    """The general endpoint gets /v1/traces appended; unknown compression means none."""
    assert fastexport.resolve_endpoint({}) == "http://localhost:4318/v1/traces"
    assert fastexport.resolve_endpoint({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}) == \
        "http://c:4318/v1/traces"
    assert fastexport.resolve_compression({"OTEL_EXPORTER_OTLP_COMPRESSION": "Deflate"}) == "deflate"
    assert fastexport.resolve_compression({"OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"}) == "none"
    assert fastexport.resolve_timeout({"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "x"}) == 10.0


def test_grpc_exporter_sends_the_same_request() -> None:
    """The gRPC exporter's request, parsed from our bytes, reaches a receiver intact."""
    spans = _spans()
    with grpc_receiver() as (endpoint, received), pytest.MonkeyPatch.context() as patch:
        patch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint)
        patch.setenv("OTEL_EXPORTER_OTLP_TRACES_INSECURE", "true")
        exporter = fastexport.grpc_span_exporter()
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        exporter.shutdown()
    assert received.traces == [sdk_encode(spans)]


class _Capture(SpanExporter):
    """An exporter that takes pre-encoded spans, as the OTLP/HTTP one does (its
    `export` is `encode_spans` and a POST), keeping the request body instead of
    sending it. Not a subclass of OTLPHTTPSpanExporter: that class is compiled in
    the optimised build, and interpreted classes cannot inherit from it there."""

    accepts_encoded = True

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.bodies.append(fastexport.encode_spans(spans))
        return SpanExportResult.SUCCESS


def test_spans_encoded_as_they_end_export_the_sdk_encoding() -> None:
    """Through PreEncodingSpanProcessor (spans encoded on end, queued as bytes) the
    exported request decodes to exactly the SDK's encoding of the same spans, and a
    span that is not sampled is not queued."""
    spans = _spans()
    exporter = _Capture()
    processor = fastexport.PreEncodingSpanProcessor(exporter, schedule_delay_millis=60_000)
    for span in spans:
        processor.on_end(span)
    unsampled = _raw_span({"a": 1})
    unsampled._context = SpanContext(1, 2, is_remote=False, trace_flags=TraceFlags(0))
    processor.on_end(unsampled)
    assert processor.force_flush(5_000)
    processor.shutdown()
    assert len(exporter.bodies) == 1
    assert _decode(exporter.bodies[0]) == sdk_encode(spans)
    mixed = [fastexport.EncodedSpan(s) if i % 2 else s for i, s in enumerate(spans)]
    assert fastexport.encode_spans(mixed) == fastexport.encode_spans(spans)
    encoded = [fastexport.EncodedSpan(s) for s in spans]  # two resources: grouped one by one
    assert fastexport.encode_spans(encoded) == fastexport.encode_spans(spans)
    one_scope = [s for s in spans if s.resource is spans[0].resource
                 and s.instrumentation_scope == spans[0].instrumentation_scope]
    assert len(one_scope) > 2  # all encoded under one resource and scope: joined at once
    assert fastexport.encode_spans([fastexport.EncodedSpan(s) for s in one_scope]) == \
        fastexport.encode_spans(one_scope)


def test_queue_shortcut_keeps_the_sdk_rules(caplog: pytest.LogCaptureFixture) -> None:
    """Spans queued directly (no per-span fork check) export in order; a full queue drops
    through the SDK's own path (warning and all); without the shortcut the SDK's emit."""
    spans = _spans()
    exporter = _Capture()
    processor = fastexport.PreEncodingSpanProcessor(
        exporter, max_queue_size=len(spans), max_export_batch_size=len(spans),
        schedule_delay_millis=60_000)
    assert processor._direct  # this SDK has the fields the shortcut uses
    batch: Any = processor._batch_processor
    export = batch._export
    batch._export = lambda strategy: None  # the worker thread must not drain it meanwhile
    for span in spans:
        processor.on_end(span)
    with caplog.at_level("WARNING"):
        processor.on_end(spans[0])  # one too many: the SDK drops the oldest and says so
    batch._export = export
    assert "Queue full" in caplog.text
    assert processor.force_flush(5_000)
    assert _decode(exporter.bodies[0]) == sdk_encode([*spans[1:], spans[0]])
    processor._direct = False  # as with an SDK without those fields: its own emit
    processor.on_end(spans[0])
    assert processor.force_flush(5_000)
    processor.shutdown()
    assert _decode(exporter.bodies[1]) == sdk_encode(spans[:1])


@pytest.mark.parametrize(("protocol", "fast", "on_end", "expected"), [
    ("http/protobuf", "true", "true", ("OTLPHTTPSpanExporter", "PreEncodingSpanProcessor")),
    ("grpc", "true", "true", ("FastGrpcSpanExporter", "PreEncodingSpanProcessor")),
    ("http/protobuf", "true", "false", ("OTLPHTTPSpanExporter", "BatchSpanProcessor")),
    ("http/protobuf", "false", "true", ("OTLPSpanExporter", "BatchSpanProcessor")),
])
@pytest.mark.integration
def test_setup_picks_the_fast_exporter_unless_told_not_to(
        monkeypatch: pytest.MonkeyPatch, protocol: str, fast: str, on_end: str,
        expected: tuple[str, str]) -> None:
    """OTLP traces use fastexport, with spans encoded as they end, by default;
    GATEWAY_OTLP_FAST_EXPORT=false keeps the SDK's exporter and GATEWAY_OTLP_ENCODE_ON_END=false
    the SDK's batch processor."""
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
           "GATEWAY_OTLP_FAST_EXPORT": fast, "GATEWAY_OTLP_ENCODE_ON_END": on_end,
           "OTEL_METRICS_EXPORTER": "none"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    telemetry = setup_telemetry(env)
    assert telemetry.tracer_provider is not None
    processors = telemetry.tracer_provider._active_span_processor._span_processors
    assert [(type(getattr(p, "span_exporter", None)).__name__, type(p).__name__)
            for p in processors] == [expected]
    telemetry.shutdown(timeout_s=1)

"""LiteTracer spans carry exactly what the SDK tracer's spans carry."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
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
)

from gateway.fastpaths import litespan
from gateway.fastpaths.litespan import AttributeBlock, LiteTracer
from gateway.fastpaths.switches import select


class CountingIds(IdGenerator):
    """The same id sequence for both tracers."""

    def __init__(self) -> None:
        self._next = iter(range(1, 10_000))

    def generate_span_id(self) -> int:
        return next(self._next)

    def generate_trace_id(self) -> int:
        return next(self._next) << 64 | 0xABC


def _tracers(sampler: Sampler) -> Iterator[tuple[trace.Tracer, InMemorySpanExporter]]:
    for lite in (False, True):
        memory = InMemorySpanExporter()
        provider = TracerProvider(resource=Resource({"service.name": "t"}), sampler=sampler,
                                  id_generator=CountingIds())
        processor = SimpleSpanProcessor(memory)
        provider.add_span_processor(processor)
        tracer: trace.Tracer = provider.get_tracer("gateway", "1.0")
        if lite:
            tracer = LiteTracer(provider, [processor], InstrumentationScope("gateway", "1.0"))
        yield tracer, memory


REMOTE = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, is_remote=True,
                     trace_flags=TraceFlags(1), trace_state=TraceState([("k", "v")]))
UNSAMPLED = SpanContext(0x1111, 0x2222, is_remote=True, trace_flags=TraceFlags(0))


def _story(tracer: trace.Tracer) -> list[trace.Span]:
    """Spans exercising what the gateway and its hooks do with spans."""
    spans = []
    server = tracer.start_span("POST /v1/chat/completions", kind=SpanKind.SERVER, start_time=10,
                               context=trace.set_span_in_context(NonRecordingSpan(REMOTE)),
                               attributes={"http.route": "/v1/chat/completions", "n": 1})
    spans.append(server)
    client = tracer.start_span("chat gpt-4.1", kind=SpanKind.CLIENT, start_time=11,
                               context=trace.set_span_in_context(server),
                               links=[Link(REMOTE, {"l": True})],
                               attributes={"gen_ai.request.stop_sequences": ["a", "b"],
                                           "none": None, "f": 0.5})
    spans.append(client)
    client.set_attribute("list", [1, 2])
    client.set_attribute("gen_ai.response.finish_reasons", ["stop", "length"])  # str fast path
    client.set_attribute("empty", [])
    client.set_attributes({"gen_ai.usage.input_tokens": 3, "bad": [1, "x"], "ok": True})
    client.add_event("gateway.runaway", {"kind": "spike", "counts": [1, 2]}, timestamp=12)
    try:
        raise ValueError("boom")
    except ValueError as exc:
        client.record_exception(exc, {"extra": 1}, timestamp=13)
    client.set_status(Status(StatusCode.ERROR, "upstream answered 503"))
    client.set_status(StatusCode.UNSET)
    client.update_name("chat gpt-4.1 (renamed)")
    client.end(end_time=14)
    client.set_attribute("after.end", 1)
    client.end(end_time=15)
    server.set_status(StatusCode.OK)
    server.set_status(Status(StatusCode.ERROR, "ignored once OK"))
    server.end(end_time=16)
    root = tracer.start_span("root", start_time=20)
    root.end(end_time=21)
    spans.append(root)
    dropped = tracer.start_span("child of unsampled", start_time=30,
                                context=trace.set_span_in_context(NonRecordingSpan(UNSAMPLED)))
    dropped.end(end_time=31)
    spans.append(dropped)
    return spans


SAMPLERS = {
    "parentbased_always_on": ParentBased(ALWAYS_ON),  # decided without asking the sampler
    "parentbased_always_off": ParentBased(ALWAYS_OFF),
    "always_on": ALWAYS_ON,
    "always_off": ALWAYS_OFF,
    "parentbased_custom_delegate": ParentBased(ALWAYS_ON, remote_parent_not_sampled=ALWAYS_ON),
    "traceidratio_0": TraceIdRatioBased(0.0),  # asked every time
}


@pytest.mark.parametrize("sampler", list(SAMPLERS.values()), ids=list(SAMPLERS))
def test_lite_spans_match_sdk_spans(sampler: Sampler) -> None:
    """Ids, flags, trace state, parents, attributes (cleaned), events, exceptions, links,
    status rules, names, times and which spans are recorded all match the SDK, under
    every sampler (the static ones take LiteTracer's shortcut past should_sample)."""
    (sdk, sdk_memory), (lite, lite_memory) = _tracers(sampler)
    sdk_spans, lite_spans = _story(sdk), _story(lite)
    for ours, theirs in zip(lite_spans, sdk_spans, strict=True):
        assert ours.get_span_context() == theirs.get_span_context()
        assert ours.is_recording() == theirs.is_recording()
    finished: list[Callable[[], tuple[ReadableSpan, ...]]] = [
        sdk_memory.get_finished_spans, lite_memory.get_finished_spans]
    sdk_done, lite_done = (f() for f in finished)
    assert encode_spans(lite_done) == encode_spans(sdk_done)
    assert [s.name for s in lite_done] == [s.name for s in sdk_done]
    if sampler is SAMPLERS["parentbased_always_on"]:
        assert len(lite_done) == 3
        client = next(s for s in lite_done if s.kind is SpanKind.CLIENT)
        assert client.attributes is not None
        assert dict(client.attributes)["list"] == (1, 2)
        assert client.status.status_code is StatusCode.ERROR
        assert [e.name for e in client.events] == ["gateway.runaway", "exception"]
    elif sampler is SAMPLERS["traceidratio_0"]:
        assert lite_done == ()


def test_static_decisions_only_for_samplers_that_need_no_asking() -> None:
    """The shortcut covers always_on/off and their default parent-based forms, nothing else."""
    assert litespan._static_decisions(ALWAYS_ON) is not None
    assert litespan._static_decisions(ParentBased(ALWAYS_OFF)) is not None
    assert litespan._static_decisions(TraceIdRatioBased(0.5)) is None
    assert litespan._static_decisions(ParentBased(TraceIdRatioBased(0.5))) is None
    assert litespan._static_decisions(
        ParentBased(ALWAYS_ON, local_parent_not_sampled=ALWAYS_ON)) is None


def test_span_limit_variables_keep_the_sdk_tracer() -> None:
    """A span limit variable asks for the SDK's truncation, so lite spans step aside."""
    assert select({}).lite_spans
    assert not select({"OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT": "100"}).lite_spans
    assert not select({"GATEWAY_LITE_SPANS": "false"}).lite_spans


def test_start_as_current_span_sets_and_ends_the_span() -> None:
    """The context-manager form makes the span current and ends it on exit."""
    (_, _), (lite, memory) = _tracers(ParentBased(ALWAYS_ON))
    with lite.start_as_current_span("outer") as span:
        assert trace.get_current_span() is span
    assert [s.name for s in memory.get_finished_spans()] == ["outer"]


def test_without_processors_spans_are_not_recorded_but_propagate() -> None:
    """No exporter, no recording: the span context is still valid and sampled."""
    lite = LiteTracer(TracerProvider(), [], InstrumentationScope("gateway"))
    span = lite.start_span("s")
    assert not span.is_recording()
    context = span.get_span_context()
    assert context.is_valid and context.trace_flags.sampled


def test_span_context_shortcuts_match_the_api() -> None:
    """span_context_in and context_with give what get_current_span(...).get_span_context()
    and set_span_in_context give, for lite, SDK, non-recording and no spans."""
    (sdk, _), (lite, _) = _tracers(ParentBased(ALWAYS_ON))
    spans: list[trace.Span] = [lite.start_span("lite"), sdk.start_span("sdk"),
                               NonRecordingSpan(UNSAMPLED)]
    for span in spans:
        context = litespan.context_with(span, None)
        assert context == trace.set_span_in_context(span, None)
        assert litespan.span_context_in(context) == span.get_span_context()
        nested = litespan.context_with(spans[0], context)
        assert nested == trace.set_span_in_context(spans[0], context)
    for empty in (None, trace.set_span_in_context(trace.INVALID_SPAN, None), Context()):
        assert litespan.span_context_in(empty) == trace.get_current_span(empty).get_span_context()
    built = litespan.new_span_context(5 << 64, 7, 1, None)
    assert built == SpanContext(5 << 64, 7, is_remote=False, trace_flags=TraceFlags(1))
    assert built.is_valid and not litespan.new_span_context(0, 7, 1, None).is_valid


def test_default_id_generator_draws_the_sdk_ids() -> None:
    """With the SDK's RandomIdGenerator, lite spans draw their ids from the same random
    source in the same order as the SDK's tracer (same seed, same trace and span ids)."""
    contexts = []
    for lite in (False, True):
        provider = TracerProvider(sampler=ALWAYS_ON)
        processor = SimpleSpanProcessor(InMemorySpanExporter())
        provider.add_span_processor(processor)
        tracer: trace.Tracer = provider.get_tracer("gateway")
        if lite:
            tracer = LiteTracer(provider, [processor], InstrumentationScope("gateway"))
        random.seed(1234)
        root = tracer.start_span("root")
        child = tracer.start_span("child", context=trace.set_span_in_context(root))
        contexts.append((root.get_span_context(), child.get_span_context()))
    assert contexts[0] == contexts[1]
    assert contexts[1][0].trace_flags == contexts[0][0].trace_flags


class _Starts(SpanProcessor):
    """A processor that sees spans start."""

    def __init__(self) -> None:
        self.started: list[str] = []

    def on_start(self, span: trace.Span, parent_context: object = None) -> None:
        self.started.append(span.name)  # type: ignore[attr-defined]


def test_only_processors_with_an_on_start_are_called_at_start() -> None:
    """A processor with its own on_start sees every span start; the batch processor's
    empty one is skipped, and it still gets the span at its end."""
    memory = InMemorySpanExporter()
    batch = BatchSpanProcessor(memory)
    starts = _Starts()
    tracer = LiteTracer(TracerProvider(), [batch, starts], InstrumentationScope("gateway"))
    assert tracer._starters == (starts,)
    tracer.start_span("a").end()
    batch.force_flush()
    assert starts.started == ["a"]
    assert [s.name for s in memory.get_finished_spans()] == ["a"]
    batch.shutdown()


def test_attribute_blocks_read_back_as_plain_attributes() -> None:
    """A span started from an attribute block has the block's attributes then its own, as
    any reader sees them, on lite and SDK tracers alike; a block only takes primitives."""
    block = AttributeBlock({"gen_ai.operation.name": "chat", "server.port": 443})
    for tracer, memory in _tracers(ParentBased(ALWAYS_ON)):
        litespan.start_span(tracer, "chat m", Context(), SpanKind.CLIENT, block,
                            {"gateway.request.id": "r1"}).end()
        (span,) = memory.get_finished_spans()
        assert list((span.attributes or {}).items()) == [
            ("gen_ai.operation.name", "chat"), ("server.port", 443), ("gateway.request.id", "r1")]
        assert span.kind is SpanKind.CLIENT and span.name == "chat m"
    with pytest.raises(TypeError, match="'seq'"):
        AttributeBlock({"seq": ["a"]})


@pytest.mark.parametrize("sampler", list(SAMPLERS.values()), ids=list(SAMPLERS))
def test_blocked_spans_match_sdk_spans_under_every_sampler(sampler: Sampler) -> None:
    """Spans started from a block (merged only once a sampler or a recorded span needs the
    attributes), with a block key given again, non-primitive own values, and ended through
    `end_span`, carry what the SDK tracer's spans carry under every sampler."""
    block = AttributeBlock({"gen_ai.operation.name": "chat", "server.port": 443})
    results = []
    for tracer, memory in _tracers(sampler):
        parent = trace.set_span_in_context(NonRecordingSpan(REMOTE))
        for own in ({"gateway.request.id": "r1", "seq": ["a", "b"]},
                    {"server.port": 8443, "none": None}, {}):
            span = litespan.start_span(tracer, "chat m", parent, SpanKind.CLIENT, block, own)
            assert litespan.recording(span) is span.is_recording()
            litespan.end_span(span, {"gen_ai.usage.input_tokens": 3, "ratio": 0.5}
                              if litespan.recording(span) else None)
            assert not litespan.recording(span)
        encoded = encode_spans(memory.get_finished_spans())
        for resource in encoded.resource_spans:  # the clock's, not comparable
            for scope in resource.scope_spans:
                for one in scope.spans:
                    one.start_time_unix_nano = one.end_time_unix_nano = 0
        results.append(encoded)
    sdk, lite = results
    assert lite == sdk


def test_end_span_ends_once_and_keeps_the_sdk_rules(caplog: pytest.LogCaptureFixture) -> None:
    """`end_span` sets the attributes then ends, on lite and SDK spans alike; a block key
    set at the end drops the block; an ended span warns as `end()` does and changes nothing."""
    block = AttributeBlock({"gen_ai.operation.name": "chat"})
    for tracer, memory in _tracers(ALWAYS_ON):
        span = litespan.start_span(tracer, "c", Context(), SpanKind.CLIENT, block, {})
        litespan.end_span(span, {"gen_ai.operation.name": "embeddings", "n": 1})
        litespan.end_span(span, {"late": True})
        (ended,) = memory.get_finished_spans()
        assert dict(ended.attributes or {}) == {"gen_ai.operation.name": "embeddings", "n": 1}
        assert getattr(ended, "_block", None) is None
    assert "ended span" in caplog.text


def test_span_context_in_reads_lite_and_unsampled_spans_as_the_api() -> None:
    """The span context found in a context holding a lite, an unsampled or an SDK span is
    the one the API's `get_current_span` gives."""
    for sampler in (ALWAYS_ON, ALWAYS_OFF):
        for tracer, _ in _tracers(sampler):
            span = tracer.start_span("s", context=trace.set_span_in_context(
                NonRecordingSpan(REMOTE)))
            context = trace.set_span_in_context(span)
            assert litespan.span_context_in(context) is \
                trace.get_current_span(context).get_span_context()
            assert litespan.span_context_in(context).trace_id == REMOTE.trace_id

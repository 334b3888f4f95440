"""The upstream's trace headers are exactly what the configured propagators write."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import baggage, propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway.telemetry import tracecontext

SAMPLED = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, is_remote=False,
                      trace_flags=TraceFlags(1))
WITH_STATE = SpanContext(0x1234, 0x5678, is_remote=False, trace_flags=TraceFlags(0),
                         trace_state=TraceState([("vendor", "x"), ("other", "y")]))


@pytest.fixture
def default_propagators() -> Iterator[None]:
    before = propagate.get_global_textmap()
    propagate.set_global_textmap(CompositePropagator(
        [TraceContextTextMapPropagator(), W3CBaggagePropagator()]))
    yield
    propagate.set_global_textmap(before)


def _both(span_context: SpanContext, context: Context | None = None) -> tuple[dict[str, str], ...]:
    span = NonRecordingSpan(span_context)
    ctx = trace.set_span_in_context(span, context)
    ours: dict[str, str] = {}
    tracecontext.inject(ours, span, ctx)
    sdk: dict[str, str] = {}
    propagate.inject(sdk, context=ctx)
    return ours, sdk


@pytest.mark.parametrize("span_context", [SAMPLED, WITH_STATE, trace.INVALID_SPAN_CONTEXT],
                         ids=["sampled", "tracestate-unsampled", "invalid"])
def test_default_propagators_write_the_same_headers(default_propagators: None,
                                                     span_context: SpanContext) -> None:
    """traceparent (and tracestate) as the SDK's propagators write them; nothing when invalid."""
    ours, sdk = _both(span_context)
    assert ours == sdk
    if span_context.is_valid:
        assert ours["traceparent"].startswith("00-")


@pytest.mark.parametrize("context", [
    Context(), baggage.set_baggage("k", "v", Context()),
    baggage.remove_baggage("k", baggage.set_baggage("k", "v", Context())),
    baggage.clear(Context()), trace.set_span_in_context(NonRecordingSpan(SAMPLED), Context()),
    trace.set_span_in_context(NonRecordingSpan(SAMPLED), baggage.set_baggage("a", "b"))],
    ids=["empty", "baggage", "removed", "cleared", "span-only", "span-and-baggage"])
def test_has_baggage_says_what_get_all_says(context: Context) -> None:
    """The direct baggage check agrees with the API's `get_all` on every kind of context."""
    assert tracecontext.has_baggage(context) == bool(baggage.get_all(context))


def test_baggage_goes_through_the_propagators(default_propagators: None) -> None:
    """A context carrying baggage gets the baggage header too (the full propagator path)."""
    ours, sdk = _both(SAMPLED, baggage.set_baggage("tenant", "acme"))
    assert ours == sdk
    assert ours["baggage"] == "tenant=acme"


def test_other_propagators_are_used_as_configured() -> None:
    """With OTEL_PROPAGATORS-style custom propagators, their headers are written, not ours."""
    before = propagate.get_global_textmap()
    propagate.set_global_textmap(W3CBaggagePropagator())
    try:
        ours, sdk = _both(SAMPLED, baggage.set_baggage("k", "v"))
    finally:
        propagate.set_global_textmap(before)
    assert ours == sdk == {"baggage": "k=v"}


TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.mark.parametrize("headers", [
    {},
    {"traceparent": TRACEPARENT},
    {"Traceparent": TRACEPARENT, "tracestate": "vendor=x"},
    {"baggage": "tenant=acme"},
    {"tracestate": "vendor=x"},  # without traceparent: ignored by the propagator too
    {"traceparent": "garbage"},
], ids=["none", "traceparent", "mixed-case+tracestate", "baggage", "tracestate-only", "invalid"])
def test_extract_reads_what_the_propagators_read(default_propagators: None,
                                                  headers: dict[str, str]) -> None:
    """The incoming parent and baggage are those `propagate.extract` finds, however the
    headers are written (aiohttp's headers are case-insensitive)."""
    from multidict import CIMultiDict, CIMultiDictProxy

    carrier = CIMultiDictProxy(CIMultiDict(headers))
    ours, sdk = tracecontext.extract(carrier), propagate.extract(carrier)
    assert (trace.get_current_span(ours).get_span_context()
            == trace.get_current_span(sdk).get_span_context())
    assert baggage.get_all(ours) == baggage.get_all(sdk)


def test_extract_uses_other_propagators_as_configured() -> None:
    """With a custom propagator set, extraction goes through it."""
    before = propagate.get_global_textmap()
    propagate.set_global_textmap(W3CBaggagePropagator())
    try:
        ctx = tracecontext.extract({"baggage": "k=v", "traceparent": TRACEPARENT})
    finally:
        propagate.set_global_textmap(before)
    assert baggage.get_all(ctx) == {"k": "v"}
    assert not trace.get_current_span(ctx).get_span_context().is_valid

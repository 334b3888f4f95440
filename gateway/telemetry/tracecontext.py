"""Response headers that let a user find a request's trace."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from opentelemetry import baggage, propagate
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import Span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator


def trace_headers(span: Span, request_id: str) -> dict[str, str]:
    """`x-request-id`, and W3C Trace Context level 2 `traceresponse` when the span is valid."""
    headers = {"x-request-id": request_id}
    ctx = span.get_span_context()
    if ctx.is_valid:
        headers["traceresponse"] = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"
    return headers


# The key under which a context keeps its baggage, found once through the public API.
_BAGGAGE_KEY: Final = next(iter(baggage.set_baggage("k", "v", Context())))


def has_baggage(context: Context) -> bool:
    """`bool(baggage.get_all(context))`, without its three interpreted calls (run for
    every upstream request)."""
    found = context.get(_BAGGAGE_KEY)
    return isinstance(found, dict) and bool(found)


_checked: tuple[TextMapPropagator | None, bool] = (None, False)


def _default_textmap() -> bool:
    """Whether the global propagator is the SDK's default (tracecontext, baggage), as
    OTEL_PROPAGATORS unset gives; worked out once per propagator object."""
    global _checked
    textmap = propagate.get_global_textmap()
    if _checked[0] is textmap:
        return _checked[1]
    inner = getattr(textmap, "_propagators", None)
    default = (isinstance(textmap, CompositePropagator) and isinstance(inner, list)
               and len(inner) == 2 and type(inner[0]) is TraceContextTextMapPropagator
               and type(inner[1]) is W3CBaggagePropagator)
    _checked = (textmap, default)
    return default


def extract(headers: Mapping[str, str]) -> Context:
    """The incoming trace context: what `propagate.extract(headers)` returns, without
    running the propagators when the defaults have nothing to read."""
    if _default_textmap() and "traceparent" not in headers and "baggage" not in headers:
        return Context()
    return propagate.extract(headers)


def inject(headers: dict[str, str], span: Span, context: Context) -> None:
    """Trace context for an upstream request: what `propagate.inject(headers, context)` writes.

    With the default propagators and no baggage in `context`, that is the span's
    `traceparent` (and `tracestate`), formatted here directly; any other set-up goes
    through the global propagator as configured (OTEL_PROPAGATORS)."""
    if not _default_textmap() or has_baggage(context):
        propagate.inject(headers, context=context)
        return
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return
    headers["traceparent"] = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"
    if ctx.trace_state:
        headers["tracestate"] = ctx.trace_state.to_header()

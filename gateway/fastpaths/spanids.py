"""A span context's ids and flags read as the tuple it is.

The API's `SpanContext` is a tuple, (trace_id, span_id, is_remote, trace_flags,
trace_state, is_valid), and each of its properties is an interpreted call: a proxied
request read them 23 times (its `traceresponse`, the upstream's
`traceparent`, its ledger row's trace id, the exemplars of its measurements). Here they
are read by index, once the layout has been checked against the properties at import;
with another layout (another API version), through the properties, as before.
"""

from __future__ import annotations

from typing import Final

from opentelemetry.trace import SpanContext, TraceFlags, TraceState
from opentelemetry.trace.span import DEFAULT_TRACE_STATE


def _is_tuple_layout() -> bool:
    """Whether a SpanContext's items are, in order, what its properties return."""
    state = TraceState([("k", "v")])
    probe = SpanContext(0x1234, 0x56, True, TraceFlags(1), state)
    try:
        items = tuple(probe)
    except TypeError:
        return False
    return (len(items) == 6 and items[0] == probe.trace_id == 0x1234
            and items[1] == probe.span_id == 0x56 and items[2] is probe.is_remote is True
            and items[3] == probe.trace_flags == 1 and items[4] is probe.trace_state is state
            and items[5] is probe.is_valid is True)


TUPLE_LAYOUT: Final = _is_tuple_layout()
_SAMPLED: Final = int(TraceFlags.SAMPLED)


def traceparent(ctx: SpanContext) -> str:
    """The W3C `traceparent` (and `traceresponse`) value of `ctx`; "" when it is not valid."""
    if TUPLE_LAYOUT:
        if not ctx[5]:
            return ""
        return f"00-{ctx[0]:032x}-{ctx[1]:016x}-{ctx[3]:02x}"
    if not ctx.is_valid:
        return ""
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"


def trace_state(ctx: SpanContext) -> TraceState | None:
    """`ctx`'s trace state, or None when it has no entries (the default one is empty:
    answered without asking it its length)."""
    state = ctx[4] if TUPLE_LAYOUT else ctx.trace_state
    if state is DEFAULT_TRACE_STATE or not state:
        return None
    return state


def trace_id_hex(ctx: SpanContext) -> str:
    """The trace id as 32 hex digits (`trace.format_trace_id`); "" when `ctx` is not valid."""
    if TUPLE_LAYOUT:
        return f"{ctx[0]:032x}" if ctx[5] else ""
    return f"{ctx.trace_id:032x}" if ctx.is_valid else ""


def exemplar_ids(ctx: SpanContext) -> tuple[int, int, bool]:
    """(span id, trace id, whether `ctx` is valid and sampled): what an exemplar records."""
    if TUPLE_LAYOUT:
        return ctx[1], ctx[0], bool(ctx[5]) and bool(ctx[3] & _SAMPLED)
    return ctx.span_id, ctx.trace_id, ctx.is_valid and ctx.trace_flags.sampled

"""Span context ids read by index: the same answers as the API's properties, for valid,
unsampled, invalid and trace-state-carrying contexts, by index and by the fallback."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN_CONTEXT, SpanContext, TraceFlags, TraceState

from gateway.fastpaths import spanids

CONTEXTS = [
    SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, False, TraceFlags(1)),
    SpanContext(0x1, 0x2, True, TraceFlags(0), TraceState([("vendor", "value")])),
    SpanContext(0x5, 0x6, False, TraceFlags(3)),  # sampled, with the random-trace-id flag
    INVALID_SPAN_CONTEXT,
]


def _by_properties(ctx: SpanContext) -> tuple[str, str, TraceState | None, tuple[int, int, bool]]:
    parent = (f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"
              if ctx.is_valid else "")
    trace_id = trace.format_trace_id(ctx.trace_id) if ctx.is_valid else ""
    state = ctx.trace_state if ctx.trace_state else None
    return parent, trace_id, state, (ctx.span_id, ctx.trace_id,
                                     ctx.is_valid and ctx.trace_flags.sampled)


def _by_module(ctx: SpanContext) -> tuple[str, str, TraceState | None, tuple[int, int, bool]]:
    return (spanids.traceparent(ctx), spanids.trace_id_hex(ctx), spanids.trace_state(ctx),
            spanids.exemplar_ids(ctx))


def test_the_installed_api_has_the_tuple_layout() -> None:
    """The pinned API's SpanContext is read by index (else every read is a property call)."""
    assert spanids.TUPLE_LAYOUT is True


@pytest.mark.parametrize("ctx", CONTEXTS)
def test_reads_agree_with_the_properties(ctx: SpanContext) -> None:
    """traceparent, the trace id's hex, the trace state and the exemplar ids are what the
    properties give, an invalid context giving none."""
    assert _by_module(ctx) == _by_properties(ctx)


@pytest.mark.parametrize("ctx", CONTEXTS)
def test_the_fallback_reads_the_properties(ctx: SpanContext,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """With another layout the answers come from the properties, and are the same."""
    if not spanids.__file__ or not spanids.__file__.endswith(".py"):
        pytest.skip("compiled: the layout flag is a constant of the extension")
    monkeypatch.setattr(spanids, "TUPLE_LAYOUT", False)
    assert _by_module(ctx) == _by_properties(ctx)

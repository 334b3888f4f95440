"""Response headers that let a user find a request's trace."""

from __future__ import annotations

from opentelemetry.trace import Span


def trace_headers(span: Span, request_id: str) -> dict[str, str]:
    """`x-request-id`, and W3C Trace Context level 2 `traceresponse` when the span is valid."""
    headers = {"x-request-id": request_id}
    ctx = span.get_span_context()
    if ctx.is_valid:
        headers["traceresponse"] = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"
    return headers

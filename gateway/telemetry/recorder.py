"""Records one upstream attempt as a GenAI CLIENT span plus the gen_ai metrics.

Built for the hot path: attribute dicts are built once per attempt, metrics are
recorded with the CLIENT span's context (so exemplars link to the trace), and
nothing is computed for a span that is not recording.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from gateway.fastpaths import BoundRecorder, bind, context_with, record_keyed
from gateway.telemetry import names as n
from gateway.telemetry.setup import Telemetry
from gateway.usage import Usage


class AttemptRecorder:
    """Start at send, then `response`/`first_chunk`/`chunk`, then exactly one `finish`."""

    __slots__ = (
        "_chunk_timer",
        "_finished",
        "_key",
        "_last_chunk",
        "_started",
        "context",
        "first_chunk_s",
        "span",
        "telemetry",
    )

    def __init__(
        self,
        telemetry: Telemetry,
        parent: Context,
        *,
        operation: str,
        provider_name: str,
        model: str,
        server_address: str | None,
        server_port: int | None,
        request_attributes: Mapping[str, Any],
        extra_attributes: Mapping[str, Any],
    ) -> None:
        self.telemetry = telemetry
        self._key = (operation, provider_name, model, server_address, server_port)
        attributes = metric_attributes((*self._key, None, None, None))
        attributes.update(request_attributes)
        attributes.update(extra_attributes)
        self.span: Span = telemetry.tracer.start_span(
            f"{operation} {model}", context=parent, kind=SpanKind.CLIENT, attributes=attributes)
        self.context = context_with(self.span, parent)
        self._started = time.perf_counter()
        self._last_chunk = 0.0
        self._chunk_timer: BoundRecorder | None = None
        self.first_chunk_s: float | None = None
        self._finished = False

    def first_chunk(self) -> None:
        now = time.perf_counter()
        self._last_chunk = now
        self.first_chunk_s = now - self._started
        record_keyed(self.telemetry.instruments.time_to_first_chunk, self.first_chunk_s,
                     self._key[:3], chunk_attributes, self.context)

    def chunk(self) -> None:
        now = time.perf_counter()
        timer = self._chunk_timer
        if timer is None:  # the first chunk after the first: bind the series once per stream
            timer = self._chunk_timer = bind(self.telemetry.instruments.time_per_output_chunk,
                                             chunk_attributes(self._key), self.context)
        timer.record(now - self._last_chunk)
        self._last_chunk = now

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        if self.span.is_recording():
            self.span.set_attributes(attributes)

    def add_event(self, name: str, attributes: Mapping[str, Any]) -> None:
        if self.span.is_recording():
            self.span.add_event(name, attributes)

    def finish(
        self,
        *,
        response_model: str | None,
        usage: Usage | None,
        cost: Decimal | None,
        error_type: str | None = None,
        error_message: str | None = None,
        response_attributes: Mapping[str, Any] | None = None,
    ) -> None:
        if self._finished:
            return
        self._finished = True
        duration = time.perf_counter() - self._started
        instruments = self.telemetry.instruments
        op, provider, model, address, port = self._key
        served = response_model or None
        context = self.context
        if usage is not None and (usage.input or usage.output):
            record_keyed(instruments.token_usage, usage.input,
                         (op, provider, model, address, port, served, None, n.TOKEN_INPUT),
                         metric_attributes, context)
            record_keyed(instruments.token_usage, usage.output,
                         (op, provider, model, address, port, served, None, n.TOKEN_OUTPUT),
                         metric_attributes, context)
        record_keyed(instruments.operation_duration, duration,
                     (op, provider, model, address, port, served, error_type, None),
                     metric_attributes, context)
        span = self.span
        if span.is_recording():
            final: dict[str, Any] = dict(response_attributes or {})
            if response_model:
                final[n.GEN_AI_RESPONSE_MODEL] = response_model
            if self.first_chunk_s is not None:
                final[n.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = self.first_chunk_s
            if usage is not None:
                final[n.GEN_AI_USAGE_INPUT_TOKENS] = usage.input
                final[n.GEN_AI_USAGE_OUTPUT_TOKENS] = usage.output
                if usage.cache_read:
                    final[n.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = usage.cache_read
                if usage.cache_creation:
                    final[n.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = usage.cache_creation
                if usage.reasoning:
                    final[n.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = usage.reasoning
                if usage.estimated:
                    final[n.GATEWAY_USAGE_ESTIMATED] = True
            if cost is not None:
                final[n.GATEWAY_COST_USD] = float(cost)
            if error_type is not None:
                final[n.ERROR_TYPE] = error_type
                span.set_status(Status(StatusCode.ERROR, error_message or error_type))
            span.set_attributes(final)
        span.end()


def chunk_attributes(key: tuple[Any, ...]) -> dict[str, Any]:
    """The chunk timing metrics' attributes: operation, provider and request model (the
    first three of an attempt's key)."""
    return {n.GEN_AI_OPERATION_NAME: key[0], n.GEN_AI_PROVIDER_NAME: key[1],
            n.GEN_AI_REQUEST_MODEL: key[2]}


def metric_attributes(key: tuple[Any, ...]) -> dict[str, Any]:
    """The gen_ai metric attributes of an attempt's measurement key: (operation, provider,
    request model, server address, server port, response model, error type, token type)."""
    operation, provider, model, address, port, served, error_type, token_type = key
    attrs: dict[str, Any] = {n.GEN_AI_OPERATION_NAME: operation,
                             n.GEN_AI_PROVIDER_NAME: provider, n.GEN_AI_REQUEST_MODEL: model}
    if address is not None:
        attrs[n.SERVER_ADDRESS] = address
    if port is not None:
        attrs[n.SERVER_PORT] = port
    if served is not None:
        attrs[n.GEN_AI_RESPONSE_MODEL] = served
    if token_type is not None:
        attrs[n.GEN_AI_TOKEN_TYPE] = token_type
    if error_type is not None:
        attrs[n.ERROR_TYPE] = error_type
    return attrs

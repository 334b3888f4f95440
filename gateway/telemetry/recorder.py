"""Records one upstream attempt as a GenAI CLIENT span plus the gen_ai metrics.

Built for the hot path: attribute dicts are built once per attempt, metrics are
recorded with the CLIENT span's context (so exemplars link to the trace), and
nothing is computed for a span that is not recording. A stream's chunk timings are
gathered in a list while it runs and recorded together (at its end, or every
`CHUNK_BATCH` chunks of a long one): one series lookup, one lock and one clock read
for all of them rather than per chunk.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from gateway.fastpaths import (
    AttributeBlock,
    add_keyed,
    context_with,
    end_span,
    record_keyed,
    record_many,
    recording,
    start_span,
)
from gateway.telemetry import names as n
from gateway.telemetry.content import ContentMode
from gateway.telemetry.instruments import Instruments, Plan, UsageCounters
from gateway.telemetry.setup import Telemetry
from gateway.usage import Usage

CHUNK_BATCH = 256  # chunk timings held before a long stream records them


class AttemptRecorder:
    """Start at send, then `response`/`first_chunk`/`chunk`, then exactly one `finish`."""

    __slots__ = (
        "_event",
        "_finished",
        "_gaps",
        "_key",
        "_last_chunk",
        "_plan",
        "_started",
        "content",
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
        content: ContentMode = ContentMode.NO_CONTENT,
    ) -> None:
        self.telemetry = telemetry
        self._plan = plan_of(telemetry.instruments, operation)
        self._key = (operation, provider_name, model, server_address, server_port)
        name, block, attributes = _start_attributes(telemetry.span_starts, self._key,
                                                    request_attributes, extra_attributes)
        self.content = content  # this call's capture, decided once when it was admitted
        self._event: dict[str, Any] | None = None
        if content is not ContentMode.NO_CONTENT:
            self._event = _split_content(attributes, content, telemetry.upload is not None)
        self.span: Span = start_span(telemetry.tracer, name, parent, SpanKind.CLIENT, block,
                                     attributes)
        self.context = context_with(self.span, parent)
        self._started = time.perf_counter()
        self._last_chunk = 0.0
        self._gaps: list[float] = []  # chunk timings not recorded yet
        self.first_chunk_s: float | None = None
        self._finished = False

    def first_chunk(self) -> None:
        now = time.perf_counter()
        self._last_chunk = now
        self.first_chunk_s = now - self._started
        for histogram in self._plan.first_chunk:
            record_keyed(histogram, self.first_chunk_s, self._key[:3], chunk_attributes,
                         self.context)

    def chunk(self) -> None:
        now = time.perf_counter()
        gaps = self._gaps
        gaps.append(now - self._last_chunk)
        self._last_chunk = now
        if len(gaps) >= CHUNK_BATCH:
            self._record_gaps()

    def _record_gaps(self) -> None:
        """The chunk timings gathered so far, into every per-chunk histogram."""
        gaps, self._gaps = self._gaps, []
        if gaps and self._plan.per_chunk:
            attributes = chunk_attributes(self._key)
            for histogram in self._plan.per_chunk:
                record_many(histogram, gaps, attributes, self.context)

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        if self.span.is_recording():
            self.span.set_attributes(attributes)

    def add_event(self, name: str, attributes: Mapping[str, Any]) -> None:
        if self.span.is_recording():
            self.span.add_event(name, attributes)

    def record_output(self, output: str) -> None:
        """The answer's content (GenAI JSON), where this call's capture mode puts it (or
        the completion hook, when one takes the content instead)."""
        if self._event is not None:
            self._event[n.GEN_AI_OUTPUT_MESSAGES] = output
        if self.content.on_span and self.telemetry.upload is None:
            self.set_attributes({n.GEN_AI_OUTPUT_MESSAGES: output})

    def finish(
        self,
        *,
        response_model: str | None,
        usage: Usage | None,
        cost: Decimal | None,
        unpriced: bool = False,
        error_type: str | None = None,
        error_message: str | None = None,
        response_attributes: Mapping[str, Any] | None = None,
    ) -> None:
        if self._finished:
            return
        self._finished = True
        duration = time.perf_counter() - self._started
        if self._gaps:
            self._record_gaps()
        plan = self._plan
        op, provider, model, address, port = self._key
        served = response_model or None
        context = self.context
        has_usage = usage is not None and bool(usage.input or usage.output)
        histogram = plan.token_usage
        if usage is not None and has_usage and histogram is not None:
            record_keyed(histogram, usage.input,
                         (op, provider, model, address, port, served, None, n.TOKEN_INPUT),
                         metric_attributes, context)
            if plan.record_output:
                record_keyed(histogram, usage.output,
                             (op, provider, model, address, port, served, None, n.TOKEN_OUTPUT),
                             metric_attributes, context)
        pair = plan.token_histograms
        if usage is not None and has_usage and pair is not None:
            tokens_key = (op, provider, model, address, port, served, None, None)
            record_keyed(pair[0], usage.input, tokens_key, metric_attributes, context)
            record_keyed(pair[1], usage.output, tokens_key, metric_attributes, context)
        if plan.usage is not None:
            _count_usage(plan, (op, provider, model, address, port, served),
                         usage if has_usage else None, context)
        key = (op, provider, model, address, port, served, error_type, None)
        for recorder in plan.durations:
            record_keyed(recorder, duration, key, metric_attributes, context)
        span = self.span
        final: dict[str, Any] | None = None
        if recording(span):
            final = dict(response_attributes or {})
            if response_model:
                final[n.GEN_AI_RESPONSE_MODEL] = response_model
            if self.first_chunk_s is not None:
                final[n.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = self.first_chunk_s
            if usage is not None and plan.record_usage:
                usage_attributes_into(final, usage, plan)
                if usage.estimated:
                    final[n.GATEWAY_USAGE_ESTIMATED] = True
            if cost is not None:
                final[n.GATEWAY_COST_USD] = float(cost)
            elif unpriced:  # the model has no price anywhere: no cost, never a silent $0
                final[n.GATEWAY_COST_UNPRICED] = True
            if error_type is not None:
                final[n.ERROR_TYPE] = error_type
                span.set_status(Status(StatusCode.ERROR, error_message or error_type))
        if self._event is not None:
            if final is not None:  # before the hook, which may stamp the span
                span.set_attributes(final)
                final = None
            upload = self.telemetry.upload
            if upload is not None:
                upload.complete(span, self._event)
            else:
                self._emit_event(served, usage, error_type, response_attributes)
        end_span(span, final)

    def _emit_event(self, served: str | None, usage: Usage | None, error_type: str | None,
                    response_attributes: Mapping[str, Any] | None) -> None:
        """The details event: the call's attributes (as on its span) and its content."""
        event = self._event
        assert event is not None
        attributes = metric_attributes((*self._key, served, error_type, None))
        for name, value in (response_attributes or {}).items():
            if name.startswith("gen_ai."):
                attributes[name] = value
        if usage is not None:
            usage_attributes_into(attributes, usage, self._plan)
        attributes.update(event)
        self.telemetry.events.emit(self.span, self.context, attributes)


_MAX_STARTS = 1024  # CLIENT span starts kept: configured models by key, mostly
_BLOCKABLE = frozenset((str, int))  # not bool (True == 1) nor float (-0.0 == 0.0) in a key
_NO_BLOCK = AttributeBlock({})


def _start_attributes(starts: dict[tuple[Any, ...], tuple[str, AttributeBlock]],
                      key: tuple[Any, ...], request: Mapping[str, Any],
                      extra: Mapping[str, Any]) -> tuple[str, AttributeBlock, dict[str, Any]]:
    """A CLIENT span's name, the block of its attributes that recur (the measurement key's,
    then the attempt's `extra` but the request id), kept in `starts` by their values, and
    its own attributes (the request's, the request id). Extra values other than str and
    int, or extra keys the request also has, take no block: the attributes are then the
    key's, the request's and the extra ones, in that order, as one dict."""
    fixed = dict(extra)
    request_id = fixed.pop(n.GATEWAY_REQUEST_ID, None)
    if (all(map(_BLOCKABLE.__contains__, map(type, fixed.values())))
            and fixed.keys().isdisjoint(request)):
        start_key = (*key, *fixed, *fixed.values())
        start = starts.get(start_key)
        if start is None:  # once per model, provider, key and attempt number: bounded
            if len(starts) >= _MAX_STARTS:
                starts.clear()
            values = metric_attributes((*key, None, None, None))
            values.update(fixed)
            start = starts[start_key] = (f"{key[0]} {key[2]}", AttributeBlock(values))
        attributes = dict(request)
        if request_id is not None:
            attributes[n.GATEWAY_REQUEST_ID] = request_id
        return start[0], start[1], attributes
    attributes = metric_attributes((*key, None, None, None))
    attributes.update(request)
    attributes.update(extra)
    return f"{key[0]} {key[2]}", _NO_BLOCK, attributes


def usage_attributes_into(attributes: dict[str, Any], usage: Usage, plan: Plan) -> None:
    """The `gen_ai.usage.*` attributes of a span or details event: input, output (not for
    embeddings), and the cache-read, cache-write and reasoning parts when non-zero."""
    attributes[n.GEN_AI_USAGE_INPUT_TOKENS] = usage.input
    if plan.record_output:  # embeddings have no output tokens
        attributes[n.GEN_AI_USAGE_OUTPUT_TOKENS] = usage.output
    if usage.cache_read:
        attributes[n.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = usage.cache_read
    if usage.cache_creation:
        for name in plan.cache_write_keys:
            attributes[name] = usage.cache_creation
    if usage.reasoning:
        attributes[n.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = usage.reasoning


def plan_of(instruments: Instruments, operation: str) -> Plan:
    """What an attempt of `operation` records."""
    if operation == n.OP_EMBEDDINGS:
        return instruments.non_inference
    if operation == n.OP_COUNT_TOKENS:
        return instruments.counting
    return instruments.inference


def _count_usage(plan: Plan, key: tuple[Any, ...], usage: Usage | None,
                 context: Context) -> None:
    """The next generation's usage counters: every inference counts, a failed one (no
    usage) as 0 tokens of modality `unknown`; the cache and reasoning parts when non-zero."""
    counters = plan.usage
    assert counters is not None
    if usage is None:
        unknown = (*key, n.MODALITY_UNKNOWN)
        add_keyed(counters.input, 0, unknown, usage_attributes, context)
        add_keyed(counters.output, 0, unknown, usage_attributes, context)
        return
    text = (*key, n.MODALITY_TEXT)
    if usage.input_audio or usage.input_image or usage.output_audio or usage.output_image:
        _count_modalities(counters, key, usage, context)
    else:
        add_keyed(counters.input, usage.input, text, usage_attributes, context)
        add_keyed(counters.output, usage.output, text, usage_attributes, context)
    if usage.cache_read:
        add_keyed(counters.cache_read, usage.cache_read, text, usage_attributes, context)
    if usage.cache_creation:
        add_keyed(counters.cache_write, usage.cache_creation, text, usage_attributes, context)
    if usage.reasoning:
        add_keyed(counters.reasoning, usage.reasoning, text, usage_attributes, context)


def _split_content(attributes: dict[str, Any], mode: ContentMode,
                   upload: bool) -> dict[str, Any] | None:
    """Input content out of the span's `attributes` unless `mode` puts it on spans (and no
    completion hook takes it instead); what the details event or the hook will get (None:
    neither)."""
    captured = {name: attributes[name] for name in CONTENT_KEYS if name in attributes}
    if upload or not mode.on_span:
        for name in captured:
            del attributes[name]
    return captured if upload or mode.as_event else None


CONTENT_KEYS = (n.GEN_AI_INPUT_MESSAGES, n.GEN_AI_SYSTEM_INSTRUCTIONS)


def _count_modalities(counters: UsageCounters, key: tuple[Any, ...], usage: Usage,
                      context: Context) -> None:
    """Input and output split by modality: the audio and image parts, the rest as text."""
    for counter, total, audio, image in (
            (counters.input, usage.input, usage.input_audio, usage.input_image),
            (counters.output, usage.output, usage.output_audio, usage.output_image)):
        for modality, count in ((n.MODALITY_AUDIO, audio), (n.MODALITY_IMAGE, image)):
            if count:
                add_keyed(counter, count, (*key, modality), usage_attributes, context)
        add_keyed(counter, max(0, total - audio - image), (*key, n.MODALITY_TEXT),
                  usage_attributes, context)


def usage_attributes(key: tuple[Any, ...]) -> dict[str, Any]:
    """The usage counters' attributes: (operation, provider, request model, server address,
    server port, response model, token modality)."""
    attrs = metric_attributes((*key[:6], None, None))
    attrs[n.GEN_AI_TOKEN_MODALITY] = key[6]
    return attrs


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

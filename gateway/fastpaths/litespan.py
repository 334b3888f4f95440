"""The gateway's spans without the SDK's per-span machinery.

An SDK span validates every attribute value on the way in (a lock and a type
walk per value), keeps them in a BoundedAttributes, events in a BoundedList,
and copies itself into a ReadableSpan when it ends: about 12 µs plus 1 µs per
attribute, some 60 µs for the two spans of a request. The gateway sets only
attribute values it built itself, so `LiteSpan` is a ReadableSpan that is
written to directly (a plain dict) and handed as it is to the span processors
when it ends. The rest is what the SDK's tracer does: the provider's sampler
decides (drop, record only, record and sample) with the same arguments, the
provider's id generator makes the ids, the trace flags and trace state come
out the same, and the processors see the same span data.

With no span processor (no traces exporter configured) spans are not recorded
at all: their context still propagates and tags exemplars. Processors must be
given to the LiteTracer; one added to the provider later does not see its spans.

Used for the SERVER and CLIENT spans (the gateway's tracer) when no span limit
variable is set (OTEL_SPAN_ATTRIBUTE_*/OTEL_ATTRIBUTE_*/OTEL_SPAN_EVENT_*:
those ask for the SDK's truncation and counting) and GATEWAY_LITE_SPANS is not
false.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from random import getrandbits
from time import time_ns
from typing import Any, cast

from opentelemetry import trace as trace_api
from opentelemetry.context import Context, get_current
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    StaticSampler,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import DEFAULT_TRACE_STATE, NonRecordingSpan
from opentelemetry.util import types

_log = logging.getLogger(__name__)
_PRIMITIVE = frozenset((str, bool, int, float))
_RANDOM_TRACE_ID = getattr(TraceFlags, "RANDOM_TRACE_ID", 0)
_LIMIT_VARIABLES = (
    "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "OTEL_ATTRIBUTE_COUNT_LIMIT",
    "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
    "OTEL_SPAN_EVENT_COUNT_LIMIT", "OTEL_SPAN_LINK_COUNT_LIMIT",
    "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT",
)




def _current_span_key() -> str:
    """The context key the API keeps the current span under, found through its public
    functions (the key itself is private to the API)."""
    (key,) = trace_api.set_span_in_context(trace_api.INVALID_SPAN, Context()).keys()
    return key


_SPAN_KEY = _current_span_key()


_TRACE_ID_MAX = (1 << 128) - 1
_SPAN_ID_MAX = (1 << 64) - 1
_FLAGS = tuple(TraceFlags(value) for value in range(256))  # one object per flags value
_UNSET = Status(StatusCode.UNSET)  # every new span's status, as ReadableSpan's default


def new_span_context(trace_id: int, span_id: int, flags: int,
                     trace_state: Any) -> SpanContext:
    """`SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(flags),
    trace_state=trace_state)`: the same tuple, built without the interpreted __new__."""
    valid = 0 < trace_id <= _TRACE_ID_MAX and 0 < span_id <= _SPAN_ID_MAX
    state = trace_state if trace_state is not None else DEFAULT_TRACE_STATE
    built: SpanContext = tuple.__new__(SpanContext, (trace_id, span_id, False, _FLAGS[flags],
                                                     state, valid))
    return built


def span_context_in(context: Context | None) -> SpanContext:
    """`trace.get_current_span(context).get_span_context()`, read straight from a
    LiteSpan (the gateway's own contexts) without the API's calls."""
    if context is None:
        return trace_api.get_current_span(None).get_span_context()
    span = context.get(_SPAN_KEY)
    if type(span) is LiteSpan:
        return cast(SpanContext, span._context)
    if span is None:  # a context without a span (a root's): the API's answer, without it
        return trace_api.INVALID_SPAN_CONTEXT
    if type(span) is NonRecordingSpan:  # an unsampled span's (its get_span_context's field)
        return span._context
    return trace_api.get_current_span(context).get_span_context()


def context_with(span: trace_api.Span, parent: Context | None) -> Context:
    """`trace.set_span_in_context(span, parent)`: a copy of `parent` holding `span`
    (one copy: the new Context is written once, before anyone else sees it)."""
    context = Context(parent if parent is not None else get_current())
    dict.__setitem__(context, _SPAN_KEY, span)  # Context's own __setitem__ refuses
    return context


def limits_set(environ: Mapping[str, str]) -> bool:
    """Whether a span limit variable asks for the SDK's truncation and counting."""
    return any(environ.get(name) for name in _LIMIT_VARIABLES)


def _fallback_clean(value: Any) -> Any:
    """Older SDKs' rules: homogeneous sequences of primitives become tuples; the rest
    is dropped (None)."""
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        kinds = {type(v) for v in value if v is not None}
        return tuple(value) if len(kinds) <= 1 and kinds <= _PRIMITIVE else None
    return None


try:  # the SDK's own cleaning (AnyValue: None, bytes, nested sequences and mappings)
    from opentelemetry.attributes import _clean_attribute_value as _sdk_clean
except ImportError:  # pragma: no cover - SDKs before AnyValue attributes
    _sdk_clean = None  # type: ignore[assignment]


def _clean(value: Any) -> tuple[bool, Any]:
    """(keep, cleaned value) for an attribute value that is not a plain primitive."""
    if _sdk_clean is not None:
        return True, _sdk_clean(value, None)
    cleaned = _fallback_clean(value)  # pragma: no cover
    return cleaned is not None, cleaned  # pragma: no cover


class AttributeBlock:
    """Span attributes that recur together from span to span (those of one model and
    provider, of one route), built once by their owner and given to `start_span` as a
    unit: a lite span's OTLP encoder then encodes them once per block (`encoded`)
    instead of once per span. Values are str, bool, int or float."""

    __slots__ = ("encoded", "values")

    def __init__(self, values: Mapping[str, Any]) -> None:
        for key, value in values.items():
            if type(value) not in _PRIMITIVE:
                raise TypeError(f"attribute block value of {key!r} is not a primitive")
        self.values: dict[str, Any] = dict(values)
        self.encoded: bytes | None = None  # written by the span encoder, on first use


def start_span(tracer: trace_api.Tracer, name: str, context: Context, kind: SpanKind,
               block: AttributeBlock, attributes: Mapping[str, Any]) -> trace_api.Span:
    """`tracer.start_span(name, context, kind, attributes=block's values + attributes)`;
    a LiteTracer's span remembers the block for the encoder."""
    if type(tracer) is LiteTracer:
        return tracer.start_blocked(name, context, kind, block, attributes)
    return tracer.start_span(name, context=context, kind=kind,
                             attributes=_merged(block, attributes))


def _non_recording(context: SpanContext) -> NonRecordingSpan:
    """`NonRecordingSpan(context)` without its interpreted __init__ (it stores the one
    field)."""
    span: NonRecordingSpan = NonRecordingSpan.__new__(NonRecordingSpan)
    span._context = context
    return span


class LiteSpan(ReadableSpan, trace_api.Span):
    """A recording span that is its own ReadableSpan."""

    # ReadableSpan's fields that start the same on every span, read from the class until
    # a span sets its own: fewer fields written per span.
    _instrumentation_info = None
    _end_time: int | None = None
    _events: Sequence[Event] = ()  # a list of its own from the first event
    _links: Sequence[Link] = ()
    _status: Status = _UNSET
    # The block its attributes begin with, while none of the block's keys is set again.
    _block: AttributeBlock | None = None

    def __init__(self, tracer: LiteTracer, name: str, context: SpanContext,
                 parent: SpanContext | None, kind: SpanKind, attributes: dict[str, Any],
                 links: Sequence[Link], start_time: int, block: AttributeBlock | None) -> None:
        # ReadableSpan's fields, set here rather than through its (interpreted, keyword)
        # __init__: the same values it would store (those above are the class's).
        self._name = name
        self._context = context
        self._kind = kind
        self._instrumentation_scope = tracer.scope
        self._parent = parent
        self._start_time = start_time
        self._attributes = attributes
        if links:
            self._links = links if type(links) is tuple else tuple(links)
        self._resource = tracer.resource
        self._tracer = tracer
        if block is not None:
            self._block = block

    def get_span_context(self) -> SpanContext:
        return cast(SpanContext, self._context)

    def set_attribute(self, key: str, value: types.AttributeValue) -> None:
        if self._end_time is not None:
            _log.warning("Setting attribute on ended span.")
            return
        if self._block is not None and key in self._block.values:
            self._block = None  # written over: encoded one by one from now on
        if type(value) not in _PRIMITIVE:
            if type(value) is list and all(type(v) is str for v in value):
                value = tuple(value)  # what the SDK's cleaning makes of a list of strings
            else:
                keep, value = _clean(value)
                if not keep:
                    _log.warning("Invalid type for attribute '%s' value; dropped.", key)
                    return
        cast(dict[str, Any], self._attributes)[key] = value

    def set_attributes(self, attributes: Mapping[str, types.AttributeValue]) -> None:
        if self._end_time is not None:
            _log.warning("Setting attribute on ended span.")
            return
        _set_attributes(self, attributes)

    def add_event(self, name: str, attributes: types.Attributes = None,
                  timestamp: int | None = None) -> None:
        if self._end_time is not None:
            _log.warning("Calling add_event() on an ended span.")
            return
        clean: dict[str, Any] = {}
        for key, value in (attributes or {}).items():
            keep = True
            if type(value) not in _PRIMITIVE:
                keep, value = _clean(value)
            if keep:
                clean[key] = value
        events = self._events
        if type(events) is not list:
            events = self._events = []
        events.append(Event(name, clean, timestamp if timestamp is not None else time_ns()))

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        if self._end_time is None and context is not None and context.is_valid:
            self._links = (*self._links, Link(context, attributes))

    def update_name(self, name: str) -> None:
        if self._end_time is None:
            self._name = name

    def is_recording(self) -> bool:
        return self._end_time is None

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self._end_time is not None:
            return
        current = self._status
        if current is not None and current.status_code is StatusCode.OK:
            return  # the SDK's rule: OK is final
        if isinstance(status, Status):
            if status.status_code is not StatusCode.UNSET:
                self._status = status
        elif status is not StatusCode.UNSET:
            self._status = Status(status, description)

    def record_exception(self, exception: BaseException, attributes: types.Attributes = None,
                         timestamp: int | None = None, escaped: bool = False) -> None:
        module = type(exception).__module__
        qualname = type(exception).__qualname__
        attrs: dict[str, Any] = {
            "exception.type": f"{module}.{qualname}" if module and module != "builtins" else qualname,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        attrs.update(attributes or {})
        self.add_event("exception", attrs, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self._end_time is not None:
            _log.warning("Calling end() on an ended span.")
            return
        _end(self, end_time if end_time is not None else time_ns())

    def __repr__(self) -> str:
        return f'LiteSpan(name="{self._name}", context={self._context})'


def _set_attributes(span: LiteSpan, attributes: Mapping[str, types.AttributeValue]) -> None:
    """`span.set_attributes(attributes)` of a span not ended yet."""
    attrs = cast(dict[str, Any], span._attributes)
    block = span._block
    if block is not None and not block.values.keys().isdisjoint(attributes):
        span._block = None  # written over: encoded one by one from now on
    if type(attributes) is dict and all(map(_PRIMITIVE.__contains__,
                                            map(type, attributes.values()))):
        attrs.update(attributes)  # the common case, checked and copied at C speed
        return
    for key, value in attributes.items():
        if type(value) in _PRIMITIVE:
            attrs[key] = value
        else:
            span.set_attribute(key, value)


def _end(span: LiteSpan, end_time: int) -> None:
    """`span.end(end_time)` of a span not ended yet: to its processors."""
    span._end_time = end_time
    for processor in span._tracer.processors:
        processor.on_end(span)


def _merged(block: AttributeBlock, own: Mapping[str, Any]) -> dict[str, Any]:
    """The block's attributes, then `own`, in a new dict."""
    merged = dict(block.values)
    merged.update(own)
    return merged


def recording(span: trace_api.Span) -> bool:
    """`span.is_recording()`, answered for the gateway's own spans (lite, or unsampled)
    without calling it."""
    kind = type(span)
    if kind is LiteSpan:
        return cast(LiteSpan, span)._end_time is None
    if kind is NonRecordingSpan:
        return False
    return span.is_recording()


def end_span(span: trace_api.Span, attributes: Mapping[str, Any] | None = None) -> None:
    """`span.set_attributes(attributes)` (unless None), then `span.end()`: for the
    gateway's own spans (lite, or unsampled) without the method calls."""
    kind = type(span)
    if kind is LiteSpan:
        lite = cast(LiteSpan, span)
        if lite._end_time is None:
            if attributes:
                _set_attributes(lite, attributes)
            _end(lite, time_ns())
            return
    elif kind is NonRecordingSpan:
        return  # nothing to set or end
    if attributes is not None:
        span.set_attributes(attributes)
    span.end()


def _static_decisions(sampler: Sampler) -> tuple[Decision, Decision, Decision] | None:
    """For samplers whose decision depends only on the parent's sampled flag (always_on,
    always_off, and the parentbased_* of those with the default delegates): the decision
    for (no parent, sampled parent, unsampled parent). None for any other sampler."""
    if type(sampler) is StaticSampler:
        decision = sampler._decision
        return decision, decision, decision
    if type(sampler) is ParentBased:
        root = sampler._root
        defaults = (sampler._remote_parent_sampled is ALWAYS_ON
                    and sampler._local_parent_sampled is ALWAYS_ON
                    and sampler._remote_parent_not_sampled is ALWAYS_OFF
                    and sampler._local_parent_not_sampled is ALWAYS_OFF)
        if defaults and type(root) is StaticSampler:
            return root._decision, Decision.RECORD_AND_SAMPLE, Decision.DROP
    return None


_NO_START = (SpanProcessor.on_start, BatchSpanProcessor.on_start)


def _starts(processor: SpanProcessor) -> bool:
    """Whether `processor` has an on_start of its own (not the SDK's empty ones)."""
    return getattr(type(processor), "on_start", None) not in _NO_START


class LiteTracer(trace_api.Tracer):
    """Starts LiteSpans with the provider's sampler and id generator."""

    def __init__(self, provider: TracerProvider, processors: Sequence[SpanProcessor],
                 scope: InstrumentationScope) -> None:
        self.provider = provider
        self.processors = tuple(processors)
        # Those whose on_start does something: the batch processors' is `pass`, one call
        # per span for nothing.
        self._starters = tuple(p for p in self.processors if _starts(p))
        self.scope = scope
        self.resource = provider.resource
        self._static = _static_decisions(provider.sampler)

    def start_span(self, name: str, context: Context | None = None,
                   kind: SpanKind = SpanKind.INTERNAL, attributes: types.Attributes = None,
                   links: Sequence[Link] | None = (), start_time: int | None = None,
                   record_exception: bool = True,
                   set_status_on_exception: bool = True) -> trace_api.Span:
        return self._start(name, context, kind, attributes, links or (), start_time, None)

    def start_blocked(self, name: str, context: Context | None, kind: SpanKind,
                      block: AttributeBlock, attributes: Mapping[str, Any]) -> trace_api.Span:
        """`start_span` with the attributes of `block`, then `attributes` (see
        `start_span`, the module's function)."""
        return self._start(name, context, kind, None, (), None, block, attributes)

    def _start(self, name: str, context: Context | None, kind: SpanKind,
               attributes: types.Attributes, links: Sequence[Link], start_time: int | None,
               block: AttributeBlock | None = None,
               own: Mapping[str, Any] | None = None) -> trace_api.Span:
        """A span of `attributes`; or (start_blocked) of `block`'s values, which are
        primitives, then `own`: merged only once a sampler or a recorded span needs them
        (an unsampled span never does under the static samplers)."""
        current = span_context_in(context)
        parent = current if current is not None and current[5] else None  # [5]: is_valid
        provider = self.provider
        ids = provider.id_generator
        sdk_ids = type(ids) is RandomIdGenerator  # its ids drawn here, without its two calls
        if parent is None:
            if sdk_ids:
                trace_id = getrandbits(128)
                while not trace_id:  # INVALID_TRACE_ID, as the generator retries it
                    trace_id = getrandbits(128)
                random_trace_id = True
            else:
                trace_id = ids.generate_trace_id()
                random_trace_id = ids.is_trace_id_random() \
                    if hasattr(ids, "is_trace_id_random") else False
        else:
            # SpanContext's fields by index (its properties are interpreted calls); a lite
            # tracer runs only where the self-check found the layout (spanids.TUPLE_LAYOUT)
            trace_id = parent[0]
            random_trace_id = bool(parent[3] & _RANDOM_TRACE_ID)
        static = self._static
        if static is not None:  # the sampler's answer, without asking it (same result)
            decision = static[0] if parent is None else static[1 if parent[3] & 1 else 2]
            trace_state = parent[4] if parent is not None else None
            sampled_attrs = attributes if decision is not Decision.DROP else None
        else:
            if block is not None:  # the sampler may read them
                attributes = _merged(block, cast(Mapping[str, Any], own))
            result = provider.sampler.should_sample(context, trace_id, name, kind, attributes, links)
            decision, trace_state, sampled_attrs = result.decision, result.trace_state, result.attributes
        flags = 1 if decision is Decision.RECORD_AND_SAMPLE else 0  # TraceFlags.SAMPLED
        if random_trace_id:
            flags |= _RANDOM_TRACE_ID
        if sdk_ids:
            span_id = getrandbits(64)
            while not span_id:  # INVALID_SPAN_ID
                span_id = getrandbits(64)
        else:
            span_id = ids.generate_span_id()
        span_context = new_span_context(trace_id, span_id, flags, trace_state)
        if decision is Decision.DROP or not self.processors:
            # Nothing would ever read a recorded span (no exporter configured): the
            # context alone still propagates, answers traceresponse and tags exemplars.
            return _non_recording(span_context)
        checked: Mapping[str, Any]
        if block is not None:
            own = cast(Mapping[str, Any], own)
            if attributes is None:  # merged only now: the span records
                attributes = sampled_attrs = _merged(block, own)
            if sampled_attrs is attributes and block.values.keys().isdisjoint(own):
                attrs: dict[str, Any] = cast(dict[str, Any], attributes)  # a new dict
                checked = own  # the block's values need no check
            else:  # a block key given again, or the sampler gave attributes of its own
                block = None  # encoded one by one
                attrs = checked = dict(sampled_attrs) if sampled_attrs else {}
        else:
            attrs = checked = dict(sampled_attrs) if sampled_attrs else {}
        if not all(map(_PRIMITIVE.__contains__, map(type, checked.values()))):  # C speed
            for key, value in list(attrs.items()):
                if type(value) not in _PRIMITIVE:
                    keep, value = _clean(value)
                    if keep:
                        attrs[key] = value
                    else:
                        del attrs[key]
        # `block`: its keys are first in `attrs`, primitives, never cleaned away
        span = LiteSpan(self, name, span_context, parent, kind, attrs, links,
                        start_time if start_time is not None else time_ns(), block)
        for processor in self._starters:
            processor.on_start(span, parent_context=context)  # type: ignore[arg-type]
        return span

    @contextmanager
    def start_as_current_span(  # type: ignore[override]
            self, name: str, context: Context | None = None,
                              kind: SpanKind = SpanKind.INTERNAL,
                              attributes: types.Attributes = None,
                              links: Sequence[Link] | None = (), start_time: int | None = None,
                              record_exception: bool = True, set_status_on_exception: bool = True,
                              end_on_exit: bool = True) -> Iterator[trace_api.Span]:
        span = self.start_span(name, context, kind, attributes, links, start_time)
        with trace_api.use_span(span, end_on_exit=end_on_exit, record_exception=record_exception,
                                set_status_on_exception=set_status_on_exception) as current:
            yield current

"""OTLP span export without building protobuf objects.

The SDK's OTLP exporters turn every span into a tree of protobuf message
objects (`encode_spans`) and then serialise it: about 60 µs per gateway span,
in the export thread but under the GIL, so the event loop pays for it. Here
the wire bytes of `ExportTraceServiceRequest` are written directly (varints
and length-delimited fields), with the encodings of repeated key/value pairs,
resources and scopes cached: about 10 µs per span. The result decodes to exactly what
`encode_spans` builds (tests/telemetry/test_fastexport.py checks that).

`OTLPHTTPSpanExporter` posts the bytes over OTLP/HTTP (protobuf), honouring
the same variables as the SDK's exporter: OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT,
_HEADERS, _TIMEOUT, _COMPRESSION, _CERTIFICATE, _CLIENT_KEY and
_CLIENT_CERTIFICATE, with the SDK's retry policy (429/502/503/504 and
connection errors, exponential backoff with jitter within the timeout).
`grpc_span_exporter()` gives the SDK's gRPC exporter fed from the same bytes.
"""

from __future__ import annotations

import gzip
import http.client
import logging
import math
import os
import random
import ssl
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import islice
from typing import Any, cast
from urllib.parse import urlsplit

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import SpanContext, SpanKind
from opentelemetry.trace.span import DEFAULT_TRACE_STATE

from gateway import __version__
from gateway.fastpaths.litespan import AttributeBlock, LiteSpan

_log = logging.getLogger(__name__)

# --- wire encoding ------------------------------------------------------------

_VARINT1 = [bytes((i,)) for i in range(128)]
_pack_q = struct.Struct("<Q").pack
_pack_d = struct.Struct("<d").pack
_pack_i = struct.Struct("<I").pack
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1


def _varint(value: int) -> bytes:
    if value < 128:
        return _VARINT1[value]
    out = bytearray()
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    size = len(payload)
    return tag + (_VARINT1[size] if size < 128 else _varint(size)) + payload


# AnyValue field tags: 1 string, 2 bool, 3 int64, 4 double, 5 array, 6 kvlist, 7 bytes.
_TRUE = b"\x10\x01"
_FALSE = b"\x10\x00"


def _any_value(value: Any) -> bytes:
    """The body of an AnyValue (the SDK's `_encode_value`, same type order)."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return _TRUE if value else _FALSE
    if isinstance(value, str):
        return _field(b"\x0a", value.encode("utf-8"))
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ValueError(f"integer out of int64 range: {value}")
        return b"\x18" + _varint(value if value >= 0 else value + (1 << 64))
    if isinstance(value, float):
        return b"\x21" + _pack_d(value)
    if isinstance(value, bytes):
        return _field(b"\x3a", value)
    if type(value) in (list, tuple) or isinstance(value, Sequence):  # the type check skips the ABC
        return _field(b"\x2a", b"".join([_field(b"\x0a", _any_value(v)) for v in value]))
    if isinstance(value, Mapping):
        return _field(b"\x32", b"".join([_field(b"\x0a", _key_value(str(k), v))
                                         for k, v in value.items()]))
    raise TypeError(f"Invalid type {type(value)} of value {value}")


_KEYS: dict[str, bytes] = {}
_MAX_KEYS = 4096
# Whole attribute fields (tag, length, KeyValue) for values that repeat (model names,
# routes, status codes, finish reasons...): per parent field tag, by the value's type (so
# that True, 1 and 1.0 stay apart: str, int, bool, tuples of strings; not float, as
# -0.0 == 0.0), then by key, then by value. Nested dicts rather than one keyed by
# (key, type, value) tuples: a look-up makes no tuple, hashes none, and leaves nothing
# for the garbage collector. At most _MAX_FIELDS fields in all.
_Fields = dict[type, dict[str, dict[Any, bytes]]]
_FIELDS: dict[bytes, _Fields] = {}
_MAX_FIELDS = 8192
_cached_fields = 0
# Keys whose values hardly repeat (request and response ids, token counts): counted by
# cache misses, and past _UNIQUE_AFTER misses no longer cached, so that a new id per
# request does not fill the cache (and empty it every few thousand requests) for
# entries never read again. The count only grows: a key of few values stays below it.
_MISSES: dict[str, int] = {}
_UNCACHED: set[str] = set()
_UNIQUE_AFTER = 1024


def _text_field(cache: dict[str, bytes], tag: bytes, text: str) -> bytes:
    """`text` as a length-delimited field (nothing for ""), remembered in a bounded `cache`."""
    encoded = cache.get(text)
    if encoded is None:
        if len(cache) >= _MAX_KEYS:
            cache.clear()
        encoded = cache[text] = _field(tag, text.encode("utf-8")) if text else b""
    return encoded


def _key(key: str) -> bytes:
    return _text_field(_KEYS, b"\x0a", key)


def _key_value(key: str, value: Any) -> bytes:
    return _key(key) + _field(b"\x12", _any_value(value))


def _plain(attributes: Mapping[str, Any]) -> Mapping[str, Any]:
    """The SDK's BoundedAttributes wraps a plain dict, much faster to walk than the
    Mapping protocol it implements; anything else is used as it is."""
    if type(attributes) is dict:  # a LiteSpan's (asking a dict for `_dict` raises inside getattr)
        return attributes
    inner = getattr(attributes, "_dict", None)
    return inner if type(inner) is dict else attributes


def _missed(key: str) -> None:
    """One more value of `key` encoded and cached; past _UNIQUE_AFTER, none are cached."""
    misses = _MISSES.get(key, 0) + 1
    if misses > _UNIQUE_AFTER:
        if len(_UNCACHED) >= _MAX_KEYS:  # attribute names are few; bounded all the same
            _UNCACHED.clear()
        _UNCACHED.add(key)
        return
    if len(_MISSES) >= _MAX_KEYS:
        _MISSES.clear()
    _MISSES[key] = misses


def _attributes(tag: bytes, attributes: Mapping[str, Any] | None) -> list[bytes]:
    """Each attribute as a repeated KeyValue field; one that cannot be encoded is
    logged and left out, as the SDK's encoder does."""
    if not attributes:
        return []
    return _items(tag, _plain(attributes).items())


# The start of a float attribute's field (tag, length, key, value tag and length) by key,
# per parent field tag: floats (costs, durations) are new on nearly every span, so their
# field is this and the value's 8 bytes.
_FLOAT_HEADS: dict[bytes, dict[str, bytes]] = {}


def _float_head(heads: dict[str, bytes], tag: bytes, key: str) -> bytes:
    """`key`'s float field up to its value, remembered in `heads` (bounded)."""
    key_field = _key(key)
    # KeyValue: the key's field, then field 2 (0x12) of 9 bytes, an AnyValue double (0x21)
    head = tag + _varint(len(key_field) + 11) + key_field + b"\x12\x09\x21"
    if len(heads) >= _MAX_KEYS:
        heads.clear()
    heads[key] = head
    return head


def _fields_for(tag: bytes) -> _Fields:
    """The cached fields under parent field `tag`."""
    fields = _FIELDS.get(tag)
    if fields is None:
        fields = _FIELDS[tag] = {str: {}, int: {}, bool: {}, tuple: {}}
        _FLOAT_HEADS[tag] = {}
    return fields


def _items(tag: bytes, items: Iterable[tuple[str, Any]]) -> list[bytes]:
    """`_attributes` of (key, value) pairs."""
    out: list[bytes] = []
    _items_onto(out, tag, items)
    return out


def _items_onto(out: list[bytes], tag: bytes, items: Iterable[tuple[str, Any]]) -> None:
    """`_items`, appended to `out`."""
    fields = _fields_for(tag)
    floats = _FLOAT_HEADS[tag]
    uncached = _UNCACHED
    for key, value in items:
        kind = type(value)
        if kind is float:  # never cached (-0.0 == 0.0): its key's head and its 8 bytes
            head = floats.get(key)
            if head is None:
                try:
                    head = _float_head(floats, tag, key)
                except Exception as error:  # a key that is no UTF-8: as below
                    _log.exception("Failed to encode key %s: %s", key, error)
                    continue
            out.append(head + _pack_d(value))
            continue
        by_key = fields.get(kind)
        values: dict[Any, bytes] | None = None
        if by_key is not None and key not in uncached and (  # not a key of unique values
                len(value) <= 64 if kind is str
                # finish reasons, stop sequences: strings only, so that ("a", True) and
                # ("a", 1) never meet as keys
                else kind is not tuple or (len(value) <= 4 and all(
                    type(v) is str and len(v) <= 32 for v in value))):
            values = by_key.get(key)
            if values is None:
                values = by_key[key] = {}
            else:
                encoded = values.get(value)
                if encoded is not None:
                    out.append(encoded)
                    continue
        try:
            encoded = _field(tag, _key_value(key, value))
        except Exception as error:  # the SDK's policy: log it and drop the attribute
            _log.exception("Failed to encode key %s: %s", key, error)
            continue
        if values is not None:
            _remember(key, values, value, encoded)
        out.append(encoded)


def _remember(key: str, values: dict[Any, bytes], value: Any, encoded: bytes) -> None:
    """`encoded`, the field of `key` = `value`, kept in `values` (all emptied first once
    _MAX_FIELDS are kept)."""
    global _cached_fields
    if _cached_fields >= _MAX_FIELDS:
        for fields in _FIELDS.values():
            for by_key in fields.values():
                by_key.clear()
        _cached_fields = 0
        return  # `values` was one of them
    values[value] = encoded
    _cached_fields += 1
    _missed(key)


# Span.kind (field 6) by SpanKind's value: an enum member hashes in Python, an int does not.
_KIND = {kind._value_: b"\x30" + _varint(kind._value_ + 1) for kind in SpanKind}
_HAS_IS_REMOTE = 0x100
_IS_REMOTE = 0x200
# field 16 (flags), fixed32: tag (16 << 3 | 5) as a varint
_FLAGS_LOCAL_PARENT = b"\x85\x01" + _pack_i(_HAS_IS_REMOTE)
_FLAGS_REMOTE_PARENT = b"\x85\x01" + _pack_i(_HAS_IS_REMOTE | _IS_REMOTE)
# Link.flags is field 6, fixed32
_LINK_FLAGS_LOCAL = b"\x35" + _pack_i(_HAS_IS_REMOTE)
_LINK_FLAGS_REMOTE = b"\x35" + _pack_i(_HAS_IS_REMOTE | _IS_REMOTE)
_NAMES: dict[str, bytes] = {}  # span names repeat ("chat gpt-4.1"): their field, encoded once
# Fields written in one call each: trace id (field 1, 16 bytes big-endian, in two halves)
# and span id (field 2); the parent's span id (field 4); start and end times (fields 7
# and 8, fixed64).
_IDS = struct.Struct(">2sQQ2sQ").pack
_PARENT = struct.Struct(">2sQ").pack
_TIMES = struct.Struct("<BQBQ").pack
_LOW64 = (1 << 64) - 1


def _is_remote(context: SpanContext | None) -> bool:
    return bool(context is not None and context.is_remote)


def _trace_state(state: Any) -> bytes:
    if not state:
        return b""
    text = ",".join([f"{key}={value}" for key, value in state.items()])
    return text.encode("utf-8")


def _fixed64(tag: bytes, value: int | None) -> bytes:
    return tag + _pack_q(value) if value else b""


def _uint(tag: bytes, value: int | None) -> bytes:
    return tag + _varint(value) if value else b""


_UNBOUNDED = frozenset((dict, list, tuple))  # a LiteSpan's collections: nothing dropped
_BOUNDED = (BoundedAttributes, BoundedList)


def _dropped(collection: Any) -> int:
    """What the SDK's dropped_* properties report: a bounded collection's count, else 0."""
    if type(collection) in _UNBOUNDED or not isinstance(collection, _BOUNDED):
        return 0
    dropped: int = collection.dropped
    return dropped


def encode_span(span: ReadableSpan) -> bytes:
    """The body of one `Span` message.

    Reads the ReadableSpan's fields directly rather than through its properties
    (each a Python call, `events` and `links` copying into tuples): the same
    values the properties return, checked by tests/telemetry/test_fastexport.py."""
    context = span._context
    assert context is not None
    # SpanContext is a tuple: (trace_id, span_id, is_remote, trace_flags, trace_state, ...)
    state = context[4]
    trace_id = context[0]
    parts = [_IDS(b"\x0a\x10", trace_id >> 64, trace_id & _LOW64, b"\x12\x08", context[1])]
    if state is not DEFAULT_TRACE_STATE and state:  # the default: no call to its __len__
        parts.append(_field(b"\x1a", _trace_state(state)))
    parent = span._parent
    if parent is not None:
        parts.append(_PARENT(b"\x22\x08", parent[1]))
    parts.append(_text_field(_NAMES, b"\x2a", span._name))
    parts.append(_KIND[span._kind._value_])
    start, end = span._start_time, span._end_time
    if start and end:
        parts.append(_TIMES(0x39, start, 0x41, end))
    else:
        parts.append(_fixed64(b"\x39", start))
        parts.append(_fixed64(b"\x41", end))
    attributes = span._attributes
    lite = type(span) is LiteSpan  # its collections are unbounded: nothing dropped
    block = span._block if type(span) is LiteSpan else None
    if block is not None:
        _blocked(parts, block, cast(dict[str, Any], attributes))  # a LiteSpan's dict
    else:
        parts += _attributes(b"\x4a", attributes)
    if not lite:
        parts.append(_uint(b"\x50", _dropped(attributes)))
    events = span._events
    for event in events:
        body = [_fixed64(b"\x09", event.timestamp)]
        if event.name:
            body.append(_field(b"\x12", event.name.encode("utf-8")))
        body += _attributes(b"\x1a", event.attributes)
        body.append(_uint(b"\x20", event.dropped_attributes))
        parts.append(_field(b"\x5a", b"".join(body)))
    if not lite:
        parts.append(_uint(b"\x60", _dropped(events)))
    links = span._links
    for link in links:
        linked = link.context
        body = [b"\x0a\x10", linked.trace_id.to_bytes(16, "big"),
                b"\x12\x08", linked.span_id.to_bytes(8, "big")]
        body += _attributes(b"\x22", link.attributes)
        body.append(_uint(b"\x28", link.dropped_attributes))
        body.append(_LINK_FLAGS_REMOTE if _is_remote(linked) else _LINK_FLAGS_LOCAL)
        parts.append(_field(b"\x6a", b"".join(body)))
    if not lite:
        parts.append(_uint(b"\x70", _dropped(links)))
    status = span._status
    if status is not None:
        code = status._status_code._value_
        message = status._description
        if code or message:
            body_status = (_field(b"\x12", message.encode("utf-8")) if message else b"") + (
                b"\x18" + _varint(code) if code else b"")
            parts.append(_field(b"\x7a", body_status))
        else:
            parts.append(b"\x7a\x00")  # UNSET, no description: an empty Status
    parts.append(_FLAGS_REMOTE_PARENT if parent is not None and parent[2] else _FLAGS_LOCAL_PARENT)
    return b"".join(parts)


def _blocked(out: list[bytes], block: AttributeBlock, attributes: dict[str, Any]) -> None:
    """A lite span's attributes that begin with `block`'s, onto `out`: the block's fields
    encoded once (remembered on the block), then the span's own."""
    encoded = block.encoded
    if encoded is None:
        encoded = block.encoded = b"".join(_attributes(b"\x4a", block.values))
    out.append(encoded)
    _items_onto(out, b"\x4a", islice(attributes.items(), len(block.values), None))


_RESOURCES: dict[int, tuple[Any, bytes]] = {}
_SCOPES: dict[int, tuple[Any, bytes]] = {}


def _cached(cache: dict[int, tuple[Any, bytes]], obj: Any,
            encode: Callable[[Any], bytes]) -> bytes:
    """An object's encoding, computed once while the object lives (keyed by identity,
    checked against the object itself so a reused id never returns stale bytes)."""
    entry = cache.get(id(obj))
    if entry is not None and entry[0] is obj:
        return entry[1]
    if len(cache) >= 64:
        cache.clear()
    encoded = encode(obj)
    cache[id(obj)] = (obj, encoded)
    return encoded


def _encode_resource(resource: Any) -> bytes:
    """`resource` (field 1 of ResourceSpans) and its `schema_url` (field 3)."""
    head = _field(b"\x0a", b"".join(_attributes(b"\x0a", resource.attributes)))
    schema = resource.schema_url
    return head + (_field(b"\x1a", schema.encode("utf-8")) if schema else b"")


def _encode_scope(scope: Any) -> bytes:
    """`scope` (field 1 of ScopeSpans) and its `schema_url` (field 3)."""
    if scope is None:
        return b"\x0a\x00"
    body = b"".join([
        _field(b"\x0a", scope.name.encode("utf-8")) if scope.name else b"",
        _field(b"\x12", scope.version.encode("utf-8")) if scope.version else b"",
        *_attributes(b"\x1a", scope.attributes),
    ])
    schema = scope.schema_url
    return _field(b"\x0a", body) + (_field(b"\x1a", schema.encode("utf-8")) if schema else b"")


def _parts(span: ReadableSpan) -> tuple[bytes, bytes, bytes]:
    """The span's resource and scope encodings (cached), and its `Span` field."""
    return (_cached(_RESOURCES, span._resource, _encode_resource),
            _cached(_SCOPES, span._instrumentation_scope or None, _encode_scope),
            _field(b"\x12", encode_span(span)))


class EncodedSpan:
    """A span already encoded, queued in place of the span itself."""

    __slots__ = ("body", "resource", "scope")

    def __init__(self, span: ReadableSpan) -> None:
        self.resource, self.scope, self.body = _parts(span)


class PreEncodingSpanProcessor(BatchSpanProcessor):
    """The SDK's batch processor (same queue, batching, OTEL_BSP_* settings, flush and
    shutdown), except that each span is encoded as it ends, on the thread that ends it
    (the event loop's), while its data is still in the CPU cache, and queued as bytes.
    The exporter thread then only joins bytes and POSTs them, holding the GIL briefly
    instead of encoding whole batches between pauses. For exporters that take
    `encode_spans` input (`accepts_encoded`): the OTLP/HTTP exporter here and
    `grpc_span_exporter`."""

    def __init__(self, span_exporter: SpanExporter, *args: Any, **kwargs: Any) -> None:
        super().__init__(span_exporter, *args, **kwargs)
        batch = self._batch_processor
        # The SDK's emit checks the process id (a system call) per span in case of a fork,
        # which its own at-fork hook (os.register_at_fork) already handles. Where that hook
        # exists and this SDK's BatchProcessor has the fields it takes, on_end queues
        # directly; otherwise it calls the SDK's emit.
        self._direct = hasattr(os, "register_at_fork") and all(hasattr(batch, name) for name in (
            "_queue", "_shutdown", "_max_queue_size", "_max_export_batch_size", "_worker_awaken"))

    def on_end(self, span: ReadableSpan) -> None:
        context = span._context
        if not (context and context[3] & 1):  # trace_flags: sampled
            return
        try:
            encoded = EncodedSpan(span)
        except Exception:  # as the SDK's exporters do with a span they cannot encode
            _log.exception("Failed to encode span %s", span.name)
            return
        batch: Any = self._batch_processor
        if not self._direct:
            batch.emit(encoded)
            return
        queue = batch._queue  # read each time: the SDK may renew it (after a fork)
        if batch._shutdown or len(queue) >= batch._max_queue_size:
            batch.emit(encoded)  # the SDK's own path: shutdown and full-queue handling
            return
        queue.appendleft(encoded)
        if len(queue) >= batch._max_export_batch_size and not batch._worker_awaken.is_set():
            batch._worker_awaken.set()


def encode_spans(spans: Sequence[ReadableSpan | EncodedSpan], *, pause_every: int = 0) -> bytes:
    """A serialised `ExportTraceServiceRequest`: spans grouped by resource, then by
    instrumentation scope, in first-seen order (as the SDK groups them).

    `pause_every` N spans, offer the GIL to other threads (`time.sleep(0)`): the
    exporter thread would otherwise hold it for a whole batch, up to the 5 ms switch
    interval, while the event loop waits with requests to serve."""
    if spans and type(spans[0]) is EncodedSpan:
        one = _one_group(spans)
        if one is not None:
            return one
    groups: dict[bytes, dict[bytes, list[bytes]]] = {}
    for index, span in enumerate(spans, 1):
        if isinstance(span, EncodedSpan):  # encoded when it ended
            resource, scope, body = span.resource, span.scope, span.body
        else:
            if pause_every and not index % pause_every:
                time.sleep(0)
            resource, scope, body = _parts(span)
        by_scope = groups.get(resource)
        if by_scope is None:
            by_scope = groups[resource] = {}
        encoded = by_scope.get(scope)
        if encoded is None:
            encoded = by_scope[scope] = []
        encoded.append(body)
    out = []
    for resource, by_scope in groups.items():
        scope_spans = [_field(b"\x12", scope + b"".join(encoded))
                       for scope, encoded in by_scope.items()]
        out.append(_field(b"\x0a", resource + b"".join(scope_spans)))
    return b"".join(out)


def _one_group(spans: Sequence[ReadableSpan | EncodedSpan]) -> bytes | None:
    """`encode_spans` of spans all encoded as they ended under one resource and scope
    (the gateway's own: their cached encodings are the same objects), without grouping
    them one by one; None when they are not all such."""
    first = spans[0]
    assert isinstance(first, EncodedSpan)
    resource, scope = first.resource, first.scope
    bodies = []
    for span in spans:
        if type(span) is not EncodedSpan or span.resource is not resource \
                or span.scope is not scope:
            return None
        bodies.append(span.body)
    return _field(b"\x0a", resource + _field(b"\x12", scope + b"".join(bodies)))


# --- OTLP/HTTP sender -----------------------------------------------------------

_RETRYABLE = frozenset({429, 502, 503, 504})
_MAX_RETRIES = 6
_PAUSE_EVERY = 32  # spans encoded between two offers of the GIL (~0.3 ms)
_DEFAULT_ENDPOINT = "http://localhost:4318/"
_DEFAULT_TIMEOUT_S = 10.0


def _env(environ: Mapping[str, str], name: str) -> str | None:
    """OTEL_EXPORTER_OTLP_TRACES_<name>, else OTEL_EXPORTER_OTLP_<name>."""
    return (environ.get(f"OTEL_EXPORTER_OTLP_TRACES_{name}")
            or environ.get(f"OTEL_EXPORTER_OTLP_{name}") or None)


def resolve_endpoint(environ: Mapping[str, str]) -> str:
    """The signal-specific variable as is; the general one with `v1/traces` appended."""
    specific = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if specific:
        return specific
    base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or _DEFAULT_ENDPOINT
    return f"{base.removesuffix('/')}/v1/traces"


def resolve_headers(environ: Mapping[str, str]) -> dict[str, str]:
    from opentelemetry.util.re import parse_env_headers  # the SDK's own parser

    headers = {"content-type": "application/x-protobuf",
               "user-agent": f"llm-gateway/{__version__} OTel-OTLP-Exporter-Python"}
    raw = _env(environ, "HEADERS") or ""
    headers.update(parse_env_headers(raw, liberal=True))
    return headers


def resolve_timeout(environ: Mapping[str, str]) -> float:
    raw = _env(environ, "TIMEOUT")
    if raw is None:
        return _DEFAULT_TIMEOUT_S
    try:
        return float(raw)  # seconds, as the Python SDK reads it
    except ValueError:
        _log.warning("Invalid timeout value %r, using default of %s seconds", raw,
                     _DEFAULT_TIMEOUT_S)
        return _DEFAULT_TIMEOUT_S


def resolve_compression(environ: Mapping[str, str]) -> str:
    value = (_env(environ, "COMPRESSION") or "none").strip().lower()
    if value not in ("none", "gzip", "deflate"):
        _log.warning("Unsupported compression type: %s", value)
        return "none"
    return value


def _ssl_context(environ: Mapping[str, str]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=_env(environ, "CERTIFICATE"))
    cert = _env(environ, "CLIENT_CERTIFICATE")
    if cert:
        context.load_cert_chain(cert, _env(environ, "CLIENT_KEY"))
    return context


class OTLPHTTPSpanExporter(SpanExporter):
    """Spans to an OTLP/HTTP (protobuf) endpoint, encoded by `encode_spans`."""

    accepts_encoded = True  # see PreEncodingSpanProcessor

    def __init__(self, environ: Mapping[str, str] | None = None, *,
                 endpoint: str | None = None) -> None:
        env = os.environ if environ is None else environ
        self.endpoint = endpoint or resolve_endpoint(env)
        url = urlsplit(self.endpoint)
        self._https = url.scheme == "https"
        self._host = url.hostname or "localhost"
        self._port = url.port or (443 if self._https else 80)
        self._path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        self._ssl = _ssl_context(env) if self._https else None
        self.headers = resolve_headers(env)
        self.timeout_s = resolve_timeout(env)
        self.compression = resolve_compression(env)
        if self.compression != "none":
            self.headers["content-encoding"] = self.compression
        self._conn: http.client.HTTPConnection | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one export at a time (force_flush may race the worker)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._stop.is_set():
            _log.warning("Exporter already shutdown, ignoring batch")
            return SpanExportResult.FAILURE
        try:
            body = self._compress(encode_spans(spans, pause_every=_PAUSE_EVERY))
        except Exception as error:
            _log.error("Failed to encode span batch: %s", error)
            return SpanExportResult.FAILURE
        with self._lock:
            return self._send(body)

    def _compress(self, body: bytes) -> bytes:
        if self.compression == "gzip":
            return gzip.compress(body, compresslevel=6, mtime=0)
        if self.compression == "deflate":
            return zlib.compress(body)
        return body

    def _send(self, body: bytes) -> SpanExportResult:
        deadline = time.monotonic() + self.timeout_s
        for retry in range(_MAX_RETRIES):
            backoff = 2**retry * random.uniform(0.8, 1.2)
            status, retry_after, error = self._post(body, max(deadline - time.monotonic(), 0.001))
            if status is not None and 200 <= status < 400:
                return SpanExportResult.SUCCESS
            retryable = status in _RETRYABLE if status is not None else error is not None
            if retry_after is not None:
                backoff = retry_after
            if not retryable:
                _log.error("Failed to export spans batch code: %s, reason: %s", status, error)
                return SpanExportResult.FAILURE
            if (retry + 1 == _MAX_RETRIES or backoff > deadline - time.monotonic()
                    or self._stop.is_set()):
                _log.error("Failed to export spans batch due to timeout, max retries or shutdown.")
                return SpanExportResult.FAILURE
            _log.warning("Transient error %s encountered while exporting spans batch, "
                         "retrying in %.2fs.", error or status, backoff)
            if self._stop.wait(backoff):
                break
        return SpanExportResult.FAILURE

    def _connection(self, timeout_s: float) -> http.client.HTTPConnection:
        conn = self._conn
        if conn is None:
            if self._https:
                conn = http.client.HTTPSConnection(self._host, self._port, timeout=timeout_s,
                                                   context=self._ssl)
            else:
                conn = http.client.HTTPConnection(self._host, self._port, timeout=timeout_s)
            self._conn = conn
        else:
            conn.timeout = timeout_s
            if conn.sock is not None:
                conn.sock.settimeout(timeout_s)
        return conn

    def _post(self, body: bytes, timeout_s: float
              ) -> tuple[int | None, float | None, str | None]:
        """(status, retry-after seconds, error) for one POST; a stale kept-alive
        connection is retried once at once, as the SDK's transport does."""
        for fresh in (False, True):
            conn = self._connection(timeout_s)
            try:
                conn.request("POST", self._path, body=body, headers=self.headers)
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as exc:
                self._close()
                if fresh:
                    return None, None, f"{type(exc).__name__}: {exc}"
                continue
            if response.will_close:
                self._close()
            return response.status, _retry_after(response.getheader("retry-after")), None
        return None, None, "unreachable"  # pragma: no cover

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def shutdown(self) -> None:
        self._stop.set()
        with self._lock:
            self._close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return max(seconds, 0.0) if math.isfinite(seconds) else None


# --- OTLP/gRPC -------------------------------------------------------------------


def grpc_span_exporter() -> SpanExporter:
    """The SDK's gRPC span exporter (all its configuration and retries), with the
    request message parsed from `encode_spans` bytes instead of built field by field."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    def translate(self: OTLPSpanExporter, data: Sequence[ReadableSpan]) -> Any:
        return ExportTraceServiceRequest.FromString(encode_spans(data))

    # Built with type() rather than a nested class statement, which mypyc cannot compile.
    exporter_class = type("FastGrpcSpanExporter", (OTLPSpanExporter,), {
        "accepts_encoded": True,  # see PreEncodingSpanProcessor
        "_translate_data": translate,
    })
    exporter: SpanExporter = exporter_class()
    return exporter

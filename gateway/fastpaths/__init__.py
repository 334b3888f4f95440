"""The fast paths: hand-written stand-ins for library code, kept in one place.

Each one does a library's job with less CPU per request (docs/performance.md
has the measurements), and each has the library's own code as its fallback:

| module         | stands in for                          | switch (env, `false` turns it off)   |
|----------------|----------------------------------------|--------------------------------------|
| `httpclient/`  | aiohttp's ClientSession, upstream calls | `GATEWAY_HTTP_CLIENT=aiohttp`        |
| `timers.py`    | the loop's `call_at`, `asyncio.timeout` | `GATEWAY_COARSE_TIMERS`              |
| `litespan.py`  | the SDK's tracer and spans             | `GATEWAY_LITE_SPANS`                 |
| `hotmetrics.py`| the SDK's histograms and cost counter  | `GATEWAY_FAST_METRICS`               |
| `fastexport.py`| the SDK's OTLP span encoding           | `GATEWAY_OTLP_FAST_EXPORT`           |

`spanids.py` reads span contexts' ids by index instead of their interpreted
properties, when an import-time check finds the API's tuple layout (else the
properties): no switch, the check is its fallback.

`GATEWAY_FAST_PATHS=false` turns them all off. `switches.select` reads the
switches once at start; the three telemetry ones also step aside by
themselves on an OpenTelemetry SDK outside the tested versions or when their
self-check fails (`selfcheck.py`), with one log line.

The rules: code outside this folder imports from `gateway.fastpaths` only
(the names below), never from its modules; and only code in this folder reads
the OpenTelemetry SDK's private attributes.
"""

from gateway.fastpaths.hotmetrics import (
    HotMetrics,
    add_keyed,
    exemplar_filter,
    record_keyed,
    record_many,
)
from gateway.fastpaths.httpclient import (
    BodyTooLarge,
    Endpoint,
    HttpClient,
    HttpResponse,
    UpstreamProtocolError,
)
from gateway.fastpaths.litespan import (
    AttributeBlock,
    LiteTracer,
    context_with,
    end_span,
    recording,
    span_context_in,
    start_span,
)
from gateway.fastpaths.spanids import exemplar_ids, trace_id_hex, trace_state, traceparent
from gateway.fastpaths.switches import FastPaths, log_fallback, select
from gateway.fastpaths.telemetry import batch_processor, fast_span_exporter
from gateway.fastpaths.timers import Deadline, use_coarse_timers
from gateway.fastpaths.timers import timers as timers_of  # the function; `timers` is the module

__all__ = [
    "AttributeBlock",
    "BodyTooLarge",
    "Deadline",
    "Endpoint",
    "FastPaths",
    "HotMetrics",
    "HttpClient",
    "HttpResponse",
    "LiteTracer",
    "UpstreamProtocolError",
    "add_keyed",
    "batch_processor",
    "context_with",
    "end_span",
    "exemplar_filter",
    "exemplar_ids",
    "fast_span_exporter",
    "log_fallback",
    "record_keyed",
    "record_many",
    "recording",
    "select",
    "span_context_in",
    "start_span",
    "timers_of",
    "trace_id_hex",
    "trace_state",
    "traceparent",
    "use_coarse_timers",
]

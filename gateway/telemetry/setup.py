"""Builds tracing and metrics from the standard OTEL_* variables.

The SDK reads most variables itself (sampler, resource, exporter endpoints,
headers, timeouts, temporality, exemplar filter, batch sizes); this module
only decides which exporters run, reusing the SDK's own name-to-entry-point
resolution, and adds the Prometheus reader behind the gateway's `/metrics`.
Defaults: with no OTEL_* set, metrics on `/metrics` and traces nowhere;
`OTEL_EXPORTER_OTLP_ENDPOINT` adds OTLP for traces and metrics.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from opentelemetry.metrics import Meter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Tracer
from prometheus_client import CollectorRegistry, generate_latest

from gateway import __version__, workers
from gateway.fastpaths import (
    AttributeBlock,
    FastPaths,
    HotMetrics,
    LiteTracer,
    batch_processor,
    exemplar_filter,
    fast_span_exporter,
    log_fallback,
    select,
)
from gateway.telemetry.content import ContentMode, content_mode
from gateway.telemetry.events import ContentEvents
from gateway.telemetry.instruments import Instruments, create_instruments
from gateway.telemetry.logs import OtelLogs
from gateway.telemetry.semconv import semconv
from gateway.telemetry.upload import ContentUpload, content_upload
from gateway.workers import WorkerExposition, worker_index

_log = logging.getLogger(__name__)
SCOPE = "gateway"
DEFAULT_SERVICE_NAME = "llm-gateway"


@dataclass
class Telemetry:
    """Everything that emits telemetry, owned by one app."""

    tracer: Tracer
    meter: Meter
    instruments: Instruments
    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    registry: CollectorRegistry | None = None
    content: ContentMode = ContentMode.NO_CONTENT
    enabled: bool = True
    exporters: list[str] = field(default_factory=list)
    worker: WorkerExposition | None = None  # under `serve --workers N`
    fast_paths: FastPaths = field(default_factory=FastPaths)  # which of ours run
    logs: OtelLogs | None = None  # the logs SDK, when OTEL_LOGS_EXPORTER names exporters
    events: ContentEvents = field(default_factory=ContentEvents)  # the content event's way out
    upload: ContentUpload | None = None  # a completion hook taking captured content instead
    # The CLIENT spans' names and attribute blocks by the attributes they hold (operation,
    # provider, model, server, key, attempt...): the attempt recorder's, bounded there.
    span_starts: dict[tuple[Any, ...], tuple[str, AttributeBlock]] = field(default_factory=dict)

    def metrics_text(self) -> bytes:
        if self.registry is None:
            return b""
        if self.worker is not None:
            return without_empty_labels(self.worker.merged())
        return without_empty_labels(generate_latest(self.registry))

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Flush and stop, waiting at most `timeout_s`: exporters retry a dead collector
        for longer than that, so the work runs in a daemon thread we stop waiting for."""
        worker = threading.Thread(target=self._shutdown, args=(timeout_s,), daemon=True,
                                  name="telemetry-shutdown")
        worker.start()
        worker.join(timeout_s)
        if worker.is_alive():
            _log.warning("telemetry flush did not finish within %.1f s; giving up", timeout_s)

    def _shutdown(self, timeout_s: float) -> None:
        millis = int(timeout_s * 1000)
        if self.tracer_provider is not None:
            self.tracer_provider.force_flush(millis)
            self.tracer_provider.shutdown()
        if self.worker is not None:  # the final counts, while the Prometheus reader still reads
            self.worker.stop()
        if self.meter_provider is not None:
            self.meter_provider.force_flush(millis)
            self.meter_provider.shutdown(millis)
        if self.logs is not None:
            self.logs.shutdown(millis)
        if self.upload is not None:
            self.upload.shutdown(timeout_s)


# The Prometheus exporter gives every sample of a metric family the union of its label
# names, so a success shows `error_type=""` beside failures' `error_type="timeout"`.
# Prometheus stores an empty label as no label; dropping it from the text makes the
# exposition say what OTLP says: error.type only on failures. Quoted values escape `"`,
# so the pattern cannot match inside one.
_EMPTY_ERROR_TYPE = re.compile(rb'\{error_type=""\}|(?<=[{,])error_type="",|,error_type=""(?=})')


def without_empty_labels(text: bytes) -> bytes:
    """The exposition `text` without `error_type=""` (see above)."""
    if b'error_type=""' not in text:
        return text
    return _EMPTY_ERROR_TYPE.sub(b"", text)


_OTLP_BY_PROTOCOL = {"grpc": "otlp_proto_grpc", "http/protobuf": "otlp_proto_http"}


def _entry_point_name(name: str, signal: str, environ: Mapping[str, str]) -> str:
    """The SDK's rule: `otlp` is the exporter of OTEL_EXPORTER_OTLP_(<SIGNAL>_)PROTOCOL,
    gRPC when unset; other names are entry point names as they are."""
    if name != "otlp":
        return name
    protocol = (environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL")
                or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "grpc").strip()
    if protocol not in _OTLP_BY_PROTOCOL:
        raise RuntimeError(f"Unsupported OTLP protocol '{protocol}' is configured")
    return _OTLP_BY_PROTOCOL[protocol]


def _sdk_exporter_names(signal: str, environ: Mapping[str, str]) -> list[str] | None:
    """Names from OTEL_{signal}_EXPORTER as the SDK reads them; None when unset."""
    var = f"OTEL_{signal.upper()}_EXPORTER"
    if var not in environ:
        return None
    names = environ[var]
    if not names.strip() or names.strip().lower() == "none":
        return []
    return [_entry_point_name(name.strip(), signal, environ) for name in names.split(",")]


def _otlp_configured(signal: str, environ: Mapping[str, str]) -> bool:
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT")
    )


def _default_otlp(signal: str, environ: Mapping[str, str]) -> list[str]:
    if not _otlp_configured(signal, environ):
        return []
    return [_entry_point_name("otlp", signal, environ)]


def _load(names: Sequence[str], group: str) -> list[type]:
    """The classes registered under `names` in the entry point `group` (how the SDK finds
    exporters)."""
    classes = []
    for name in names:
        found = list(entry_points(group=group, name=name))
        if not found:
            raise RuntimeError(f"Requested component '{name}' not found in entry point '{group}'")
        classes.append(found[0].load())
    return classes


def _span_exporters(names: Sequence[str], env: Mapping[str, str],
                    fast: FastPaths) -> list[SpanExporter]:
    """One exporter per name: ours for OTLP while that fast path is on, else the SDK's."""
    exporters: list[SpanExporter] = []
    for name in names:
        exporter = fast_span_exporter(name, env, fast)
        if exporter is None:
            exporters += [cls() for cls in _load([name], "opentelemetry_traces_exporter")]
        else:
            exporters.append(exporter)
    return exporters


# Batch span processor sizing where the user set none (SDK defaults: queue 2048, batch
# 512, every 5 s). A busy gateway ends several thousand spans a second: a 2048 queue
# drops spans as soon as one export stalls for a fraction of a second, 8192 rides it
# out (~2 KB per queued span). Batches stay at 512: each one is encoded in one go by
# the exporter thread, and larger batches hold the GIL longer. A 1 s delay gets a
# quiet gateway's traces to the backend sooner, at the cost of one small POST a second.
BSP_DEFAULTS = {
    "OTEL_BSP_MAX_QUEUE_SIZE": 8192,
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": 512,
    "OTEL_BSP_SCHEDULE_DELAY": 1000,
}


def _bsp_default(env: Mapping[str, str], var: str) -> int | None:
    """Our default for `var`, or None to let the SDK read the user's value."""
    return None if env.get(var) else BSP_DEFAULTS[var]


def resource_from_env(environ: Mapping[str, str]) -> Resource:
    """OTEL_RESOURCE_ATTRIBUTES / OTEL_SERVICE_NAME win; we add defaults they lack."""
    detected = Resource.create({})
    attrs = dict(detected.attributes)
    if str(attrs.get("service.name", "")).startswith("unknown_service"):
        attrs["service.name"] = DEFAULT_SERVICE_NAME
    attrs.setdefault("service.version", __version__)
    attrs.setdefault("service.instance.id", environ.get("GATEWAY_INSTANCE_ID") or uuid.uuid4().hex)
    index = worker_index(environ)
    if index is not None:  # `serve --workers N`: one instance per worker, or their series collide
        attrs["service.instance.id"] = f"{attrs['service.instance.id']}-w{index}"
    return Resource(attrs, detected.schema_url)


def setup_telemetry(environ: Mapping[str, str] | None = None,
                    fast_paths: FastPaths | None = None) -> Telemetry:
    """Telemetry as the OTEL_* variables describe it (the process environment by default),
    on the fast paths `select` chooses unless given."""
    env = os.environ if environ is None else environ
    fast = fast_paths
    if fast is None:
        fast = select(env)
        log_fallback(fast)
    mode = content_mode(env)
    resource = resource_from_env(env)
    trace_names = _sdk_exporter_names("traces", env)
    if trace_names is None:
        trace_names = _default_otlp("traces", env)
    metric_names = _sdk_exporter_names("metrics", env)
    if metric_names is None:
        metric_names = ["prometheus", *_default_otlp("metrics", env)]

    tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    processors: list[SpanProcessor] = []
    for exporter in _span_exporters(trace_names, env, fast):
        processors.append(batch_processor(exporter, fast)(
            exporter,
            max_queue_size=_bsp_default(env, "OTEL_BSP_MAX_QUEUE_SIZE"),
            max_export_batch_size=_bsp_default(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"),
            schedule_delay_millis=_bsp_default(env, "OTEL_BSP_SCHEDULE_DELAY"),
        ))
        tracer_provider.add_span_processor(processors[-1])

    readers: list[MetricReader] = []
    registry: CollectorRegistry | None = None
    if "prometheus" in metric_names:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader

        registry = CollectorRegistry(auto_describe=True)
        readers.append(PrometheusMetricReader(registry=registry))
        _maybe_serve_prometheus_port(registry, env)
    others = [name for name in metric_names if name != "prometheus"]
    for exporter_cls in _load(others, "opentelemetry_metrics_exporter"):
        if issubclass(exporter_cls, MetricReader):
            readers.append(exporter_cls())
        else:
            readers.append(PeriodicExportingMetricReader(exporter_cls()))  # type: ignore[arg-type]
    disabled = env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
    hot: HotMetrics | None = None
    if not disabled and fast.hot_metrics:
        hot = HotMetrics(InstrumentationScope(SCOPE, __version__), resource, exemplar_filter(env))
        for reader in readers:
            hot.attach(reader)
    meter_provider = MeterProvider(
        resource=resource, metric_readers=readers, shutdown_on_exit=False
    )
    meter = meter_provider.get_meter(SCOPE, __version__)
    worker: WorkerExposition | None = None
    index, run_dir = worker_index(env), env.get(workers.ENV_DIR)
    if index is not None and run_dir and registry is not None and not disabled:
        prometheus = registry
        worker = WorkerExposition(run_dir, index, lambda: generate_latest(prometheus))
        worker.start()
    log_names = [] if disabled else (_sdk_exporter_names("logs", env) or [])
    logs = None
    if log_names:
        logs = OtelLogs([cls() for cls in _load(log_names, "opentelemetry_logs_exporter")],
                        resource)
    tracer: Tracer = tracer_provider.get_tracer(SCOPE, __version__)
    if not disabled and fast.lite_spans:
        tracer = LiteTracer(tracer_provider, processors, InstrumentationScope(SCOPE, __version__))
    return Telemetry(
        logs=logs,
        events=ContentEvents(logs.provider if logs is not None else None, SCOPE, __version__),
        upload=None if disabled or not mode.enabled else content_upload(env),
        worker=worker,
        tracer=tracer,
        meter=meter,
        instruments=create_instruments(meter, hot, semconv(env)),
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        registry=None if disabled else registry,
        content=mode,
        enabled=not disabled,
        fast_paths=fast,
        exporters=[f"traces:{name}" for name in trace_names]
        + [f"metrics:{name}" for name in metric_names] + [f"logs:{name}" for name in log_names],
    )


def _maybe_serve_prometheus_port(registry: CollectorRegistry, env: Mapping[str, str]) -> None:
    """OTEL_EXPORTER_PROMETHEUS_PORT also serves the metrics on a port of their own."""
    port = env.get("OTEL_EXPORTER_PROMETHEUS_PORT")
    if not port:
        return
    from prometheus_client import start_http_server

    host = env.get("OTEL_EXPORTER_PROMETHEUS_HOST", "localhost")
    start_http_server(int(port), addr=host, registry=registry)
    _log.info("Prometheus metrics also served on %s:%s", host, port)


def describe(environ: Mapping[str, str]) -> list[str]:
    """What setup_telemetry would run, for `check-config` (no side effects)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return ["disabled (OTEL_SDK_DISABLED=true)"]
    traces = environ.get("OTEL_TRACES_EXPORTER")
    metrics = environ.get("OTEL_METRICS_EXPORTER")
    endpoint = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
    protocol = environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    lines = []
    if traces is not None:
        lines.append(f"traces: {traces} (OTEL_TRACES_EXPORTER)")
    elif _otlp_configured("traces", environ):
        lines.append(f"traces: otlp {protocol} -> "
                     f"{environ.get('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') or endpoint}")
    else:
        lines.append("traces: none (set OTEL_EXPORTER_OTLP_ENDPOINT to export)")
    if metrics is not None:
        lines.append(f"metrics: {metrics} (OTEL_METRICS_EXPORTER)")
    else:
        extra = ""
        if _otlp_configured("metrics", environ):
            extra = f" + otlp {protocol} -> " + (
                environ.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") or endpoint)
        lines.append(f"metrics: prometheus on /metrics{extra}")
    logs = environ.get("OTEL_LOGS_EXPORTER")
    lines.append(f"logs: stderr + {logs} (OTEL_LOGS_EXPORTER)" if logs and logs.strip() != "none"
                 else "logs: stderr only (set OTEL_LOGS_EXPORTER=otlp to export)")
    lines.append(f"sampler: {environ.get('OTEL_TRACES_SAMPLER', 'parentbased_always_on')}")
    hook = environ.get("OTEL_INSTRUMENTATION_GENAI_COMPLETION_HOOK", "").strip()
    lines.append(f"message content: {content_mode(environ).value}"
                 + (f", to the completion hook {hook}" if hook else ""))
    lines.append(f"GenAI conventions: {semconv(environ).describe()}")
    fast = select(environ)
    lines.append(f"fast paths: {fast.describe()}"
                 + (f" ({fast.fallback})" if fast.fallback else ""))
    return lines

"""The gateway's own log records: to stderr as text or JSON lines, and through the
OpenTelemetry logs SDK when OTEL_LOGS_EXPORTER names exporters, each record carrying
the trace and span ids of the span current where it was logged.

The request path passes span contexts explicitly instead of making them current, so
code that logs on behalf of a request wraps the call in `within(context)`; both the
formatters here and the SDK's `LoggingHandler` then read the ids from the current
context. Log records carry no message content: what the gateway logs about a request
is its id, model and error type, never the body (see docs/observability.md).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator, Mapping
from typing import Any

import orjson
from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import get_current_span

from gateway import lograte

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def trace_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) in hex of the current span, if there is a valid one."""
    span_context = get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return f"{span_context.trace_id:032x}", f"{span_context.span_id:016x}"


class TextFormatter(logging.Formatter):
    """The usual text line, with ` trace_id=... span_id=...` when a span is current."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = trace_ids()
        if ids is None:
            return line
        first, newline, rest = line.partition("\n")  # after the message, before a traceback
        return f"{first} trace_id={ids[0]} span_id={ids[1]}{newline}{rest}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, trace_id/span_id, exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ids = trace_ids()
        if ids is not None:
            line["trace_id"], line["span_id"] = ids
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


def configure_stderr(level: str, log_format: str) -> None:
    """The root logger to stderr in `log_format` ("text" or "json") at `level`."""
    if log_format not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {log_format!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    # replaces an earlier plain stderr handler (basicConfig's), keeps any other
    root.handlers = [h for h in root.handlers if type(h) is not logging.StreamHandler]
    root.addHandler(handler)
    root.setLevel(level.upper())


@contextlib.contextmanager
def within(context: Context | None) -> Iterator[None]:
    """`context` current for the records logged inside (their trace and span ids)."""
    if context is None:
        yield
        return
    token = otel_context.attach(context)
    try:
        yield
    finally:
        otel_context.detach(token)


class OtelLogs:
    """A LoggerProvider exporting the root logger's records, attached until `shutdown`;
    rate-limited per message template like stderr (`gateway.lograte`), so that a flood
    of failing requests cannot flood the exporter."""

    def __init__(self, exporters: list[LogRecordExporter], resource: Resource,
                 level: int = logging.INFO, *, burst: int = lograte.BURST,
                 interval_s: float = lograte.INTERVAL_S) -> None:
        self.provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
        for exporter in exporters:
            self.provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
        self.handler = LoggingHandler(level=level, logger_provider=self.provider)
        # the SDK's and the exporters' own loggers would feed records back into it
        self.handler.addFilter(lambda record: not record.name.startswith("opentelemetry"))
        self.limiter = lograte.RateLimitFilter(burst, interval_s)
        self.handler.addFilter(self.limiter)
        logging.getLogger().addHandler(self.handler)

    def shutdown(self, timeout_millis: int) -> None:
        logging.getLogger().removeHandler(self.handler)
        self.provider.force_flush(timeout_millis)
        self.provider.shutdown()


def log_format_from(environ: Mapping[str, str]) -> str:
    return environ.get("GATEWAY_LOG_FORMAT", "text").strip().lower() or "text"

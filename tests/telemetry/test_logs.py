"""The gateway's log records: text or JSON lines on stderr and OTel log records, each
with the trace and span ids of the span current where it was logged."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import orjson
import pytest
from opentelemetry.context import Context
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, set_span_in_context

from gateway.telemetry.logs import OtelLogs, configure_stderr, within
from gateway.telemetry.setup import setup_telemetry

_log = logging.getLogger("gateway.test_logs")


@pytest.fixture
def request_context() -> Iterator[tuple[Context, str, str]]:
    """A request's context (as the path passes it around) and its span's ids in hex."""
    span = TracerProvider().get_tracer("t").start_span("POST /v1/chat/completions",
                                                      kind=SpanKind.SERVER)
    ids = span.get_span_context()
    yield set_span_in_context(span), f"{ids.trace_id:032x}", f"{ids.span_id:016x}"
    span.end()


@pytest.fixture
def root_handlers() -> Iterator[None]:
    """The root logger's handlers and level as they were, after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers, root.level = handlers, level


def test_json_lines_carry_trace_ids(request_context: tuple[Context, str, str],
                                    capsys: pytest.CaptureFixture[str],
                                    root_handlers: None) -> None:
    """--log-format json: one object per line, with trace_id/span_id inside a request only."""
    context, trace_id, span_id = request_context
    configure_stderr("info", "json")
    _log.info("startup done")
    with within(context):
        _log.warning("upstream %s failed", "up")
    first, second = [orjson.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert first["message"] == "startup done" and "trace_id" not in first
    assert second == {**second, "level": "WARNING", "logger": "gateway.test_logs",
                      "message": "upstream up failed", "trace_id": trace_id,
                      "span_id": span_id}
    assert second["time"].endswith("Z")


def test_text_lines_carry_trace_ids(request_context: tuple[Context, str, str],
                                    capsys: pytest.CaptureFixture[str],
                                    root_handlers: None) -> None:
    """--log-format text: the usual line, with trace_id/span_id appended inside a request."""
    context, trace_id, span_id = request_context
    configure_stderr("info", "text")
    with within(context):
        _log.error("refused")
    (line,) = capsys.readouterr().err.splitlines()
    assert line.endswith(f"ERROR gateway.test_logs: refused trace_id={trace_id} span_id={span_id}")


def test_unknown_format_is_refused() -> None:
    """A log format other than text or json is a clear error."""
    with pytest.raises(ValueError, match="text, json"):
        configure_stderr("info", "xml")


def test_otel_log_records_carry_trace_ids(request_context: tuple[Context, str, str],
                                          root_handlers: None) -> None:
    """Records go through the logs SDK with the request's trace and span ids; the SDK's
    own loggers are kept out (they would feed back into the exporter)."""
    context, trace_id, span_id = request_context
    exporter = InMemoryLogRecordExporter()
    logs = OtelLogs([exporter], Resource.create({"service.name": "gw"}))
    with within(context):
        _log.warning("budget notice")
    logging.getLogger("opentelemetry.sdk.test").warning("internal")
    logs.shutdown(2000)
    (record,) = [r.log_record for r in exporter.get_finished_logs()]
    assert record.body == "budget notice"
    assert (f"{record.trace_id:032x}", f"{record.span_id:016x}") == (trace_id, span_id)
    assert logs.handler not in logging.getLogger().handlers


def test_otel_logs_exporter_chosen_by_environment(root_handlers: None) -> None:
    """OTEL_LOGS_EXPORTER names the exporters; unset or none means stderr only."""
    assert setup_telemetry({}).logs is None
    assert setup_telemetry({"OTEL_LOGS_EXPORTER": "none"}).logs is None
    telemetry = setup_telemetry({"OTEL_LOGS_EXPORTER": "console"})
    try:
        assert telemetry.logs is not None and "logs:console" in telemetry.exporters
        assert telemetry.logs.handler in logging.getLogger().handlers
    finally:
        telemetry.shutdown(2.0)
    assert telemetry.logs.handler not in logging.getLogger().handlers

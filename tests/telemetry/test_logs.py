"""The gateway's log records: text or JSON lines on stderr and OTel log records, each
with the trace and span ids of the span current where it was logged."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import openai
import orjson
import pytest
from openai import AsyncOpenAI
from opentelemetry.context import Context
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, set_span_in_context

from gateway.telemetry.logs import OtelLogs, configure_stderr, within
from gateway.telemetry.setup import setup_telemetry
from tests.conftest import UPSTREAM_KEY
from tests.fakes.openai_upstream import Behaviour, RunningUpstream
from tests.support.gateway import running_gateway, upstream_config
from tests.support.telemetry import make_test_telemetry

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


def test_otel_log_handler_is_rate_limited(root_handlers: None) -> None:
    """A flood of one kind of record (upstream errors) reaches the exporter `burst` times,
    the last saying that more are held back; other kinds still pass."""
    exporter = InMemoryLogRecordExporter()
    logs = OtelLogs([exporter], Resource.create({}), burst=3, interval_s=60)
    for index in range(200):
        _log.warning("request %s: attempt on model %s failed", index, "gpt-4.1")
    _log.warning("budget notice")
    logs.shutdown(2000)
    bodies = [str(r.log_record.body) for r in exporter.get_finished_logs()]
    assert len(bodies) == 4 and bodies[-1] == "budget notice"
    assert bodies[2].startswith("request 2: attempt on model gpt-4.1 failed [more like this")


REQUEST_LOGS = """
budgets:
  - {name: watch, scope: global, limit_usd: 0.000001, action: alert}
  - {name: fuse, scope: model, model: cheap, limit_usd: 0.000001}
resilience:
  retry: {max_attempts: 1}
"""


@pytest.mark.integration
async def test_request_log_records_carry_their_spans_ids(
        upstream: RunningUpstream, capsys: pytest.CaptureFixture[str], root_handlers: None) -> None:
    """Refusals and budget notices carry the SERVER span's trace and span ids, upstream
    errors the failed attempt's CLIENT span's: in the logs SDK's records and on the JSON
    stderr lines alike."""
    configure_stderr("info", "json")
    tt = make_test_telemetry(logs=True)
    try:
        async with running_gateway(upstream_config(upstream.base_url, extra=REQUEST_LOGS),
                                   environ={"UPSTREAM_KEY": UPSTREAM_KEY}, telemetry=tt) as gw:
            async with AsyncOpenAI(base_url=gw.base_url, api_key="k", max_retries=0) as sdk:
                hi = [{"role": "user", "content": "hi"}]
                await sdk.chat.completions.create(model="gpt-4.1", messages=hi)  # type: ignore[arg-type]
                for model in ("cheap", "no-such-model"):
                    with pytest.raises(openai.APIStatusError):
                        await sdk.chat.completions.create(model=model, messages=hi)  # type: ignore[arg-type]
                upstream.state.behaviour = Behaviour(status=500)
                with pytest.raises(openai.InternalServerError):
                    await sdk.chat.completions.create(model="gpt-4.1", messages=hi)  # type: ignore[arg-type]
        records = [r.log_record for r in tt.logs()]
    finally:
        tt.close()
    spans = {(f"{s.context.trace_id:032x}", f"{s.context.span_id:016x}"): s.kind
             for s in tt.finished_spans()}
    expected = {"Budget 'watch' reached": SpanKind.SERVER,
                "Budget 'fuse' is refusing": SpanKind.SERVER,
                "refused: 429 budget_exceeded": SpanKind.SERVER,
                "refused: 404 model_not_found": SpanKind.SERVER,
                "failed: 500, status 500": SpanKind.CLIENT}
    lines = [orjson.loads(line) for line in capsys.readouterr().err.splitlines()]
    for fragment, kind in expected.items():
        record = next(r for r in records if fragment in str(r.body))
        ids = (f"{record.trace_id:032x}", f"{record.span_id:016x}")
        assert spans.get(ids) is kind, fragment
        line = next(line for line in lines if fragment in line["message"])
        assert (line["trace_id"], line["span_id"]) == ids, fragment

"""Privacy first: with content capture off, no prompt or completion text reaches any
exported byte (OTLP spans with their events and statuses, OTLP metrics, the Prometheus
text, log records on stderr and through the logs SDK with its events), even when the
upstream echoes the prompt in its errors."""

from __future__ import annotations

import logging

import openai
import pytest
from openai import AsyncOpenAI
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from gateway.telemetry.content import ContentMode
from tests.conftest import UPSTREAM_KEY
from tests.fakes.openai_upstream import Behaviour, RunningUpstream
from tests.support.gateway import RunningGateway, running_gateway, upstream_config
from tests.support.telemetry import make_test_telemetry

pytestmark = pytest.mark.integration  # a fake upstream and the gateway on ports

MARKER = "zebra-PROMPT-41f7"  # in every prompt; the fake echoes it in answers and errors


def _echoing_error(status: int) -> dict[str, object]:
    return {"error": {"message": f"Your input '{MARKER}' was refused", "type": "invalid_request",
                      "param": "messages", "code": f"refused_{status}"}}


SCENARIOS = [
    Behaviour(),  # the answer echoes the prompt
    Behaviour(status=400, body=_echoing_error(400)),
    Behaviour(status=500, body=f"upstream crashed on: {MARKER}".encode()),
    Behaviour(error_event_at=0, error_event=_echoing_error(500)),  # before the first token
    Behaviour(error_event_at=2, error_event=_echoing_error(500)),  # mid-stream
]


async def _calls(gw: RunningGateway, upstream: RunningUpstream) -> None:
    messages = [{"role": "system", "content": f"system {MARKER}"},
                {"role": "user", "content": f"say {MARKER}"}]
    async with AsyncOpenAI(base_url=gw.base_url, api_key="sk-x", max_retries=0) as sdk:
        for behaviour in SCENARIOS:
            upstream.state.behaviour = behaviour
            for stream in (False, True):
                try:
                    if stream:
                        async for _ in await sdk.chat.completions.create(
                                model="gpt-4.1", messages=messages, stream=True):  # type: ignore[arg-type]
                            pass
                    else:
                        await sdk.chat.completions.create(model="gpt-4.1",
                                                          messages=messages)  # type: ignore[arg-type]
                except openai.APIError:
                    pass
        upstream.state.behaviour = Behaviour()
        await sdk.embeddings.create(model="text-embedding-3-small", input=f"embed {MARKER}")


async def _exported(mode: ContentMode, upstream: RunningUpstream,
                    caplog: pytest.LogCaptureFixture) -> bytes:
    """Every byte the gateway's telemetry would export after the calls, in `mode`."""
    tt = make_test_telemetry(mode, logs=True)
    caplog.set_level(logging.DEBUG)
    try:
        async with running_gateway(upstream_config(upstream.base_url),
                                   environ={"UPSTREAM_KEY": UPSTREAM_KEY}, telemetry=tt) as gw:
            await _calls(gw, upstream)
            prometheus = tt.telemetry.metrics_text()
        otel_logs = encode_logs(tt.logs()).SerializeToString()
    finally:
        tt.close()
    spans = encode_spans(tt.finished_spans()).SerializeToString()
    data = tt.reader.get_metrics_data()
    assert data is not None
    metrics = encode_metrics(data).SerializeToString()
    logs = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records).encode()
    assert len(tt.finished_spans()) > 20 and b"gen_ai" in prometheus
    assert b"attempt on model" in otel_logs  # the upstream errors were logged there too
    return b"\n".join([spans, metrics, prometheus, logs, otel_logs])


async def test_no_content_anywhere_by_default(upstream: RunningUpstream,
                                              caplog: pytest.LogCaptureFixture) -> None:
    """Content off: the prompt, the echoed completion and the echoing errors are nowhere."""
    exported = await _exported(ContentMode.NO_CONTENT, upstream, caplog)
    assert MARKER.encode() not in exported


async def test_content_when_asked(upstream: RunningUpstream,
                                  caplog: pytest.LogCaptureFixture) -> None:
    """Content on (the same calls): the prompt is there, so the check above can fail."""
    exported = await _exported(ContentMode.SPAN_AND_EVENT, upstream, caplog)
    assert MARKER.encode() in exported

"""Content capture narrowed per key and per team (`telemetry.capture_content`): a narrowed
caller's calls carry no content in any span, span event, log record or OTel event, while
the other callers' calls still do."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import openai
import pytest
from openai import AsyncOpenAI
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from gateway.config import ConfigError, load
from gateway.telemetry.config import CaptureContent
from gateway.telemetry.content import ContentMode
from tests.conftest import UPSTREAM_KEY
from tests.fakes.openai_upstream import Behaviour, RunningUpstream
from tests.support import telemetry as support
from tests.support.gateway import RunningGateway, running_gateway, upstream_config
from tests.support.telemetry import make_test_telemetry

KEYS = {"quiet": "sk-quiet-0001", "loud": "sk-loud-0002", "other": "sk-other-0003"}
SCOPE = """
keys:
  - {alias: quiet, team: legal, key_env: QUIET_KEY}
  - {alias: loud, team: legal, key_env: LOUD_KEY}
  - {alias: other, team: support, key_env: OTHER_KEY}
telemetry:
  capture_content:
    teams: {legal: false}   # the legal team's calls carry no content...
    keys: {loud: true}      # ...except this key's: a key's setting wins over its team's
"""
ENVIRON = {"UPSTREAM_KEY": UPSTREAM_KEY, "QUIET_KEY": KEYS["quiet"], "LOUD_KEY": KEYS["loud"],
           "OTHER_KEY": KEYS["other"]}


def _marker(alias: str) -> str:
    return f"zebra-{alias}-7c1e"  # in each of that key's prompts; the fake echoes it


def test_key_wins_over_team_and_team_over_default() -> None:
    """A key's setting decides first, then its team's, then `default`."""
    scope = CaptureContent(default=False, keys={"k": True, "n": False}, teams={"t": True})
    assert scope.allows("k", "x") and not scope.allows("n", "t")
    assert scope.allows("a", "t") and not scope.allows("a", "x")
    assert CaptureContent().allows("anyone", "any team")


def test_config_refuses_non_boolean_switches() -> None:
    """`capture_content.keys` maps names to true or false; anything else is a clear error."""
    with pytest.raises(ConfigError, match=r"telemetry\.capture_content\.keys: must map each"):
        load(upstream_config("http://127.0.0.1:9") + "telemetry:\n  capture_content:\n"
             "    keys: {a: maybe}\n", {"UPSTREAM_KEY": UPSTREAM_KEY})


@pytest.fixture
async def captured(upstream: RunningUpstream) -> AsyncIterator[tuple[RunningGateway, support.TestTelemetry]]:
    tt = make_test_telemetry(ContentMode.SPAN_AND_EVENT, logs=True)
    try:
        async with running_gateway(upstream_config(upstream.base_url, extra=SCOPE),
                                   environ=ENVIRON, telemetry=tt) as gw:
            yield gw, tt
    finally:
        tt.close()


async def _calls(gw: RunningGateway, upstream: RunningUpstream, alias: str) -> None:
    """A chat call, a stream, an upstream error echoing the prompt and a mid-stream error."""
    marker = _marker(alias)
    messages = [{"role": "system", "content": f"system {marker}"},
                {"role": "user", "content": f"say {marker}"}]
    echo = {"error": {"message": f"Your input '{marker}' was refused", "type": "invalid_request",
                      "param": None, "code": "refused"}}
    async with AsyncOpenAI(base_url=gw.base_url, api_key=KEYS[alias], max_retries=0) as sdk:
        for behaviour, stream in ((Behaviour(), False), (Behaviour(), True),
                                  (Behaviour(status=400, body=echo), False),
                                  (Behaviour(error_event_at=2, error_event=echo), True)):
            upstream.state.behaviour = behaviour
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


@pytest.mark.integration
async def test_narrowed_callers_calls_carry_no_content(
        captured: tuple[RunningGateway, support.TestTelemetry], upstream: RunningUpstream,
        caplog: pytest.LogCaptureFixture) -> None:
    """SPAN_AND_EVENT on: the narrowed key's prompt, completion and echoed errors are in no
    exported span, event, log record or metric; the key allowed over its team's `false`
    and the key of a team not listed still get their content on spans and in events."""
    gw, tt = captured
    caplog.set_level(logging.DEBUG)
    for alias in KEYS:
        await _calls(gw, upstream, alias)
    spans = encode_spans(tt.finished_spans()).SerializeToString()
    logs = encode_logs(tt.logs()).SerializeToString()
    data = tt.reader.get_metrics_data()
    assert data is not None
    everything = b"\n".join([spans, logs, encode_metrics(data).SerializeToString(),
                             tt.telemetry.metrics_text(),
                             "\n".join(r.getMessage() for r in caplog.records).encode()])
    assert _marker("quiet").encode() not in everything
    events = [r.log_record for r in tt.logs() if r.log_record.event_name]
    for alias in ("loud", "other"):
        marker = _marker(alias).encode()
        assert marker in spans
        assert any(marker in str(e.attributes).encode() for e in events)
    quiet = [s for s in tt.spans_named("chat")
             if (s.attributes or {}).get("gateway.key.alias") == "quiet"]
    assert len(quiet) == 4 and not any("gen_ai.input.messages" in (s.attributes or {})
                                       for s in quiet)

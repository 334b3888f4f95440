"""Message content is captured only when OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT asks."""

from __future__ import annotations

import json

import pytest
from openai import AsyncOpenAI

from gateway.telemetry.content import ContentMode, content_mode
from tests.conftest import UPSTREAM_KEY
from tests.fakes.openai_upstream import Behaviour, RunningUpstream
from tests.support.gateway import running_gateway, upstream_config
from tests.support.telemetry import attrs, make_test_telemetry


@pytest.mark.parametrize(("raw", "mode"), [
    ("", ContentMode.NO_CONTENT), ("span_only", ContentMode.SPAN_ONLY),
    ("SPAN_AND_EVENT", ContentMode.SPAN_AND_EVENT), ("event_only", ContentMode.EVENT_ONLY),
])
def test_modes_parse_case_insensitively(raw: str, mode: ContentMode) -> None:
    """Documented values parse regardless of case."""
    assert content_mode({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": raw}) is mode


def test_true_means_no_content(caplog: pytest.LogCaptureFixture) -> None:
    """`true` is not a mode: it warns and captures nothing."""
    mode = content_mode({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"})
    assert mode is ContentMode.NO_CONTENT
    assert "capturing no content" in caplog.text


@pytest.mark.integration
async def test_span_only_records_messages(upstream: RunningUpstream) -> None:
    """SPAN_ONLY puts input, system instructions and output on the CLIENT span as JSON."""
    upstream.state.behaviour = Behaviour(content="Hi back")
    tt = make_test_telemetry(ContentMode.SPAN_ONLY)
    config = upstream_config(upstream.base_url)
    async with running_gateway(config, environ={"UPSTREAM_KEY": UPSTREAM_KEY}, telemetry=tt) as gw:
        async with AsyncOpenAI(base_url=gw.base_url, api_key="x", max_retries=0) as sdk:
            await sdk.chat.completions.create(model="gpt-4.1", messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hello"}])
    a = attrs(tt.spans_named("chat")[0])
    assert json.loads(a["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Hello"}]}]
    assert json.loads(a["gen_ai.system_instructions"]) == [{"type": "text", "content": "Be brief."}]
    output = json.loads(a["gen_ai.output.messages"])
    assert output[0]["parts"][0]["content"] == "Hi back" and output[0]["finish_reason"] == "stop"


async def _chat(gw_url: str, stream: bool) -> None:
    async with AsyncOpenAI(base_url=gw_url, api_key="x", max_retries=0) as sdk:
        messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
        if stream:
            async for _ in await sdk.chat.completions.create(
                    model="gpt-4.1", messages=messages, stream=True):  # type: ignore[arg-type]
                pass
        else:
            await sdk.chat.completions.create(model="gpt-4.1",
                                              messages=messages)  # type: ignore[arg-type]


@pytest.mark.integration
@pytest.mark.parametrize("stream", [False, True])
async def test_event_only_puts_content_in_the_details_event(upstream: RunningUpstream,
                                                            stream: bool) -> None:
    """EVENT_ONLY with a logs pipeline: the CLIENT span carries no content, and one
    gen_ai.client.inference.operation.details event (a log record in the span's context)
    carries input, system instructions and output with the call's attributes, its usage
    with the cache-read and reasoning parts as on the span."""
    upstream.state.behaviour = Behaviour(content="Hi back", cached_tokens=3, reasoning_tokens=2)
    tt = make_test_telemetry(ContentMode.EVENT_ONLY, logs=True)
    try:
        async with running_gateway(upstream_config(upstream.base_url),
                                   environ={"UPSTREAM_KEY": UPSTREAM_KEY}, telemetry=tt) as gw:
            await _chat(gw.base_url, stream)
        (span,) = tt.spans_named("chat")
        records = [r.log_record for r in tt.logs() if r.log_record.event_name]
    finally:
        tt.close()
    a = attrs(span)
    assert not {"gen_ai.input.messages", "gen_ai.output.messages",
                "gen_ai.system_instructions"} & set(a)
    assert span.events == ()
    (event,) = records
    assert event.event_name == "gen_ai.client.inference.operation.details"
    context = span.get_span_context()
    assert (event.trace_id, event.span_id) == (context.trace_id, context.span_id)
    e = dict(event.attributes or {})
    assert json.loads(e["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Hello"}]}]
    assert json.loads(e["gen_ai.system_instructions"]) == [{"type": "text", "content": "Be brief."}]
    assert json.loads(e["gen_ai.output.messages"])[0]["parts"][0]["content"] == "Hi back"
    for name in ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model",
                 "gen_ai.response.model", "gen_ai.response.id", "gen_ai.usage.input_tokens",
                 "gen_ai.usage.output_tokens", "server.address"):
        assert e[name] == a[name], name
    assert (e["gen_ai.usage.cache_read.input_tokens"],
            e["gen_ai.usage.reasoning.output_tokens"]) == (3, 2)
    assert a["gen_ai.usage.cache_read.input_tokens"] == 3


@pytest.mark.integration
async def test_details_event_on_the_span_without_a_logs_pipeline(upstream: RunningUpstream) -> None:
    """EVENT_ONLY without OTEL_LOGS_EXPORTER: the details event is an event on the CLIENT
    span (content in it, none in the span's attributes)."""
    upstream.state.behaviour = Behaviour(content="Hi back")
    tt = make_test_telemetry(ContentMode.EVENT_ONLY)
    async with running_gateway(upstream_config(upstream.base_url),
                               environ={"UPSTREAM_KEY": UPSTREAM_KEY}, telemetry=tt) as gw:
        await _chat(gw.base_url, False)
    (span,) = tt.spans_named("chat")
    assert "gen_ai.input.messages" not in attrs(span)
    (event,) = span.events
    assert event.name == "gen_ai.client.inference.operation.details"
    e = dict(event.attributes or {})
    assert "Hello" in e["gen_ai.input.messages"] and "Hi back" in e["gen_ai.output.messages"]
    assert e["gen_ai.request.model"] == "gpt-4.1"


@pytest.mark.integration
async def test_span_and_event_puts_content_in_both(upstream: RunningUpstream) -> None:
    """SPAN_AND_EVENT: the content is on the CLIENT span and in the details event."""
    upstream.state.behaviour = Behaviour(content="Hi back")
    tt = make_test_telemetry(ContentMode.SPAN_AND_EVENT)
    async with running_gateway(upstream_config(upstream.base_url),
                               environ={"UPSTREAM_KEY": UPSTREAM_KEY}, telemetry=tt) as gw:
        await _chat(gw.base_url, True)
    (span,) = tt.spans_named("chat")
    (event,) = span.events
    for name in ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions"):
        assert attrs(span)[name] == dict(event.attributes or {})[name]


def test_messages_blocks_become_semconv_parts() -> None:
    """A Messages conversation's tool_use, tool_result and thinking blocks are captured as
    the conventions' tool_call, tool_call_response and reasoning parts."""
    from gateway.telemetry.content import input_messages

    captured, _ = input_messages([
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "s"},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "12 C"}]}])
    assert json.loads(captured) == [
        {"role": "assistant", "parts": [
            {"type": "reasoning", "content": "hmm"},
            {"type": "tool_call", "id": "toolu_1", "name": "get_weather",
             "arguments": {"city": "Oslo"}}]},
        {"role": "user", "parts": [
            {"type": "tool_call_response", "id": "toolu_1", "response": "12 C"}]}]

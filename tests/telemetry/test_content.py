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

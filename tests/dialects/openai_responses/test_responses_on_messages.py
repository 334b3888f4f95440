"""A Responses client on a model served by Anthropic's Messages API: translated through
chat completions both ways, JSON and streamed (text and a tool call), with Anthropic's
usage and cost; and a Responses model that fails falling back to a Claude model."""

from __future__ import annotations

import pytest

from tests.fakes.anthropic_upstream import Behaviour
from tests.fakes.responses_upstream import Behaviour as ResponsesBehaviour
from tests.support.rig import Rig, rig_fixture

pytestmark = pytest.mark.integration  # sockets: fake upstreams, the gateway on a port

WEATHER = {"type": "function", "name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
MODELS = """
  claude-sonnet-4.5:
    provider: claude
    upstream_model: claude-sonnet-4-5
    price_per_mtok: {input: 3, output: 15}
  gpt-4.1:
    provider: responses
    price_per_mtok: {input: 2, output: 8}
    fallbacks: [claude-sonnet-4.5]
"""


rig = rig_fixture(MODELS)


async def test_responses_client_on_a_claude_model(rig: Rig) -> None:
    """create and stream reach the Messages API (system from instructions, tools in
    Anthropic's shape) and come back as Responses answers and events, usage included."""
    rig.claude.state.behaviour = Behaviour(text="Hello from Claude", input_tokens=40, output_tokens=7)
    async with rig.openai() as client:
        answer = await client.responses.create(model="claude-sonnet-4.5", input="hi",
                                               instructions="Be brief.", max_output_tokens=64)
        seen = rig.claude.state.last_request
        async with client.responses.stream(model="claude-sonnet-4.5", input="hi") as stream:
            kinds = [event.type async for event in stream]
            final = await stream.get_final_response()
        rig.claude.state.behaviour = Behaviour(tool_call=("get_weather", {"city": "Rome"}))
        called = await client.responses.create(model="claude-sonnet-4.5", input="weather?",
                                               tools=[WEATHER])
    assert answer.output_text == "Hello from Claude" and answer.model == "claude-sonnet-4.5"
    assert answer.usage is not None and answer.usage.input_tokens == 40
    assert seen.path == "/v1/messages" and seen.body["max_tokens"] == 64
    assert seen.body["system"] in ("Be brief.", [{"type": "text", "text": "Be brief."}])
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert final.output_text == "Hello from Claude" and final.usage is not None
    assert final.usage.output_tokens == 7
    call = called.output[0]
    assert call.type == "function_call" and call.arguments == '{"city":"Rome"}'
    span = rig.span("chat claude-sonnet-4.5")
    assert span["gen_ai.provider.name"] == "anthropic"


async def test_a_failing_responses_model_falls_back_to_claude(rig: Rig) -> None:
    """OpenAI answers 500: the stream falls back to Claude and is still a well-formed
    Responses stream."""
    rig.responses.state.behaviour = ResponsesBehaviour(status=500)
    rig.claude.state.behaviour = Behaviour(text="Claude to the rescue")
    async with rig.openai() as client, client.responses.stream(
            model="gpt-4.1", input="hi") as stream:
        events = [event async for event in stream]
        final = await stream.get_final_response()
    assert final.output_text == "Claude to the rescue"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].type == "response.completed"


async def test_a_cut_claude_stream_keeps_the_responses_numbering(rig: Rig) -> None:
    """Claude's stream ends before message_stop: the Responses client's last event is the
    gateway's `error`, numbered right after the translated events (both translations in a
    row number it as the last one does)."""
    rig.claude.state.behaviour = Behaviour(text="one two three four five six", close_after_events=4)
    async with rig.openai() as client, client.responses.stream(
            model="claude-sonnet-4.5", input="hi") as stream:
        events = [event async for event in stream]
    assert events[-1].type == "error" and len(events) > 2
    assert [e.sequence_number for e in events] == list(range(len(events)))

"""The OpenAI Agents SDK (which speaks only the Responses API) runs one agent turn through
the gateway: a tool call, the tool's result sent back, the final answer; against a fake
upstream in the Responses wire format and against the simulator, plain and streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest
from agents import Agent, OpenAIResponsesModel, RunConfig, Runner, function_tool

from tests.dialects.openai_responses.test_gateway_responses import GATEWAY, MODELS
from tests.fakes import responses_upstream as fake
from tests.support.rig import Rig, rig_fixture

pytestmark = pytest.mark.integration  # sockets: a fake upstream, the gateway on a port

NO_TRACING = RunConfig(tracing_disabled=True)  # the SDK would send its traces to OpenAI


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


rig = rig_fixture(MODELS, **GATEWAY)


@pytest.fixture
async def client(rig: Rig) -> AsyncIterator[openai.AsyncOpenAI]:
    async with rig.openai() as client:
        yield client


def _agent(client: openai.AsyncOpenAI, model: str) -> Agent:
    return Agent(name="forecaster", instructions="Answer with the weather tool.",
                 model=OpenAIResponsesModel(model=model, openai_client=client),
                 tools=[get_weather])


async def test_agent_turn_with_a_tool_call_against_a_responses_upstream(
        rig: Rig,
        client: openai.AsyncOpenAI) -> None:
    """Runner.run: the model asks for the tool, the SDK runs it and sends its output back as
    a function_call_output item, and the model's answer is the run's final output."""
    rig.responses.state.script = [fake.Behaviour(tool_call=("get_weather", '{"city":"Paris"}')),
                       fake.Behaviour(text="It is sunny in Paris.")]
    result = await Runner.run(_agent(client, "gpt-4.1"), "Weather in Paris?", run_config=NO_TRACING)
    assert result.final_output == "It is sunny in Paris."
    second = rig.responses.state.requests[1].body
    outputs = [i for i in second["input"] if i.get("type") == "function_call_output"]
    assert outputs == [{"call_id": "call_1", "output": "Sunny in Paris",
                        "type": "function_call_output"}]
    assert second["model"] == "gpt-4.1-2025-04-14"
    assert len(rig.gw.telemetry.spans_named("chat gpt-4.1")) == 2


async def test_streamed_agent_turn_against_a_responses_upstream(
        rig: Rig,
        client: openai.AsyncOpenAI) -> None:
    """Runner.run_streamed: the same turn over the relayed event streams."""
    rig.responses.state.script = [fake.Behaviour(tool_call=("get_weather", '{"city":"Oslo"}')),
                       fake.Behaviour(text="Sunny in Oslo today.")]
    result = Runner.run_streamed(_agent(client, "gpt-4.1"), "Weather in Oslo?", run_config=NO_TRACING)
    kinds = [event.type async for event in result.stream_events()]
    assert result.final_output == "Sunny in Oslo today."
    assert "run_item_stream_event" in kinds
    assert all(r.body.get("stream") for r in rig.responses.state.requests)


async def test_agent_turn_against_the_simulator(
        rig: Rig,
        client: openai.AsyncOpenAI) -> None:
    """With no key, the simulator answers an agent's turn, plain and streamed."""
    result = await Runner.run(_agent(client, "sim-gpt"), "Hello", run_config=NO_TRACING)
    streamed = Runner.run_streamed(_agent(client, "sim-gpt"), "Hello", run_config=NO_TRACING)
    async for _ in streamed.stream_events():
        pass
    assert isinstance(result.final_output, str) and result.final_output
    assert isinstance(streamed.final_output, str) and streamed.final_output


async def test_agent_turn_on_a_chat_only_model(
        rig: Rig,
        client: openai.AsyncOpenAI) -> None:
    """An agent on a model whose provider speaks only chat completions runs through the
    gateway's translation."""
    result = await Runner.run(_agent(client, "chat-only"), "Hello", run_config=NO_TRACING)
    assert result.final_output == "This is a fake reply to: Hello"

"""The fake Anthropic upstream speaks api.anthropic.com's wire format: the official SDK
accepts every shape it sends as real, and raises its own classes for its errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import orjson
import pytest

from tests.fakes import anthropic_wire as wire
from tests.fakes.anthropic_upstream import Behaviour, RunningAnthropic, running_anthropic

pytestmark = pytest.mark.integration  # sockets: a fake upstream, the gateway on a port

KEY = "sk-ant-test-0123456789"
MODEL = wire.DEFAULT_MODEL
HELLO: list[Any] = [{"role": "user", "content": "Say hello to the gateway"}]
WEATHER = {"name": "get_weather", "description": "Weather in a city",
           "input_schema": {"type": "object", "properties": {"location": {"type": "string"}},
                            "required": ["location"]}}


@pytest.fixture
async def up() -> AsyncIterator[RunningAnthropic]:
    async with running_anthropic(api_key=KEY) as upstream:
        yield upstream


@pytest.fixture
async def client(up: RunningAnthropic) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(base_url=up.base_url, api_key=KEY, max_retries=0) as sdk:
        yield sdk


async def test_create_parses_with_cache_usage(up: RunningAnthropic,
                                              client: anthropic.AsyncAnthropic) -> None:
    """A Messages create answer parses as the SDK's Message, usage split by cache TTL."""
    up.state.behaviour = Behaviour(text="Hello!", input_tokens=10, output_tokens=3,
                                   cache_write_5m=100, cache_write_1h=50, cache_read=7)
    message = await client.messages.create(model=MODEL, max_tokens=64, messages=HELLO)
    assert message.id.startswith("msg_01") and message.stop_reason == "end_turn"
    assert message.content[0].type == "text" and message.content[0].text == "Hello!"
    usage = message.usage
    assert (usage.input_tokens, usage.output_tokens) == (10, 3)
    assert (usage.cache_creation_input_tokens, usage.cache_read_input_tokens) == (150, 7)
    assert usage.cache_creation is not None
    assert usage.cache_creation.ephemeral_1h_input_tokens == 50
    headers = up.state.last_request.headers
    assert headers.get("x-api-key") == KEY or headers["authorization"] == f"Bearer {KEY}"
    assert headers["anthropic-version"]


async def test_stream_accumulates_like_the_api(client: anthropic.AsyncAnthropic,
                                               up: RunningAnthropic) -> None:
    """The SDK's stream helper assembles the text and takes output_tokens from message_delta."""
    up.state.behaviour = Behaviour(text="Hello there, gateway, nice to meet you", output_tokens=9)
    async with client.messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_message()
    assert final.content[0].type == "text"
    assert final.content[0].text == "Hello there, gateway, nice to meet you"
    assert final.usage.output_tokens == 9 and final.stop_reason == "end_turn"
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "content_block_delta" in kinds and "message_delta" in kinds


async def test_forced_tool_streams_its_input_json(client: anthropic.AsyncAnthropic) -> None:
    """tool_choice any answers a tool_use block whose input streams as input_json_delta."""
    async with client.messages.stream(model=MODEL, max_tokens=64, messages=HELLO,
                                      tools=[WEATHER],  # type: ignore[list-item]
                                      tool_choice={"type": "any"}) as stream:
        final = await stream.get_final_message()
    block = final.content[0]
    assert block.type == "tool_use" and block.name == "get_weather"
    assert block.input == {"location": "Paris"} and final.stop_reason == "tool_use"


async def test_thinking_block_streams_with_signature(client: anthropic.AsyncAnthropic,
                                                     up: RunningAnthropic) -> None:
    """A thinking block streams thinking_delta then signature_delta, as the API does."""
    up.state.behaviour = Behaviour(thinking="Let me think about it", text="Done")
    async with client.messages.stream(model=MODEL, max_tokens=2048, messages=HELLO) as stream:
        final = await stream.get_final_message()
    thinking = final.content[0]
    assert thinking.type == "thinking" and thinking.thinking == "Let me think about it"
    assert thinking.signature.startswith("EqQB")


@pytest.mark.parametrize(("status", "error_class"), [
    (400, anthropic.BadRequestError), (403, anthropic.PermissionDeniedError),
    (404, anthropic.NotFoundError), (413, anthropic.ContentTooLargeError),
    (429, anthropic.RateLimitError), (500, anthropic.InternalServerError),
    (529, anthropic.OverloadedError)])
async def test_error_statuses_raise_the_sdk_classes(status: int, error_class: type[Exception],
                                                    client: anthropic.AsyncAnthropic,
                                                    up: RunningAnthropic) -> None:
    """Each error status answers Anthropic's error body, which the SDK raises as its class."""
    up.state.behaviour = Behaviour.error(status, retry_after=2)
    with pytest.raises(error_class) as info:
        await client.messages.create(model=MODEL, max_tokens=8, messages=HELLO)
    assert isinstance(info.value, anthropic.APIStatusError)
    body = info.value.body
    assert isinstance(body, dict) and body["error"]["type"] == wire.ERROR_TYPES[status]
    assert info.value.response.headers["request-id"].startswith("req_011C")
    assert info.value.response.headers["retry-after"] == "2"


async def test_wrong_key_is_an_authentication_error(up: RunningAnthropic) -> None:
    """A wrong x-api-key is answered 401 authentication_error."""
    async with anthropic.AsyncAnthropic(base_url=up.base_url, api_key="nope", max_retries=0) as sdk:
        with pytest.raises(anthropic.AuthenticationError):
            await sdk.messages.create(model=MODEL, max_tokens=8, messages=HELLO)


async def test_error_event_mid_stream_raises(client: anthropic.AsyncAnthropic,
                                             up: RunningAnthropic) -> None:
    """An `error` event mid-stream is raised by the SDK's stream as an API error."""
    up.state.behaviour = Behaviour(error_event_at=3)
    with pytest.raises(anthropic.APIStatusError) as info:
        async with client.messages.stream(model=MODEL, max_tokens=8, messages=HELLO) as stream:
            async for _ in stream:
                pass
    assert "overloaded_error" in str(info.value)


async def test_count_tokens(client: anthropic.AsyncAnthropic) -> None:
    """count_tokens answers {"input_tokens": N} from the prompt's words."""
    counted = await client.messages.count_tokens(model=MODEL, messages=HELLO)
    assert counted.input_tokens == wire.count_input_tokens({"messages": HELLO})


async def test_missing_version_header_is_refused(up: RunningAnthropic) -> None:
    """Without anthropic-version the API answers 400, so a proxy that drops it is caught."""
    async with aiohttp.ClientSession() as session, session.post(
            up.base_url + "/v1/messages", headers={"x-api-key": KEY},
            data=orjson.dumps({"model": MODEL, "max_tokens": 8, "messages": HELLO})) as resp:
        body = await resp.json()
    assert resp.status == 400 and body["error"]["type"] == "invalid_request_error"

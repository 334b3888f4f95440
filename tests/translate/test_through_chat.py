"""Translations composed through chat completions, with the official SDKs as clients of
the real gateway: a Responses client and an Anthropic client on a `kind: gemini` model, a
google-genai client on a Claude model, JSON and streamed, with the upstream's own usage
and cost, fallbacks that cross the dialects, and a clear 400 in the client's shape for
what has no translation."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import anthropic
import openai
import pytest
from google.genai import errors as genai_errors
from google.genai import types

from tests.fakes.anthropic_upstream import Behaviour as ClaudeBehaviour
from tests.fakes.gemini_upstream import Behaviour
from tests.support.rig import GATEWAY_KEY, Rig
from tests.support.waiting import eventually

pytestmark = [
    pytest.mark.integration,  # sockets: fake upstreams, the gateway on a port
    # google-genai's async client subclasses aiohttp's ClientSession, which aiohttp warns of.
    pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning"),
]

WEATHER = {"type": "function", "name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
HELLO: Any = [{"role": "user", "content": "hello"}]


async def test_responses_client_on_a_gemini_model(rig: Rig) -> None:
    """responses.create and responses.stream reach generateContent (instructions as the
    system instruction, the output limit and a JSON schema in generationConfig) and come
    back as Responses answers and a well-formed typed stream, Gemini's usage (thinking
    tokens as reasoning) in the answer, on the span and in the ledger."""
    rig.google.state.behaviour = Behaviour(text="Hello from Gemini", prompt=30, candidates=5,
                                           thoughts=4)
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    async with rig.openai() as client:
        answer = await client.responses.create(
            model="gemini-2.5-flash", input="hi", instructions="Be brief.",
            max_output_tokens=64,
            text={"format": {"type": "json_schema", "name": "out", "schema": schema}})
        sent = rig.google.state.requests[-1]
        async with client.responses.stream(model="gemini-2.5-flash", input="hi") as stream:
            events = [event async for event in stream]
            final = await stream.get_final_response()
    assert answer.output_text == "Hello from Gemini" and answer.model == "gemini-2.5-flash"
    assert answer.usage is not None and answer.usage.input_tokens == 30
    assert answer.usage.output_tokens == 9
    assert answer.usage.output_tokens_details.reasoning_tokens == 4
    assert sent.path.endswith("/models/gemini-2.5-flash-001:generateContent")
    assert sent.body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    config = sent.body["generationConfig"]
    assert config["maxOutputTokens"] == 64 and config["responseJsonSchema"] == schema
    assert rig.google.state.requests[-1].path.endswith(":streamGenerateContent")
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert final.output_text == "Hello from Gemini"
    assert final.usage is not None and final.usage.output_tokens == 9
    span = rig.span("chat gemini-2.5-flash")
    assert span["gen_ai.provider.name"] == "gcp.gemini"
    assert span["gen_ai.usage.output_tokens"] == 9
    assert await eventually(lambda: len(rig.settled()) == 2)
    row = rig.ledger()[-1]
    assert (row.input_tokens, row.output_tokens, row.reasoning_tokens) == (30, 9, 4)
    assert row.cost_nanos > 0 and row.stream


async def test_responses_client_gets_geminis_function_call(rig: Rig) -> None:
    """A function tool goes to Gemini as a declaration, its call comes back as a
    function_call item, JSON and streamed."""
    rig.google.state.behaviour = Behaviour(function_call=("get_weather", {"city": "Rome"}))
    async with rig.openai() as client:
        called = await client.responses.create(model="gemini-2.5-flash", input="weather?",
                                               tools=[WEATHER], tool_choice="required")
        async with client.responses.stream(model="gemini-2.5-flash", input="weather?",
                                           tools=[WEATHER]) as stream:
            final = await stream.get_final_response()
    sent = rig.google.state.requests[0].body
    assert sent["tools"][0]["functionDeclarations"][0]["name"] == "get_weather"
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    for answer in (called, final):
        call = answer.output[0]
        assert call.type == "function_call" and call.name == "get_weather"
        assert call.arguments == '{"city":"Rome"}'


async def test_anthropic_client_on_a_gemini_model(rig: Rig) -> None:
    """messages.create and messages.stream on a Gemini model: the system prompt and the
    turns reach generateContent, the answer and the events come back in Anthropic's shape
    with Gemini's usage; a tool call becomes a tool_use block."""
    rig.google.state.behaviour = Behaviour(text="Hallo", prompt=11, candidates=2)
    async with rig.anthropic() as client:
        message = await client.messages.create(model="gemini-2.5-flash", max_tokens=50,
                                               system="Be German", messages=HELLO)
        sent = rig.google.state.requests[-1].body
        async with client.messages.stream(model="gemini-2.5-flash", max_tokens=50,
                                          messages=HELLO) as stream:
            streamed = await stream.get_final_message()
        rig.google.state.behaviour = Behaviour(function_call=("get_weather", {"city": "Bonn"}))
        called = await client.messages.create(
            model="gemini-2.5-flash", max_tokens=50, messages=HELLO,
            tools=[{"name": "get_weather", "input_schema": WEATHER["parameters"]}])
    assert message.content[0].type == "text" and message.content[0].text == "Hallo"
    assert message.usage.input_tokens == 11 and message.usage.output_tokens == 2
    assert message.model == "gemini-2.5-flash" and message.stop_reason == "end_turn"
    assert sent["systemInstruction"] == {"parts": [{"text": "Be German"}]}
    assert sent["generationConfig"]["maxOutputTokens"] == 50
    assert streamed.content[0].type == "text" and streamed.content[0].text == "Hallo"
    assert streamed.usage.output_tokens == 2 and streamed.stop_reason == "end_turn"
    block = called.content[0]
    assert block.type == "tool_use" and block.name == "get_weather"
    assert block.input == {"city": "Bonn"} and called.stop_reason == "tool_use"
    assert rig.span("chat gemini-2.5-flash")["gen_ai.provider.name"] == "gcp.gemini"


async def test_genai_client_on_a_claude_model(rig: Rig) -> None:
    """generate_content and generate_content_stream on a Claude model: Gemini's contents
    reach the Messages API, the answer and chunks come back in Gemini's shape with
    Anthropic's usage, costed at the Claude model's prices."""
    rig.claude.state.behaviour = ClaudeBehaviour(text="Hello from Claude", input_tokens=20,
                                                 output_tokens=4)
    client = rig.genai("v1beta")
    answer = await client.aio.models.generate_content(
        model="claude-sonnet-4.5", contents="Say hello",
        config=types.GenerateContentConfig(system_instruction="Be brief",
                                           max_output_tokens=40))
    sent = rig.claude.state.last_request
    chunks = [c async for c in await client.aio.models.generate_content_stream(
        model="claude-sonnet-4.5", contents="Say hello")]
    assert answer.text == "Hello from Claude"
    assert answer.usage_metadata is not None and answer.usage_metadata.prompt_token_count == 20
    assert answer.usage_metadata.candidates_token_count == 4
    assert sent.path == "/v1/messages" and sent.body["model"] == "claude-sonnet-4-5"
    assert sent.body["max_tokens"] == 40
    assert sent.body["system"] in ("Be brief", [{"type": "text", "text": "Be brief"}])
    assert "".join(c.text or "" for c in chunks) == "Hello from Claude"
    last = chunks[-1]
    assert last.candidates is not None and last.candidates[0].finish_reason == "STOP"
    assert last.usage_metadata is not None and last.usage_metadata.candidates_token_count == 4
    span = rig.span("generate_content claude-sonnet-4.5")
    assert span["gen_ai.provider.name"] == "anthropic"
    assert await eventually(lambda: len(rig.settled()) == 2)
    assert all(r.cost_nanos > 0 and r.output_tokens == 4 for r in rig.ledger())


async def test_fallbacks_cross_gemini_and_claude(rig: Rig) -> None:
    """A Responses stream whose Claude model fails is served by Gemini, and a Gemini
    stream whose model fails by Claude: each client still reads a well-formed stream of
    its own dialect."""
    rig.claude.state.behaviour = ClaudeBehaviour.error(529)
    rig.google.state.behaviour = Behaviour(text="Gemini to the rescue")
    async with rig.openai() as client, \
            client.responses.stream(model="claude-fallback", input="hi") as stream:
        events = [event async for event in stream]
        final = await stream.get_final_response()
    assert final.output_text == "Gemini to the rescue"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].type == "response.completed"

    rig.google.state.behaviour = Behaviour(status=503)
    rig.claude.state.behaviour = ClaudeBehaviour(text="Claude to the rescue")
    client2 = rig.genai("v1beta")
    chunks = [c async for c in await client2.aio.models.generate_content_stream(
        model="gemini-fallback", contents="hi")]
    assert "".join(c.text or "" for c in chunks) == "Claude to the rescue"
    last = chunks[-1]
    assert last.usage_metadata is not None and last.usage_metadata.candidates_token_count


async def test_untranslatable_request_is_a_clear_400(rig: Rig) -> None:
    """What has no meaning on the other side of chat is refused before any upstream is
    called, with a 400 in each client's own error shape: a built-in tool from a Responses
    client, extended thinking from an Anthropic client, Google Search from a Gemini one."""
    async with rig.openai() as client:
        with pytest.raises(openai.BadRequestError, match="web_search") as oai:
            await client.responses.create(model="gemini-2.5-flash", input="news?",
                                          tools=[{"type": "web_search"}])
    assert oai.value.status_code == 400
    async with rig.anthropic() as claude:
        with pytest.raises(anthropic.BadRequestError, match="thinking"):
            await claude.messages.create(model="gemini-2.5-flash", max_tokens=2048,
                                         messages=HELLO,
                                         thinking={"type": "enabled", "budget_tokens": 1024})
    client3 = rig.genai("v1beta")
    with pytest.raises(genai_errors.ClientError) as google:
        await client3.aio.models.generate_content(
            model="claude-sonnet-4.5", contents="news?",
            config=types.GenerateContentConfig(tools=[types.Tool(
                google_search=types.GoogleSearch())]))
    assert google.value.code == 400 and google.value.status == "INVALID_ARGUMENT"
    assert not rig.google.state.requests and not rig.claude.state.requests


async def test_upstream_errors_reach_each_client_in_its_shape(rig: Rig) -> None:
    """Gemini's 429 reaches an Anthropic client as its RateLimitError and a Responses
    client as OpenAI's; Claude's 429 reaches a google-genai client as RESOURCE_EXHAUSTED."""
    rig.google.state.behaviour = Behaviour(status=429)
    async with rig.anthropic() as claude:
        with pytest.raises(anthropic.RateLimitError):
            await claude.messages.create(model="gemini-2.5-flash", max_tokens=20,
                                         messages=HELLO)
    async with rig.openai() as client:
        with pytest.raises(openai.RateLimitError, match="fake upstream error 429"):
            await client.responses.create(model="gemini-2.5-flash", input="hi")
    rig.claude.state.behaviour = ClaudeBehaviour.error(429)
    google = rig.genai("v1beta")
    with pytest.raises(genai_errors.ClientError) as caught:
        await google.aio.models.generate_content(model="claude-sonnet-4.5", contents="hi")
    assert caught.value.code == 429 and caught.value.status == "RESOURCE_EXHAUSTED"


async def test_abandoned_composed_stream_is_charged_for_what_was_used(rig: Rig) -> None:
    """A Responses client that leaves a Gemini stream after its first events is charged
    the prompt and the output delivered so far, and the upstream stream is closed."""
    rig.google.state.behaviour = Behaviour(text=" ".join(["word"] * 40), chunk_words=4,
                                           chunk_delay_s=0.3, prompt=500, candidates=40)
    body = {"model": "gemini-2.5-flash", "input": "talk", "stream": True}
    headers = {"authorization": f"Bearer {GATEWAY_KEY}"}
    async with aiohttp.ClientSession() as session, session.post(
            f"{rig.gw.base_url}/responses", json=body, headers=headers) as response:
        assert response.status == 200
        seen = b""
        while b"response.output_text.delta" not in seen:
            seen += await response.content.readany()
        response.close()  # the client leaves half way
    await asyncio.wait_for(rig.google.state.stream_closed.wait(), 5)
    assert await eventually(rig.settled)
    row = rig.settled()[0]
    assert row.input_tokens == 500 and 0 < row.output_tokens < 40 and row.cost_nanos > 0

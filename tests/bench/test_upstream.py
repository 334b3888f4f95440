"""The benchmark's upstream speaks each dialect as its official client expects, and the bare
proxy relays every one of them with the upstream key where that dialect puts it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import anthropic
import openai
import orjson
import pytest
from aiohttp import web

from bench import bare_proxy, dialects, load, upstream, wire
from tests.fakes import anthropic_wire

KEY = "sk-bench"


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


@pytest.fixture
async def up() -> AsyncIterator[str]:
    runner, url = await _serve(upstream.create_app(KEY, 20))
    try:
        yield url
    finally:
        await runner.cleanup()


@pytest.fixture
async def bare(up: str) -> AsyncIterator[str]:
    runner, url = await _serve(bare_proxy.create_app(up, KEY))
    try:
        yield url
    finally:
        await runner.cleanup()


@pytest.mark.integration
async def test_messages_are_what_the_anthropic_sdk_reads(up: str) -> None:
    """A Messages answer and stream parse in the anthropic SDK: 20 text deltas, usage, end_turn."""
    client = anthropic.AsyncAnthropic(base_url=up, api_key=KEY, max_retries=0)
    message = await client.messages.create(model="claude-bench", max_tokens=64,
                                           messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].type == "text" and message.usage.output_tokens == 20
    deltas = 0
    async with client.messages.stream(model="claude-bench", max_tokens=64,
                                      messages=[{"role": "user", "content": "hi"}]) as stream:
        async for event in stream:
            deltas += event.type == "content_block_delta"
        final = await stream.get_final_message()
    assert deltas == 20
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 20
    assert final.content[0].type == "text" and final.content[0].text == "".join(wire.tokens(20))
    await client.close()


@pytest.mark.integration
async def test_responses_are_what_the_openai_sdk_reads(up: str) -> None:
    """A Responses answer and stream parse in the openai SDK, the stream ending in
    response.completed with the usage and consecutive sequence numbers."""
    client = openai.AsyncOpenAI(base_url=up + "/v1", api_key=KEY, max_retries=0)
    response = await client.responses.create(model="gpt-4.1", input="hi")
    assert response.output_text == "".join(wire.tokens(20))
    assert response.usage is not None and response.usage.output_tokens == 20
    events = [event async for event in await client.responses.create(model="gpt-4.1", input="hi",
                                                                       stream=True)]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert sum(e.type == "response.output_text.delta" for e in events) == 20
    last = events[-1]
    assert last.type == "response.completed"
    assert last.response.output_text == response.output_text
    assert last.response.usage is not None and last.response.usage.total_tokens > 20
    await client.close()


@pytest.mark.integration
async def test_gemini_streams_sse_framed_by_crlf_with_cumulative_usage(up: str) -> None:
    """Gemini's alt=sse stream: CRLF-framed data events, usage growing on each, STOP on the last;
    a wrong key gets Google's error shape."""
    path = dialects.GEMINI_MODEL + ":streamGenerateContent?alt=sse"
    headers = {"x-goog-api-key": KEY}
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{up}/v1beta/models/{path}", json=body, headers=headers) as resp:
            raw = await resp.read()
        async with session.post(f"{up}/v1beta/models/{path}", json=body,
                                headers={"x-goog-api-key": "wrong"}) as resp:
            error = await resp.json()
            status = resp.status
    events = [orjson.loads(e.removeprefix(b"data: ")) for e in raw.split(b"\r\n\r\n") if e]
    assert raw.endswith(b"\r\n\r\n") and len(events) == 20
    assert [e["usageMetadata"]["candidatesTokenCount"] for e in events] == list(range(1, 21))
    assert [e["candidates"][0].get("finishReason") for e in events][-2:] == [None, "STOP"]
    assert status == 400 and error["error"]["status"] == "INVALID_ARGUMENT"


@pytest.mark.integration
@pytest.mark.parametrize("name", list(dialects.ALL))
async def test_bare_proxy_relays_every_dialect_with_the_upstream_key(bare: str, name: str) -> None:
    """Each dialect's request, sent with a client key where that dialect puts it, gets a
    complete answer through the bare proxy (which swaps in the upstream's key)."""
    dialect = dialects.ALL[name]
    headers = dialect.request_headers("sk-client")
    for mode in dialect.modes(("json", "stream")):
        await load.check_answer(bare + dialect.path(mode), dialect.body(mode), "sk-client", headers,
                                dialect.stream_end)


@pytest.mark.integration
async def test_a_wrong_key_gets_each_dialects_error_and_404_means_not_served(up: str) -> None:
    """Without the upstream's key each dialect answers its own error; an unknown path is a 404,
    which the harness reads as 'not served' (a skip, not a failure)."""
    messages = dialects.ALL["messages"]
    async with aiohttp.ClientSession() as session:
        async with session.post(up + "/v1/messages", json=messages.json_body,
                                headers=messages.request_headers("sk-wrong")) as resp:
            body = await resp.json()
    assert resp.status == 401 and body["type"] == "error"
    assert body["error"]["type"] == anthropic_wire.ERROR_TYPES[401]
    with pytest.raises(load.NotServedError):
        await load.check_answer(up + "/v1/nothing", {"model": "x"}, KEY)
    with pytest.raises(load.LoadError, match="401"):
        await load.check_answer(up + "/v1/responses", {"model": "x", "input": "y"}, "sk-wrong")


def test_clock_models_name_their_events_and_gap() -> None:
    """bench-clock-<events>x<ms> gives the event count and the gap in seconds; others are None."""
    assert wire.parse_clock_model("bench-clock-300x100") == (300, 0.1)
    assert wire.parse_clock_model("bench-clock-1000x0") == (1000, 0.0)
    assert wire.parse_clock_model("gpt-4.1") is None
    assert wire.parse_clock_model("bench-clock-zx1") is None

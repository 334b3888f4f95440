"""Gemini's native API through the real gateway with the official `google-genai` SDK as
client: native to a fake Gemini upstream, translated to an OpenAI-format one (a fallback),
an OpenAI client reaching a `kind: gemini` model; usage, cost, errors and the key."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import aiohttp
import orjson
import pytest
from google.genai import errors as genai_errors
from google.genai import types

from tests.fakes.gemini_upstream import Behaviour
from tests.support.gateway import running_gateway
from tests.support.rig import GATEWAY_KEY, GEMINI_KEY, Rig, genai_client, rig_fixture, running_rig
from tests.support.telemetry import iter_points
from tests.support.waiting import eventually

pytestmark = [
    pytest.mark.integration,  # sockets: fake upstreams, the gateway on a port
    # google-genai's async client subclasses aiohttp's ClientSession, which aiohttp warns of.
    pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning"),
]

WEATHER = types.FunctionDeclaration(
    name="get_weather", description="Weather in a city",
    parameters_json_schema={"type": "object", "properties": {"city": {"type": "string"}},
                            "required": ["city"]})
MODELS = """
  gemini-2.5-flash:
    provider: google
    upstream_model: gemini-2.5-flash-001
    price_per_mtok: {input: 0.3, output: 2.5, cached_input: 0.075}
  gemini-fallback:
    provider: google
    upstream_model: gemini-2.5-flash-001
    price_per_mtok: {input: 0.3, output: 2.5}
    fallbacks: [gpt-4.1]
  gemini-embedding-001:
    provider: google
    price_per_mtok: {input: 0.15, output: 0}
  gpt-4.1:
    provider: chat
    price_per_mtok: {input: 2, output: 8}
"""


rig = rig_fixture(MODELS, alias="genai")


@pytest.mark.parametrize("version", ["v1", "v1beta"])
async def test_generate_content_reaches_the_native_upstream(rig: Rig, version: str) -> None:
    """generate_content on either API version: the upstream gets its own key on /v1beta with
    its model id, never the gateway key; the client gets Gemini's answer under the gateway's
    model name; the span and the ledger carry every kind of token at Gemini's prices."""
    rig.google.state.behaviour = Behaviour(text="Hello, gateway!", prompt=1000, cached=400,
                                           candidates=50, thoughts=120, tool_use_prompt=30)
    client = rig.genai(version)  # kept: the SDK closes its session when the client goes
    answer = await client.aio.models.generate_content(
        model="gemini-2.5-flash", contents="Say hello",
        config=types.GenerateContentConfig(temperature=0.2, max_output_tokens=300))
    assert answer.text == "Hello, gateway!"
    assert answer.model_version == "gemini-2.5-flash"
    assert answer.usage_metadata is not None and answer.usage_metadata.thoughts_token_count == 120
    seen = rig.google.state.requests[-1]
    assert seen.path == "/v1beta/models/gemini-2.5-flash-001:generateContent"
    assert seen.headers["x-goog-api-key"] == GEMINI_KEY
    assert GATEWAY_KEY not in orjson.dumps(seen.headers).decode()
    assert seen.body["generationConfig"]["maxOutputTokens"] == 300
    span = rig.span("generate_content gemini-2.5-flash")
    assert span["gen_ai.provider.name"] == "gcp.gemini"
    assert span["gen_ai.operation.name"] == "generate_content"
    assert span["gen_ai.request.max_tokens"] == 300 and span["gen_ai.request.temperature"] == 0.2
    assert span["gen_ai.usage.input_tokens"] == 1030
    assert span["gen_ai.usage.output_tokens"] == 170
    assert span["gen_ai.usage.cache_read.input_tokens"] == 400
    assert span["gen_ai.usage.reasoning.output_tokens"] == 120
    assert span["gen_ai.response.finish_reasons"] == ("STOP",)
    expected = (Decimal(630) * Decimal("0.3") + Decimal(400) * Decimal("0.075")
                + Decimal(170) * Decimal("2.5")) / 1_000_000
    assert span["gateway.cost.usd"] == pytest.approx(float(expected))
    tokens = {(p["gen_ai.token.type"], p["gen_ai.provider.name"]): point.sum
              for p, point in iter_points(rig.gw.telemetry, "gen_ai.client.token.usage")}
    assert tokens[("input", "gcp.gemini")] == 1030 and tokens[("output", "gcp.gemini")] == 170
    by_kind = {p["gen_ai.token.type"]: point.value
               for p, point in iter_points(rig.gw.telemetry, "gateway.tokens")}
    assert by_kind["cache_read"] == 400 and by_kind["reasoning"] == 120
    assert await eventually(rig.settled)  # not the reservation's pending row
    row = rig.settled()[0]
    assert (row.input_tokens, row.output_tokens, row.cached_tokens, row.reasoning_tokens) == (
        1030, 170, 400, 120)
    assert row.provider == "gcp.gemini" and row.key_alias == "genai"


async def test_stream_is_relayed_chunk_by_chunk_and_costed(rig: Rig) -> None:
    """generate_content_stream: the SDK reads every chunk and the finish reason; the final
    usageMetadata is what the span and ledger record."""
    rig.google.state.behaviour = Behaviour(text="one two three four five six", candidates=6,
                                           thoughts=10, prompt=20)
    client = rig.genai()  # kept: the SDK closes its session when the client goes
    chunks = [c async for c in await client.aio.models.generate_content_stream(
        model="gemini-2.5-flash", contents="count")]
    assert "".join(c.text or "" for c in chunks) == "one two three four five six"
    assert len(chunks) == 3
    assert chunks[-1].candidates is not None
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert rig.google.state.requests[-1].query == {"alt": "sse"}
    assert await eventually(rig.settled)  # not the reservation's pending row
    row = rig.settled()[0]
    assert (row.input_tokens, row.output_tokens, row.reasoning_tokens) == (20, 16, 10)
    assert row.stream
    span = rig.span("generate_content gemini-2.5-flash")
    assert span["gen_ai.request.stream"] is True and span["gateway.stream.end"] == "done"


async def test_count_tokens_and_embed_content(rig: Rig) -> None:
    """count_tokens is forwarded and answered as Gemini does; embed_content (which the SDK
    sends as batchEmbedContents) returns one vector per input."""
    client = rig.genai()
    counted = await client.aio.models.count_tokens(model="gemini-2.5-flash", contents="hi")
    assert counted.total_tokens == 12
    embedded = await client.aio.models.embed_content(model="gemini-embedding-001",
                                                     contents=["a", "b"])
    assert embedded.embeddings is not None and len(embedded.embeddings) == 2
    assert embedded.embeddings[0].values == [0.1, 0.2, 0.3]
    assert rig.google.state.requests[-1].path.endswith(
        "/models/gemini-embedding-001:batchEmbedContents")
    span = rig.span("embeddings gemini-embedding-001")
    assert span["gen_ai.usage.input_tokens"] > 0


async def test_errors_take_googles_shape(rig: Rig) -> None:
    """An upstream 429, an unknown model and a wrong key reach the SDK as its own
    ClientError with Google's code and status."""
    rig.google.state.behaviour = Behaviour(status=429)
    with pytest.raises(genai_errors.ClientError) as caught:
        client = rig.genai()  # kept: the SDK closes its session when the client goes
        await client.aio.models.generate_content(model="gemini-2.5-flash", contents="x")
    assert caught.value.code == 429 and caught.value.status == "RESOURCE_EXHAUSTED"
    with pytest.raises(genai_errors.ClientError) as caught:
        client = rig.genai()  # kept: the SDK closes its session when the client goes
        await client.aio.models.generate_content(model="nope", contents="x")
    assert caught.value.code == 404 and caught.value.status == "NOT_FOUND"
    wrong = rig.genai("v1beta", key="sk-wrong")  # the SDK's own default version
    with pytest.raises(genai_errors.ClientError) as caught:
        await wrong.aio.models.generate_content(model="gemini-2.5-flash", contents="x")
    assert caught.value.code == 401 and caught.value.status == "UNAUTHENTICATED"


async def test_key_in_the_query_is_accepted_and_never_recorded(rig: Rig) -> None:
    """`?key=` authenticates like x-goog-api-key, and the key appears on no span."""
    url = f"{rig.gw.root}/v1beta/models/gemini-2.5-flash:generateContent?key={GATEWAY_KEY}"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
        assert response.status == 200, await response.text()
        payload = await response.json()
    assert payload["candidates"][0]["content"]["parts"][0]["text"] == "hi"
    for span in rig.gw.telemetry.finished_spans():
        assert GATEWAY_KEY not in orjson.dumps(dict(span.attributes or {})).decode()


async def test_stream_falls_back_to_a_chat_model_as_a_gemini_stream(rig: Rig) -> None:
    """A Gemini client whose model fails falls back to an OpenAI-format model and still
    reads a well-formed Gemini stream, with the usage the upstream reported."""
    rig.google.state.behaviour = Behaviour(status=503)
    client = rig.genai()  # kept: the SDK closes its session when the client goes
    chunks = [c async for c in await client.aio.models.generate_content_stream(
        model="gemini-fallback", contents="Say hello")]
    text = "".join(c.text or "" for c in chunks)
    assert text
    last = chunks[-1]
    assert last.candidates is not None and last.candidates[0].finish_reason == "STOP"
    assert last.usage_metadata is not None and last.usage_metadata.prompt_token_count
    sent = rig.chat.state.requests[-1].body
    assert sent["messages"][-1]["role"] == "user" and sent["stream"] is True
    assert await eventually(lambda: [r for r in rig.ledger() if r.model_served == "gpt-4.1"])
    rows = [r for r in rig.ledger() if r.model_served == "gpt-4.1"]
    assert rows[0].output_tokens > 0


async def test_json_falls_back_to_a_chat_model(rig: Rig) -> None:
    """A generate_content whose model fails is answered by the fallback's translated reply."""
    rig.google.state.behaviour = Behaviour(status=500)
    client = rig.genai()  # kept: the SDK closes its session when the client goes
    answer = await client.aio.models.generate_content(model="gemini-fallback",
                                                            contents="Say hello")
    assert answer.text and answer.usage_metadata is not None
    assert answer.usage_metadata.candidates_token_count


async def test_openai_client_reaches_a_gemini_model(rig: Rig) -> None:
    """An OpenAI chat client of a `kind: gemini` model: JSON and streamed, a tool call, the
    usage reported back in OpenAI's shape."""
    rig.google.state.behaviour = Behaviour(text="Bonjour", prompt=9, candidates=3, thoughts=4)
    async with rig.openai() as client:
        answer = await client.chat.completions.create(
            model="gemini-2.5-flash", messages=[{"role": "system", "content": "Be French"},
                                                {"role": "user", "content": "hello"}])
        assert answer.choices[0].message.content == "Bonjour"
        assert answer.usage is not None and answer.usage.completion_tokens == 7
        sent = rig.google.state.requests[-1].body
        assert sent["systemInstruction"] == {"parts": [{"text": "Be French"}]}
        stream = await client.chat.completions.create(
            model="gemini-2.5-flash", messages=[{"role": "user", "content": "hello"}],
            stream=True, stream_options={"include_usage": True})
        pieces = [c async for c in stream]
        assert "".join(c.choices[0].delta.content or "" for c in pieces if c.choices) == "Bonjour"
        assert pieces[-1].usage is not None and pieces[-1].usage.prompt_tokens == 9
        rig.google.state.behaviour = Behaviour(function_call=("get_weather", {"city": "Paris"}))
        called = await client.chat.completions.create(
            model="gemini-2.5-flash", messages=[{"role": "user", "content": "weather?"}],
            tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {
                "type": "object", "properties": {"city": {"type": "string"}}}}}],
            tool_choice="required")
    call = called.choices[0].message.tool_calls
    assert call is not None and call[0].function.name == "get_weather"  # type: ignore[union-attr]
    assert orjson.loads(call[0].function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]
    assert called.choices[0].finish_reason == "tool_calls"
    sent = rig.google.state.requests[-1].body
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    assert sent["tools"][0]["functionDeclarations"][0]["name"] == "get_weather"


async def test_abandoned_stream_is_charged_for_what_was_used(rig: Rig) -> None:
    """A client that leaves after the first chunk is charged the prompt and the output
    delivered so far, and the upstream stream is closed."""
    rig.google.state.behaviour = Behaviour(
        text=" ".join(["word"] * 40), chunk_words=4, chunk_delay_s=0.3, prompt=500,
        candidates=40)
    url = f"{rig.gw.root}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    body = {"contents": [{"role": "user", "parts": [{"text": "talk"}]}]}
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json=body,
                                headers={"x-goog-api-key": GATEWAY_KEY}) as response:
            first = await response.content.readuntil(b"\n\n")
            assert first.startswith(b"data: ")
            response.close()  # the client leaves half way
    await asyncio.wait_for(rig.google.state.stream_closed.wait(), 5)
    assert await eventually(lambda: [r for r in rig.ledger() if r.status != "pending"])
    row = rig.ledger()[0]
    assert row.input_tokens == 500
    assert 0 < row.output_tokens < 40
    assert row.cost_nanos > 0


async def test_function_declarations_pass_through_natively(rig: Rig) -> None:
    """A function call answered by the upstream reaches the SDK as its function_calls."""
    rig.google.state.behaviour = Behaviour(function_call=("get_weather", {"city": "Oslo"}))
    client = rig.genai()  # kept: the SDK closes its session when the client goes
    answer = await client.aio.models.generate_content(
        model="gemini-2.5-flash", contents="weather in Oslo?",
        config=types.GenerateContentConfig(tools=[types.Tool(function_declarations=[WEATHER])]))
    assert answer.function_calls is not None
    assert answer.function_calls[0].name == "get_weather"
    assert answer.function_calls[0].args == {"city": "Oslo"}
    sent = rig.google.state.requests[-1].body
    assert sent["tools"][0]["functionDeclarations"][0]["name"] == "get_weather"


async def test_budget_refusal_is_resource_exhausted() -> None:
    """A blocking budget refuses a Gemini call in Google's shape (429 RESOURCE_EXHAUSTED,
    which the SDK raises as its ClientError), before anything reaches the upstream."""
    budget = "budgets:\n  - {name: fuse, scope: global, window: day, limit_usd: 0.0001, action: block}"
    async with running_rig(MODELS, alias="genai", extra=budget) as rig:
        client = rig.genai("v1beta")
        with pytest.raises(genai_errors.ClientError) as caught:
            await client.aio.models.generate_content(
                model="gemini-2.5-flash", contents="hi",
                config=types.GenerateContentConfig(max_output_tokens=60_000))
        assert caught.value.code == 429 and caught.value.status == "RESOURCE_EXHAUSTED"
        assert "budget" in (caught.value.message or "").lower()
        assert rig.google.state.requests == []

SIM_CONFIG = """
providers:
  sim: {kind: mock, mock: {latency_ms: 0, ms_per_chunk: 0, completion_tokens: 9, jitter: 0}}
models:
  gemini-2.5-flash: {provider: sim, price_per_mtok: {input: 0.3, output: 2.5}}
  gemini-embedding-001: {provider: sim, price_per_mtok: {input: 0.15, output: 0}}
"""


async def test_the_simulator_speaks_gemini_to_the_sdk() -> None:
    """With no key, the simulator answers every Gemini call the SDK makes in Gemini's wire
    format: text with thinking tokens, a stream, a required function call, counts, vectors."""
    async with running_gateway(SIM_CONFIG, environ={}) as gw:
        client = genai_client(gw.root, "unused", "v1beta")
        answer = await client.aio.models.generate_content(model="gemini-2.5-flash",
                                                          contents="hello there")
        metadata = answer.usage_metadata
        assert answer.text and metadata is not None
        assert metadata.candidates_token_count == 9 and metadata.thoughts_token_count == 18
        chunks = [c async for c in await client.aio.models.generate_content_stream(
            model="gemini-2.5-flash", contents="hello there",
            config=types.GenerateContentConfig(
                thinking_config=types.ThinkingConfig(thinking_budget=0)))]
        assert len(chunks) > 1 and "".join(c.text or "" for c in chunks).split() == \
            (answer.text or "").split()
        last = chunks[-1].usage_metadata
        assert last is not None and last.thoughts_token_count is None
        called = await client.aio.models.generate_content(
            model="gemini-2.5-flash", contents="weather in Oslo?",
            config=types.GenerateContentConfig(
                tools=[types.Tool(function_declarations=[WEATHER])],
                tool_config=types.ToolConfig(function_calling_config=types.FunctionCallingConfig(
                    mode=types.FunctionCallingConfigMode.ANY))))
        assert called.function_calls is not None
        assert called.function_calls[0].name == "get_weather"
        assert called.function_calls[0].args == {"city": "simulated"}
        counted = await client.aio.models.count_tokens(model="gemini-2.5-flash",
                                                       contents="hello there")
        assert counted.total_tokens and counted.total_tokens > 0
        embedded = await client.aio.models.embed_content(model="gemini-embedding-001",
                                                         contents="x")
        assert embedded.embeddings is not None and len(embedded.embeddings[0].values or []) == 256
        span = dict(gw.telemetry.spans_named("generate_content gemini-2.5-flash")[0].attributes
                    or {})
        assert span["gen_ai.provider.name"] == "simulated"
        assert span["gen_ai.usage.reasoning.output_tokens"] == 18


async def test_count_tokens_of_a_chat_model_is_the_gateways_estimate(rig: Rig) -> None:
    """countTokens for a model whose provider does not speak Gemini is answered by the
    gateway from its estimate, never sent upstream; embedding with a chat model is a 400."""
    client = rig.genai()
    counted = await client.aio.models.count_tokens(model="gpt-4.1", contents="hello there")
    assert counted.total_tokens == 4 + 3  # 4 per turn, about 4 characters a token
    assert rig.chat.state.requests == []
    with pytest.raises(genai_errors.ClientError) as caught:
        await client.aio.models.embed_content(model="gpt-4.1", contents="x")
    assert caught.value.code == 400 and caught.value.status == "INVALID_ARGUMENT"

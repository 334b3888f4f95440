"""`/v1/messages` through the real gateway with the official `anthropic` SDK as client:
native to a fake Anthropic upstream, translated to an OpenAI-format one, and an OpenAI
client reaching a `kind: anthropic` model; telemetry and cost exactly as Anthropic bills."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import aiohttp
import anthropic
import orjson
import pytest

from gateway.telemetry.content import ContentMode
from gateway.telemetry.semconv import Semconv
from tests.fakes import anthropic_upstream as fake
from tests.fakes.anthropic_upstream import Behaviour
from tests.support.rig import ANTHROPIC_KEY, GATEWAY_KEY, Rig, rig_fixture, running_rig, running_upstreams
from tests.support.telemetry import attrs, iter_points, make_test_telemetry
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration  # sockets: a fake upstream, the gateway on a port

HELLO: list[Any] = [{"role": "user", "content": "Say hello to the gateway"}]
WEATHER = {"name": "get_weather", "description": "Weather in a city",
           "input_schema": {"type": "object", "properties": {"location": {"type": "string"}},
                            "required": ["location"]}}
MODELS = """
  claude-sonnet-4.5:
    provider: claude
    upstream_model: claude-sonnet-4-5-20250929
    price_per_mtok: {input: 3, output: 15}
  claude-fallback:
    provider: claude
    upstream_model: claude-sonnet-4-5-20250929
    price_per_mtok: {input: 3, output: 15}
    fallbacks: [gpt-4.1]
    first_token_timeout_s: 0.5
  gpt-4.1:
    provider: chat
    upstream_model: gpt-4.1
    price_per_mtok: {input: 2.5, output: 8, cached_input: 0.625}
  sim-claude:
    provider: sim
    price_per_mtok: {input: 3, output: 15}
"""


rig = rig_fixture(MODELS, alias="claude-code")


async def test_create_reaches_the_native_upstream(rig: Rig) -> None:
    """messages.create through the gateway: the upstream gets its own key, its model id and
    the client's version and beta headers; the client gets Anthropic's answer and headers."""
    rig.claude.state.behaviour = Behaviour(text="Hello, gateway!")
    async with rig.anthropic() as client:
        raw = await client.messages.with_raw_response.create(
            model="claude-sonnet-4.5", max_tokens=64, messages=HELLO,
            extra_headers={"anthropic-beta": "prompt-caching-2024-07-31,token-efficient-tools"})
    message = await raw.parse()
    assert message.content[0].type == "text" and message.content[0].text == "Hello, gateway!"
    assert message.model == "claude-sonnet-4.5"  # the gateway's name, as with chat
    assert raw.headers["request-id"].startswith("req_011C")
    assert raw.headers["anthropic-ratelimit-requests-limit"] == "4000"
    seen = rig.claude.state.last_request
    assert seen.path == "/v1/messages" and seen.body["model"] == "claude-sonnet-4-5-20250929"
    assert seen.headers["x-api-key"] == ANTHROPIC_KEY and "authorization" not in seen.headers
    assert seen.headers["anthropic-beta"] == "prompt-caching-2024-07-31,token-efficient-tools"
    assert seen.headers["anthropic-version"] == raw.http_request.headers["anthropic-version"]
    assert GATEWAY_KEY not in orjson.dumps(seen.headers).decode()
    span = rig.span("chat claude-sonnet-4.5")
    assert span["gen_ai.provider.name"] == "anthropic"
    assert span["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert span["gen_ai.response.id"] == message.id
    assert span["gateway.key.alias"] == "claude-code"


async def test_request_fields_reach_a_native_upstream_untouched(rig: Rig) -> None:
    """system, tools, tool_choice, thinking, metadata, stop_sequences, top_k, cache_control,
    images and documents reach a native upstream as the client sent them: only `model`
    becomes the upstream id."""
    image = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
    pdf = {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQK"}
    sent: dict[str, Any] = {
        "model": "claude-sonnet-4.5", "max_tokens": 2048, "top_k": 5, "temperature": 1,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral",
                                                                           "ttl": "1h"}}],
        "messages": [{"role": "user", "content": [
            {"type": "image", "source": image},
            {"type": "document", "source": pdf, "title": "spec", "citations": {"enabled": True}},
            {"type": "text", "text": "Summarise both", "cache_control": {"type": "ephemeral"}}]}],
        "tools": [WEATHER], "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "metadata": {"user_id": "user-7"}, "stop_sequences": ["\n\nHuman:"],
    }
    async with aiohttp.ClientSession() as http, http.post(
            f"{rig.gw.root}/v1/messages", data=orjson.dumps(sent),
            headers={"x-api-key": GATEWAY_KEY, "anthropic-version": "2023-06-01"}) as resp:
        assert resp.status == 200, await resp.text()
    assert rig.claude.state.last_request.body == {**sent, "model": "claude-sonnet-4-5-20250929"}


async def test_claude_codes_user_id_is_the_calls_end_user(rig: Rig) -> None:
    """metadata.user_id as Claude Code sends it becomes the call's end user, bounded to 128
    characters, on the SERVER span and in the ledger, and is a label of no metric."""
    user_id = ("user_" + "9f" * 32 + "_account_0f8fad5b-d9cb-469f-a165-70867728950e"
               "_session_7c9e6679-7425-40de-944b-e07fc1f90ae7")
    async with rig.anthropic() as client:
        await client.messages.create(model="claude-sonnet-4.5", max_tokens=16, messages=HELLO,
                                     metadata={"user_id": user_id})
    assert rig.claude.state.last_request.body["metadata"] == {"user_id": user_id}
    assert await eventually(lambda: rig.ledger())
    row = rig.ledger()[-1]
    assert len(row.end_user) == 128 and row.end_user.startswith(user_id[:100])
    server = [attrs(s) for s in rig.gw.telemetry.spans_named("POST /v1/messages")]
    assert server[-1]["user.id"] == row.end_user
    for metric in ("gateway.requests", "gateway.tokens", "gateway.cost.usd"):
        for labels, _ in iter_points(rig.gw.telemetry, metric):
            assert user_id[:20] not in str(labels)


async def test_messages_calls_are_retried_like_chat_calls() -> None:
    """A 529 from Claude is retried on the same model (the chain is the same for every
    dialect): the client gets the second attempt's answer, the trace both attempts."""
    retry = "{max_attempts: 2, initial_backoff_s: 0.01}"
    async with running_rig(MODELS, alias="claude-code", retry=retry) as rig, \
            rig.anthropic() as client:
        rig.claude.state.queue.append(Behaviour.error(529))
        rig.claude.state.behaviour = Behaviour(text="second time lucky")
        message = await client.messages.create(model="claude-sonnet-4.5", max_tokens=16,
                                               messages=HELLO)
        await asyncio.sleep(0.05)
        spans = [attrs(s) for s in rig.gw.telemetry.spans_named("chat claude-sonnet-4.5")]
    assert message.content[0].type == "text" and message.content[0].text == "second time lucky"
    assert len(rig.claude.state.requests) == 2
    assert [(s["gateway.attempt"], s.get("error.type")) for s in spans] == [(1, "529"), (2, None)]


async def test_runaway_guard_holds_a_messages_loop() -> None:
    """The same Messages request over and over from one key is a loop: past the threshold
    the guard answers 429 in Anthropic's shape, before the upstream."""
    runaway = "spend:\n  runaway: {action: throttle, loop_threshold: 2}\n"
    async with running_rig(MODELS, alias="claude-code", extra=runaway) as rig, \
            rig.anthropic() as client:
        for _ in range(2):
            await client.messages.create(model="claude-sonnet-4.5", max_tokens=16,
                                         messages=HELLO)
        with pytest.raises(anthropic.RateLimitError) as info:
            await client.messages.create(model="claude-sonnet-4.5", max_tokens=16,
                                         messages=HELLO)
    assert info.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert "same request" in info.value.body["error"]["message"]  # type: ignore[index]
    assert len(rig.claude.state.requests) == 2


async def test_beta_query_reaches_a_native_upstream_only(rig: Rig) -> None:
    """Claude Code (the TypeScript SDK's beta client) calls `/v1/messages?beta=true`: a
    native upstream gets the `beta` parameter and nothing else of the query; an
    OpenAI-format upstream none of it."""
    async with aiohttp.ClientSession() as http:
        for model, query in (("claude-sonnet-4.5", "beta=true"),
                             ("claude-sonnet-4.5", "other=x&beta=true"), ("gpt-4.1", "beta=true")):
            body = orjson.dumps({"model": model, "max_tokens": 8, "messages": HELLO})
            async with http.post(f"{rig.gw.root}/v1/messages?{query}", data=body,
                                 headers={"x-api-key": GATEWAY_KEY}) as resp:
                assert resp.status == 200, await resp.text()
    assert [r.query for r in rig.claude.state.requests] == ["beta=true", "beta=true"]
    assert [(r.path, r.query) for r in rig.chat.state.requests] == [("/v1/chat/completions", "")]


async def test_streamed_caching_call_is_costed_to_the_micro_dollar(rig: Rig) -> None:
    """A stream with 5-minute writes, 1-hour writes and reads: span usage, the token metric
    and the cost agree with a hand computation at 1.25x, 2x and 0.1x of the input price."""
    rig.claude.state.behaviour = Behaviour(
        text="Cached answer streamed in pieces", input_tokens=1_200, output_tokens=850,
        cache_write_5m=20_000, cache_write_1h=8_000, cache_read=150_000)
    async with rig.anthropic() as client, client.messages.stream(
            model="claude-sonnet-4.5", max_tokens=1024, messages=HELLO) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "Cached answer streamed in pieces" and final.usage.output_tokens == 850
    await asyncio.sleep(0.05)
    span = rig.span("chat claude-sonnet-4.5")
    total_input = 1_200 + 20_000 + 8_000 + 150_000
    assert span["gen_ai.usage.input_tokens"] == total_input
    assert span["gen_ai.usage.output_tokens"] == 850
    assert span["gen_ai.usage.cache_read.input_tokens"] == 150_000
    assert span["gen_ai.usage.cache_creation.input_tokens"] == 28_000
    # $3/Mtok input, $15/Mtok output: 1,200 x 3 + 20,000 x 3.75 + 8,000 x 6 + 150,000 x 0.3
    # + 850 x 15 micro-dollars.
    expected = (1_200 * Decimal(3) + 20_000 * Decimal("3.75") + 8_000 * Decimal(6)
                + 150_000 * Decimal("0.3") + 850 * Decimal(15)) / 10**6
    assert expected == Decimal("0.18435")
    assert span["gateway.cost.usd"] == pytest.approx(float(expected), abs=1e-9)
    tokens = {(p["gen_ai.token.type"], p["gen_ai.request.model"]): point.sum
              for p, point in iter_points(rig.gw.telemetry, "gen_ai.client.token.usage")}
    assert tokens[("input", "claude-sonnet-4.5")] == total_input
    assert tokens[("output", "claude-sonnet-4.5")] == 850
    costs = [point.value for p, point in iter_points(rig.gw.telemetry, "gateway.cost.usd")
             if p.get("gen_ai.request.model", p.get("model")) == "claude-sonnet-4.5"]
    assert costs and costs[0] == pytest.approx(float(expected), abs=1e-9)
    assert span["gen_ai.request.stream"] is True and span["gateway.stream.end"] == "done"
    assert await eventually(lambda: any(r.model_served == "claude-sonnet-4.5"
                                        for r in rig.ledger()))
    row = next(r for r in rig.ledger() if r.model_served == "claude-sonnet-4.5")
    assert row.cost_nanos == int(expected * 10**9) and row.provider == "anthropic"
    assert (row.input_tokens, row.cached_tokens, row.output_tokens) == (total_input, 150_000, 850)


async def test_tool_use_round_trip(rig: Rig) -> None:
    """A forced tool comes back as the SDK's ToolUseBlock, streamed input included."""
    async with rig.anthropic() as client, client.messages.stream(
            model="claude-sonnet-4.5", max_tokens=64, messages=HELLO, tools=[WEATHER],  # type: ignore[list-item]
            tool_choice={"type": "tool", "name": "get_weather"}) as stream:
        final = await stream.get_final_message()
    block = final.content[0]
    assert block.type == "tool_use" and block.input == {"location": "Paris"}
    assert final.stop_reason == "tool_use"
    assert rig.claude.state.last_request.body["tools"] == [WEATHER]


async def test_count_tokens_native_and_estimated(rig: Rig) -> None:
    """count_tokens goes to a native Anthropic upstream, and is estimated by the gateway
    for a model served in another dialect; the native call's CLIENT span is operation
    `count_tokens` carrying the count, with a duration point and no token usage."""
    async with rig.anthropic() as client:
        native = await client.messages.count_tokens(model="claude-sonnet-4.5", messages=HELLO)
        estimated = await client.messages.count_tokens(model="gpt-4.1", messages=HELLO)
    assert native.input_tokens == fake.wire.count_input_tokens({"messages": HELLO})
    assert rig.claude.state.last_request.path == "/v1/messages/count_tokens"
    assert estimated.input_tokens > 0 and not rig.chat.state.requests
    await asyncio.sleep(0.05)
    (span,) = rig.gw.telemetry.spans_named("count_tokens claude-sonnet-4.5")
    span_attrs = attrs(span)
    assert span_attrs["gen_ai.operation.name"] == "count_tokens"
    assert span_attrs["gen_ai.usage.input_tokens"] == native.input_tokens
    assert "gen_ai.usage.output_tokens" not in span_attrs and span_attrs["gateway.cost.usd"] == 0
    counted = [p for p, _ in iter_points(rig.gw.telemetry, "gen_ai.client.token.usage")
               if p["gen_ai.operation.name"] == "count_tokens"]
    durations = [p for p, _ in iter_points(rig.gw.telemetry, "gen_ai.client.operation.duration")
                 if p["gen_ai.operation.name"] == "count_tokens"]
    assert not counted and len(durations) == 1  # the estimate called no upstream


@pytest.mark.parametrize(("status", "error_class"), [
    (529, anthropic.OverloadedError), (429, anthropic.RateLimitError),
    (500, anthropic.InternalServerError), (400, anthropic.BadRequestError)])
async def test_upstream_errors_raise_the_sdk_classes(rig: Rig, status: int,
                                                     error_class: type[Exception]) -> None:
    """An Anthropic upstream's error reaches the SDK as its own class, body intact."""
    rig.claude.state.behaviour = Behaviour.error(status)
    async with rig.anthropic() as client:
        with pytest.raises(error_class) as info:
            await client.messages.create(model="claude-sonnet-4.5", max_tokens=8, messages=HELLO)
    body = info.value.body  # type: ignore[attr-defined]
    assert body["type"] == "error" and body["error"]["type"] == fake.wire.ERROR_TYPES[status]


async def test_gateway_errors_raise_the_sdk_classes(rig: Rig) -> None:
    """Bad input, an unknown model and a wrong key are answered in Anthropic's shape."""
    async with rig.anthropic() as client:
        with pytest.raises(anthropic.BadRequestError, match="max_tokens"):
            await client.messages.create(model="claude-sonnet-4.5", messages=HELLO,
                                         max_tokens=0)
        with pytest.raises(anthropic.NotFoundError):
            await client.messages.create(model="claude-nope", max_tokens=8, messages=HELLO)
    async with rig.anthropic("sk-wrong") as stranger:
        with pytest.raises(anthropic.AuthenticationError):
            await stranger.messages.create(model="claude-sonnet-4.5", max_tokens=8,
                                           messages=HELLO)
    assert not rig.claude.state.requests


async def test_x_api_key_and_bearer_both_authenticate(rig: Rig) -> None:
    """Claude Code sends the gateway key as x-api-key (or Bearer with an auth token)."""
    body = orjson.dumps({"model": "claude-sonnet-4.5", "max_tokens": 8, "messages": HELLO})
    async with aiohttp.ClientSession() as http:
        for headers in ({"x-api-key": GATEWAY_KEY}, {"authorization": f"Bearer {GATEWAY_KEY}"}):
            async with http.post(f"{rig.gw.root}/v1/messages?beta=true", data=body,
                                 headers={**headers, "anthropic-version": "2023-06-01"}) as resp:
                assert resp.status == 200, await resp.text()
        async with http.post(f"{rig.gw.root}/v1/messages", data=body) as resp:
            assert resp.status == 401
            assert (await resp.json())["error"]["type"] == "authentication_error"


async def test_error_event_mid_stream_reaches_the_sdk(rig: Rig) -> None:
    """An upstream `error` event mid-stream is relayed; the SDK raises it, the span says why."""
    rig.claude.state.behaviour = Behaviour(text="x" * 60, error_event_at=5)  # after two deltas
    async with rig.anthropic() as client:
        with pytest.raises(anthropic.APIStatusError, match="overloaded_error"):
            async with client.messages.stream(model="claude-sonnet-4.5", max_tokens=8,
                                              messages=HELLO) as stream:
                async for _ in stream:
                    pass
    await asyncio.sleep(0.05)
    span = rig.span("chat claude-sonnet-4.5")
    assert span["error.type"] == "overloaded_error"
    assert span["gateway.stream.end"] == "upstream_error"


async def test_cut_stream_ends_with_an_error_event_and_is_charged(rig: Rig) -> None:
    """An upstream that closes before message_stop: the client gets an `error` event, and
    the call is charged its input and the output deltas seen."""
    rig.claude.state.behaviour = Behaviour(text="x" * 200, input_tokens=500, close_after_events=8)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{rig.gw.root}/v1/messages", headers={"x-api-key": GATEWAY_KEY},
                             json={"model": "claude-sonnet-4.5", "max_tokens": 300,
                                   "messages": HELLO, "stream": True}) as resp:
            raw = await resp.read()
    names = [name for name, _ in fake.wire.split_stream(raw)]
    assert names[0] == "message_start" and names[-1] == "error"
    await asyncio.sleep(0.05)
    span = rig.span("chat claude-sonnet-4.5")
    assert span["gateway.stream.end"] == "upstream_incomplete"
    assert span["gen_ai.usage.input_tokens"] == 500 and span["gen_ai.usage.output_tokens"] > 1
    assert span["gateway.cost.usd"] > 500 * 3 / 1e6


# --- translation through the gateway ---------------------------------------------------


async def test_openai_client_reaches_a_claude_model(rig: Rig) -> None:
    """An OpenAI chat client is served by kind anthropic: the upstream sees a Messages request,
    the client a chat completion with usage; telemetry as for a native call."""
    rig.claude.state.behaviour = Behaviour(text="Bonjour", input_tokens=10, output_tokens=4,
                                           cache_read=90)
    async with rig.openai() as client:
        completion = await client.chat.completions.create(
            model="claude-sonnet-4.5", max_tokens=50,
            messages=[{"role": "system", "content": "Be brief."},
                      {"role": "user", "content": "Say hello"}])
    assert completion.choices[0].message.content == "Bonjour"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.prompt_tokens == 100
    seen = rig.claude.state.last_request
    assert seen.path == "/v1/messages" and seen.body["system"] == [{"type": "text",
                                                                   "text": "Be brief."}]
    assert seen.headers["anthropic-version"] == "2023-06-01"
    span = rig.span("chat claude-sonnet-4.5")
    assert span["gen_ai.usage.input_tokens"] == 100 and span["gen_ai.usage.output_tokens"] == 4
    assert span["gen_ai.usage.cache_read.input_tokens"] == 90
    assert span["gateway.cost.usd"] == pytest.approx((10 * 3 + 90 * 0.3 + 4 * 15) / 1e6)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_same_telemetry_and_cost_whatever_the_client_speaks(rig: Rig, stream: bool) -> None:
    """The same Claude answer (with cache reads and writes) asked for by a Messages client
    and by an OpenAI chat client: the CLIENT spans' provider, response, usage and cost
    attributes, and the ledger rows, are identical."""
    rig.claude.state.behaviour = Behaviour(text="Same answer", input_tokens=40, output_tokens=9,
                                           cache_read=300, cache_write_5m=120)
    async with rig.anthropic() as client:
        if stream:
            async with client.messages.stream(model="claude-sonnet-4.5", max_tokens=64,
                                              messages=HELLO) as streamed:
                await streamed.get_final_message()
        else:
            await client.messages.create(model="claude-sonnet-4.5", max_tokens=64,
                                         messages=HELLO)
    async with rig.openai() as chat:
        if stream:
            chunks = await chat.chat.completions.create(model="claude-sonnet-4.5", max_tokens=64,
                                                        messages=HELLO, stream=True)
            async for _ in chunks:
                pass
        else:
            await chat.chat.completions.create(model="claude-sonnet-4.5", max_tokens=64,
                                               messages=HELLO)
    await asyncio.sleep(0.05)
    spans = [attrs(s) for s in rig.gw.telemetry.spans_named("chat claude-sonnet-4.5")]
    assert len(spans) == 2

    def compared(span: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in span.items()
                if k.startswith(("gen_ai.usage.", "gen_ai.provider.", "gen_ai.response.model",
                                 "gen_ai.response.finish_reasons", "gateway.cost", "server."))}

    assert compared(spans[0]) == compared(spans[1])
    assert compared(spans[0])["gen_ai.usage.input_tokens"] == 460
    assert await eventually(lambda: len(rig.ledger()) == 2)
    rows = rig.ledger()
    assert [(r.cost_nanos, r.input_tokens, r.cached_tokens, r.output_tokens, r.provider)
            for r in rows] == [(rows[0].cost_nanos, 460, 300, 9, "anthropic")] * 2


async def test_openai_client_streams_from_a_claude_model(rig: Rig) -> None:
    """Streamed chat from kind anthropic: deltas, tool calls and the usage chunk."""
    rig.claude.state.behaviour = Behaviour(tool_call=("get_weather", {"location": "Oslo"}),
                                           input_tokens=30, output_tokens=12)
    async with rig.openai() as client:
        stream = await client.chat.completions.create(
            model="claude-sonnet-4.5", stream=True, stream_options={"include_usage": True},
            messages=[{"role": "user", "content": "Weather in Oslo?"}],
            tools=[{"type": "function", "function": {"name": "get_weather",
                                                     "parameters": WEATHER["input_schema"]}}])
        chunks = [chunk async for chunk in stream]
    arguments = "".join(c.choices[0].delta.tool_calls[0].function.arguments or ""  # type: ignore[index,union-attr]
                        for c in chunks if c.choices and c.choices[0].delta.tool_calls)
    assert orjson.loads(arguments) == {"location": "Oslo"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 12
    await asyncio.sleep(0.05)
    assert rig.span("chat claude-sonnet-4.5")["gen_ai.usage.output_tokens"] == 12


async def test_messages_client_reaches_an_openai_model(rig: Rig) -> None:
    """A Messages client is served by an OpenAI-format upstream, JSON and streamed."""
    async with rig.anthropic() as client:
        message = await client.messages.create(model="gpt-4.1", max_tokens=50, messages=HELLO,
                                               system="Be brief.")
        async with client.messages.stream(model="gpt-4.1", max_tokens=50,
                                          messages=HELLO) as stream:
            final = await stream.get_final_message()
    assert message.content[0].type == "text" and message.stop_reason == "end_turn"
    assert message.content[0].text.startswith("This is a fake reply")
    assert final.content[0].type == "text" and final.usage.output_tokens > 0
    bodies = rig.chat.state.bodies()
    assert bodies[0]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert bodies[1]["stream_options"] == {"include_usage": True}
    await asyncio.sleep(0.05)
    spans = [attrs(s) for s in rig.gw.telemetry.spans_named("chat gpt-4.1")]
    assert [s["gen_ai.response.finish_reasons"] for s in spans] == [("stop",), ("stop",)]
    span = spans[-1]
    assert span["gen_ai.provider.name"] == "openai" and span["gen_ai.usage.output_tokens"] > 0


async def test_the_details_event_carries_cache_writes_and_reads() -> None:
    """EVENT_ONLY: the details event of a Messages call carries the cache-write and
    cache-read counts under the span's names (both generations' cache-write names)."""
    tt = make_test_telemetry(ContentMode.EVENT_ONLY, semconv=Semconv(old=True, new=True))
    async with running_rig(MODELS, alias="claude-code", telemetry=tt) as rig, \
            rig.anthropic() as client:
        rig.claude.state.behaviour = Behaviour(text="cached", cache_write_5m=50, cache_read=40)
        await client.messages.create(model="claude-sonnet-4.5", max_tokens=16, messages=HELLO)
    (span,) = tt.spans_named("chat claude-sonnet-4.5")
    (event,) = span.events
    details = dict(event.attributes or {})
    for name in ("gen_ai.usage.cache_read.input_tokens",
                 "gen_ai.usage.cache_creation.input_tokens",
                 "gen_ai.usage.cache_write.input_tokens"):
        assert details[name] == attrs(span)[name], name
    assert details["gen_ai.usage.cache_read.input_tokens"] == 40
    assert details["gen_ai.usage.cache_write.input_tokens"] == 50


async def test_translated_answers_capture_their_output() -> None:
    """With content capture on, a translated call's CLIENT span carries the output as a
    native call's would, JSON and streamed, in both directions: chat's choices for an
    OpenAI-format upstream, one message of Messages blocks for Claude."""
    tt = make_test_telemetry(ContentMode.SPAN_ONLY)
    async with running_rig(MODELS, alias="claude-code", telemetry=tt) as rig:
        rig.claude.state.behaviour = Behaviour(text="Bonjour")
        async with rig.anthropic() as client:
            message = await client.messages.create(model="gpt-4.1", max_tokens=50,
                                                   messages=HELLO)
            async with client.messages.stream(model="gpt-4.1", max_tokens=50,
                                              messages=HELLO) as stream:
                final = await stream.get_final_message()
        async with rig.openai() as chat:
            await chat.chat.completions.create(model="claude-sonnet-4.5", messages=HELLO)
            streamed = await chat.chat.completions.create(
                model="claude-sonnet-4.5", messages=HELLO, stream=True)
            async for _ in streamed:
                pass
        await asyncio.sleep(0.05)
    gpt = [orjson.loads(attrs(s)["gen_ai.output.messages"]) for s in tt.spans_named("chat gpt-4.1")]
    assert [m[0]["parts"] for m in gpt] == [
        [{"type": "text", "content": message.content[0].text}],  # type: ignore[union-attr]
        [{"type": "text", "content": final.content[0].text}]]  # type: ignore[union-attr]
    assert [m[0]["finish_reason"] for m in gpt] == ["stop", "stop"]
    claude_spans = tt.spans_named("chat claude-sonnet-4.5")
    assert [orjson.loads(attrs(s)["gen_ai.output.messages"]) for s in claude_spans] == [
        [{"role": "assistant", "parts": [{"type": "text", "content": "Bonjour"}],
          "finish_reason": "end_turn"}]] * 2
    assert all("gen_ai.input.messages" in attrs(s) for s in claude_spans)


async def test_untranslatable_request_is_a_clear_400(rig: Rig) -> None:
    """Extended thinking towards an OpenAI-format model is refused with a 400 that says why."""
    async with rig.anthropic() as client:
        with pytest.raises(anthropic.BadRequestError, match="thinking"):
            await client.messages.create(
                model="gpt-4.1", max_tokens=2048, messages=HELLO,
                thinking={"type": "enabled", "budget_tokens": 1024})
    assert not rig.chat.state.requests


async def test_fallback_from_claude_to_gpt_for_a_messages_client(rig: Rig) -> None:
    """An overloaded Claude falls back to GPT-4.1, answered to the Messages client in its format."""
    rig.claude.state.behaviour = Behaviour.error(529)
    async with rig.anthropic() as client:
        raw = await client.messages.with_raw_response.create(model="claude-fallback",
                                                             max_tokens=20, messages=HELLO)
    message = await raw.parse()
    assert raw.headers["x-gateway-model"] == "gpt-4.1"
    assert message.content[0].type == "text" and rig.chat.state.requests


async def test_simulator_speaks_messages(rig: Rig) -> None:
    """A model on the simulator answers Messages natively, with cache usage fields."""
    async with rig.anthropic() as client:
        message = await client.messages.create(model="sim-claude", max_tokens=50, messages=HELLO)
        async with client.messages.stream(model="sim-claude", max_tokens=50,
                                          messages=HELLO) as stream:
            final = await stream.get_final_message()
    assert message.usage.output_tokens == 6 and message.usage.cache_read_input_tokens == 0
    assert final.usage.output_tokens == 6


async def test_budget_and_rate_limit_refusals_are_rate_limit_errors() -> None:
    """A blocking budget and a rate limit refuse /v1/messages calls in Anthropic's shape
    (429 rate_limit_error), before anything reaches the upstream."""
    budget = "budgets:\n  - {name: fuse, scope: global, window: day, limit_usd: 0.0001, action: block}"
    limit = "rate_limits:\n  default: {requests_per_minute: 1}"
    async with running_upstreams() as upstreams:
        async with upstreams.gateway(MODELS, alias="claude-code", extra=budget) as rig, \
                rig.anthropic() as client:
            with pytest.raises(anthropic.RateLimitError) as info:
                await client.messages.create(model="claude-sonnet-4.5", max_tokens=4000,
                                             messages=HELLO)
            assert info.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
        async with upstreams.gateway(MODELS, alias="claude-code", extra=limit) as rig, \
                rig.anthropic() as client:
            await client.messages.create(model="claude-sonnet-4.5", max_tokens=8, messages=HELLO)
            with pytest.raises(anthropic.RateLimitError):
                await client.messages.create(model="claude-sonnet-4.5", max_tokens=8,
                                             messages=HELLO)
        assert len(upstreams.claude.state.requests) == 1


async def test_head_root_answers_claude_codes_reachability_check(rig: Rig) -> None:
    """Claude Code first sends HEAD / to see the base URL is up: it gets 200."""
    async with aiohttp.ClientSession() as http, http.head(rig.gw.root + "/") as resp:
        assert resp.status == 200


async def test_first_token_rule_waits_past_the_preamble(rig: Rig) -> None:
    """message_start arrives before any token: a Claude stream whose first delta is later than
    first_token_timeout_s falls back to GPT-4.1, though its preamble came at once."""
    rig.claude.state.behaviour = Behaviour(text="too late", first_delta_delay_s=2.0)
    async with rig.anthropic() as client, client.messages.stream(
            model="claude-fallback", max_tokens=20, messages=HELLO) as stream:
        final = await stream.get_final_message()
    assert final.content[0].type == "text" and final.content[0].text.startswith("This is a fake")
    await asyncio.sleep(0.05)
    assert rig.span("chat claude-fallback")["error.type"] == "timeout"
    assert rig.span("chat gpt-4.1")["gateway.fallback.reason"] == "first_token_timeout"


async def test_error_event_before_the_first_token_can_fall_back(rig: Rig) -> None:
    """An `error` event in the preamble (before any token) fails the attempt before anything
    reached the client, so the call falls back instead of breaking the stream."""
    rig.claude.state.behaviour = Behaviour(error_event_at=2)
    async with rig.anthropic() as client, client.messages.stream(
            model="claude-fallback", max_tokens=20, messages=HELLO) as stream:
        final = await stream.get_final_message()
    assert final.content[0].type == "text" and rig.chat.state.requests

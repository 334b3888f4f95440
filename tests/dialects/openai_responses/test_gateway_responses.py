"""`/v1/responses` through the real gateway with the official `openai` SDK as client:
passed through to a fake upstream that speaks the Responses wire format, translated for
a chat-completions-only provider, answered by the simulator; usage, telemetry, cost,
budgets, fallbacks and abandoned streams as for the other dialects."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from tests.fakes import responses_upstream as fake
from tests.fakes.openai_upstream import Behaviour
from tests.support.rig import RESPONSES_KEY, Rig, rig_fixture, running_rig, running_upstreams
from tests.support.telemetry import attrs, iter_points
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration  # sockets: fake upstreams, the gateway on a port

WEATHER = {"type": "function", "name": "get_weather", "description": "Weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"], "additionalProperties": False},
           "strict": True}
MODELS = """
  gpt-4.1:
    provider: responses
    upstream_model: gpt-4.1-2025-04-14
    price_per_mtok: {input: 2, output: 8, cached_input: 0.5}
  gpt-4.1-fallback:
    provider: responses
    upstream_model: gpt-4.1-2025-04-14
    price_per_mtok: {input: 2, output: 8}
    fallbacks: [chat-only]
  chat-only:
    provider: chat
    upstream_model: gpt-4.1-mini
    price_per_mtok: {input: 0.4, output: 1.6}
  sim-gpt:
    provider: sim
    price_per_mtok: {input: 1, output: 4}
"""
SIM_ONLY_KEY = "sk-gw-sim-only-4567"
# The rest of the gateway's setup (`Upstreams.gateway`): the key's alias and a second key
# allowed the simulated model only.
GATEWAY: Mapping[str, Any] = {
    "alias": "agents", "environ": {"SIM_ONLY_KEY": SIM_ONLY_KEY},
    "keys": "  - {alias: sim-only, team: dev, key_env: SIM_ONLY_KEY, allowed_models: [sim-gpt]}"}


rig = rig_fixture(MODELS, **GATEWAY)


async def test_create_passes_the_request_through_and_reads_usage(rig: Rig) -> None:
    """responses.create: every request field reaches the upstream untouched but the model id,
    with the upstream's key; usage (cached and reasoning included) lands on the span and in
    the ledger at the model's prices."""
    rig.responses.state.behaviour = fake.Behaviour(text="Hello, agent!", input_tokens=1000,
                                            cached_tokens=400, output_tokens=300,
                                            reasoning_tokens=120)
    async with rig.openai() as client:
        raw = await client.responses.with_raw_response.create(
            model="gpt-4.1", input=[{"role": "user", "content": [{"type": "input_text",
                                                                   "text": "hi"}]}],
            instructions="Be brief.", metadata={"run": "7"}, store=True,
            reasoning={"effort": "low"}, text={"format": {"type": "text"}},
            tools=[WEATHER, {"type": "web_search"}], max_output_tokens=500)
    response = raw.parse()
    assert response.output_text == "Hello, agent!" and response.model == "gpt-4.1"
    assert raw.headers["openai-processing-ms"] == "31"
    seen = rig.responses.state.last
    assert seen.path == "/v1/responses" and seen.body["model"] == "gpt-4.1-2025-04-14"
    assert seen.headers["authorization"] == f"Bearer {RESPONSES_KEY}"
    assert seen.body["tools"][1] == {"type": "web_search"}
    assert seen.body["metadata"] == {"run": "7"} and seen.body["instructions"] == "Be brief."
    span = rig.span("chat gpt-4.1")
    assert span["gen_ai.operation.name"] == "chat" and span["openai.api.type"] == "responses"
    assert span["gen_ai.usage.input_tokens"] == 1000 and span["gen_ai.usage.output_tokens"] == 300
    assert span["gen_ai.usage.cache_read.input_tokens"] == 400
    assert span["gen_ai.usage.reasoning.output_tokens"] == 120
    assert span["gen_ai.response.id"] == response.id
    assert span["gen_ai.request.max_tokens"] == 500
    assert await eventually(rig.settled)  # not the reservation's pending row
    rows = rig.settled()
    # 600 uncached at $2, 400 cached at $0.5, 300 output at $8 per million
    assert rows[-1].cost_nanos == (600 * 2 + 400 * 0.5 + 300 * 8) * 1000


async def test_stream_relays_every_typed_event_and_charges_the_final_usage(rig: Rig) -> None:
    """responses.stream: the events arrive in the upstream's order with its sequence numbers;
    the final response's usage is what the span, the token metric and the ledger show."""
    rig.responses.state.behaviour = fake.Behaviour(text="Streaming through", output_tokens=4)
    async with rig.openai() as client, client.responses.stream(
            model="gpt-4.1", input="stream please") as stream:
        events = [event async for event in stream]
        final = await stream.get_final_response()
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert final.output_text == "Streaming through" and final.model == "gpt-4.1"
    assert sum(e.type == "response.output_text.delta" for e in events) == 5
    await asyncio.sleep(0.05)
    span = rig.span("chat gpt-4.1")
    assert span["gen_ai.usage.output_tokens"] == 4 and span["gateway.stream.end"] == "done"
    tokens = {p.attributes["gen_ai.token.type"]: p.sum
              for p in rig.gw.telemetry.points("gen_ai.client.token.usage")}
    assert tokens["input"] == 21 and tokens["output"] == 4


async def test_function_tools_and_their_calls(rig: Rig) -> None:
    """A function call answered by the upstream reaches the SDK as a function_call item,
    JSON and streamed, with its arguments whole."""
    rig.responses.state.behaviour = fake.Behaviour(tool_call=("get_weather", '{"city":"Paris"}'))
    async with rig.openai() as client:
        response = await client.responses.create(model="gpt-4.1", input="weather?",
                                                 tools=[WEATHER], tool_choice="required")
        async with client.responses.stream(model="gpt-4.1", input="weather?",
                                           tools=[WEATHER]) as stream:
            final = await stream.get_final_response()
    for answer in (response, final):
        call = answer.output[0]
        assert call.type == "function_call" and call.name == "get_weather"
        assert call.arguments == '{"city":"Paris"}'
    assert rig.span("chat gpt-4.1")["gen_ai.response.finish_reasons"] == ("tool_calls",)


async def test_stored_responses_reach_the_provider_that_made_them(rig: Rig) -> None:
    """retrieve, input_items.list, cancel and delete go to the upstream that created the
    response, with its key; an unknown id is a 404 NotFoundError."""
    async with rig.openai() as client:
        response = await client.responses.create(model="gpt-4.1", input="keep this")
        again = await client.responses.retrieve(response.id)
        items = await client.responses.input_items.list(response.id)
        cancelled = await client.responses.cancel(response.id)
        await client.responses.delete(response.id)
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(response.id)
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve("resp_never_made")
    assert again.id == response.id and again.output_text == response.output_text
    assert items.data == [] and cancelled.status == "cancelled"
    paths = [(s.method, s.path) for s in rig.responses.state.requests[1:]]
    assert paths == [("GET", f"/v1/responses/{response.id}"),
                     ("GET", f"/v1/responses/{response.id}/input_items"),
                     ("POST", f"/v1/responses/{response.id}/cancel"),
                     ("DELETE", f"/v1/responses/{response.id}")]
    assert all(s.headers["authorization"] == f"Bearer {RESPONSES_KEY}"
               for s in rig.responses.state.requests)


async def test_stored_response_owner_survives_a_restart(tmp_path: Path) -> None:
    """A response created before a restart is retrieved through a new gateway on the same
    SQLite file: the owner was stored, not only kept in memory."""
    storage = f"storage: {{sqlite_path: \"{tmp_path / 'gw.sqlite3'}\"}}"
    async with running_upstreams() as upstreams:
        async with upstreams.gateway(MODELS, extra=storage, **GATEWAY) as rig:
            async with rig.openai() as client:
                made = await client.responses.create(model="gpt-4.1", input="remember me")
        async with upstreams.gateway(MODELS, extra=storage, **GATEWAY) as rig, \
                rig.openai() as client:
            found = await client.responses.retrieve(made.id)
    assert found.id == made.id


async def test_chat_only_provider_serves_a_responses_client(rig: Rig) -> None:
    """A model whose provider speaks only chat completions answers responses.create and
    responses.stream (text and function calls) through translation: the upstream gets a
    chat request, the client a well-formed Responses answer and event sequence."""
    async with rig.openai() as client:
        response = await client.responses.create(model="chat-only", input="hi there",
                                                 instructions="Be brief.")
        async with client.responses.stream(model="chat-only", input="stream it") as stream:
            events = [event async for event in stream]
            final = await stream.get_final_response()
    assert response.output_text == "This is a fake reply to: hi there"
    assert response.usage is not None and response.usage.input_tokens > 0
    seen = rig.chat.state.requests[0]
    assert seen.body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert seen.body["model"] == "gpt-4.1-mini"
    kinds = [e.type for e in events]
    assert kinds[:4] == ["response.created", "response.in_progress",
                         "response.output_item.added", "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done",
                          "response.output_item.done", "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert final.output_text == "This is a fake reply to: stream it"
    assert final.usage is not None and final.usage.output_tokens > 0


async def test_untranslatable_requests_get_a_clear_400(rig: Rig) -> None:
    """A built-in tool or previous_response_id on a chat-only provider is a 400
    BadRequestError naming the parameter, and nothing reaches the upstream."""
    async with rig.openai() as client:
        with pytest.raises(openai.BadRequestError) as tool:
            await client.responses.create(model="chat-only", input="hi",
                                          tools=[{"type": "web_search"}])
        with pytest.raises(openai.BadRequestError) as state:
            await client.responses.create(model="chat-only", input="hi",
                                          previous_response_id="resp_123")
    assert "web_search" in tool.value.message and tool.value.param == "tools[0]"
    assert state.value.param == "previous_response_id"
    assert rig.chat.state.requests == []


async def test_fallback_to_a_chat_model_still_streams_responses_events(rig: Rig) -> None:
    """The Responses model fails (503): the call falls back to the chat-only model and the
    client still gets a complete Responses stream; both attempts are on the trace."""
    rig.responses.state.behaviour = fake.Behaviour(status=503)
    async with rig.openai() as client, client.responses.stream(
            model="gpt-4.1-fallback", input="fall back") as stream:
        events = [event async for event in stream]
        final = await stream.get_final_response()
    assert events[-1].type == "response.completed"
    assert final.output_text == "This is a fake reply to: fall back"
    await asyncio.sleep(0.05)
    assert rig.span("chat chat-only")["gateway.fallback.reason"] == "status_5xx"


async def test_upstream_dying_mid_stream_ends_with_the_next_sequence_number(rig: Rig) -> None:
    """An upstream that closes mid-stream: the gateway's own `error` event, parsed by
    responses.stream, is numbered right after the last event relayed."""
    rig.responses.state.behaviour = fake.Behaviour(text="a long enough answer", close_after_deltas=3)
    async with rig.openai() as client, client.responses.stream(
            model="gpt-4.1", input="then die") as stream:
        events = [event async for event in stream]
    assert [e.type for e in events[-2:]] == ["response.output_text.delta", "error"]
    assert [e.sequence_number for e in events] == list(range(len(events)))


async def test_a_translated_stream_cut_short_keeps_its_numbering(rig: Rig) -> None:
    """A chat upstream translated for a Responses client closes before [DONE]: the error
    event follows the translated events' sequence numbers without a gap."""
    rig.chat.state.behaviour = Behaviour(content="one two three four five", close_after_events=3)
    async with rig.openai() as client, client.responses.stream(
            model="chat-only", input="then die") as stream:
        events = [event async for event in stream]
    assert events[-1].type == "error" and len(events) > 3
    assert [e.sequence_number for e in events] == list(range(len(events)))


async def test_budget_refuses_in_openais_shape() -> None:
    """A blocking budget refuses /v1/responses with a 429 RateLimitError whose code is
    budget_exceeded, before anything reaches the upstream."""
    async with running_upstreams() as upstreams:
        extra = "budgets:\n  - {name: fuse, scope: global, window: day, limit_usd: 0.0001, action: block}"
        async with upstreams.gateway(MODELS, extra=extra, **GATEWAY) as rig, \
                rig.openai() as client:
            with pytest.raises(openai.RateLimitError) as info:
                await client.responses.create(model="gpt-4.1", input="hi", max_output_tokens=4000)
    assert info.value.code == "budget_exceeded"
    assert upstreams.responses.state.requests == []


async def test_abandoned_stream_is_charged_for_what_was_used(rig: Rig) -> None:
    """A client that leaves a slow stream half way is still charged: the ledger row carries
    the prompt and the output relayed so far, estimated, at a cost above zero."""
    rig.responses.state.behaviour = fake.Behaviour(text="x" * 200, chunk_delay_s=0.02)
    async with rig.openai() as client, client.responses.stream(
            model="gpt-4.1", input="a long answer please") as stream:
        async for event in stream:
            if event.type == "response.output_text.delta" and event.sequence_number > 8:
                break
    assert await eventually(rig.settled)  # not the reservation's pending row
    rows = rig.settled()
    assert rows[-1].output_tokens > 0 and rows[-1].estimated and rows[-1].cost_nanos > 0


class Weather(BaseModel):
    city: str
    degrees: int


async def test_simulator_answers_the_whole_responses_surface(rig: Rig) -> None:
    """With no key, the simulator answers create (reasoning tokens counted), stream, a
    required function call, structured output through responses.parse, and retrieve."""
    async with rig.openai() as client:
        plain = await client.responses.create(model="sim-gpt", input="hi",
                                              reasoning={"effort": "low"})
        parsed = await client.responses.parse(model="sim-gpt", input="weather?",
                                              text_format=Weather)
        async with client.responses.stream(model="sim-gpt", input="call it", tools=[WEATHER],
                                           tool_choice="required") as stream:
            called = await stream.get_final_response()
        again = await client.responses.retrieve(plain.id)
    assert plain.usage is not None and plain.usage.output_tokens_details.reasoning_tokens == 64
    assert plain.output[0].type == "reasoning" and plain.output_text
    assert parsed.output_parsed == Weather(city="simulated", degrees=1)
    assert called.output[0].type == "function_call" and called.output[0].name == "get_weather"
    assert again.id == plain.id
    await asyncio.sleep(0.05)
    span = rig.span("chat sim-gpt")
    assert span["gen_ai.provider.name"] == "simulated"
    points = list(iter_points(rig.gw.telemetry, "gen_ai.client.token.usage"))
    assert any(a.get("gen_ai.request.model") == "sim-gpt" for a, _ in points)


async def test_stored_routes_need_a_key_and_the_model(rig: Rig) -> None:
    """Without the gateway key the stored routes are a 401; a key not allowed the model
    that made the response gets a 404 as if it did not exist; an id that is no id is never
    sent upstream."""
    async with rig.openai() as client:
        made = await client.responses.create(model="gpt-4.1", input="mine")
    async with rig.openai("sk-wrong") as stranger:
        with pytest.raises(openai.AuthenticationError):
            await stranger.responses.retrieve(made.id)
    async with rig.openai(SIM_ONLY_KEY) as limited:
        with pytest.raises(openai.NotFoundError):
            await limited.responses.retrieve(made.id)
    async with rig.openai() as client:
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve("resp_1%0D%0AHost: evil")
    assert [s.method for s in rig.responses.state.requests] == ["POST"]


async def test_stored_routes_are_rate_limited_and_counted_as_requests() -> None:
    """The stored routes take a request from the key's rate limit (a 429 with Retry-After
    once it is spent), and each is one gateway_requests_total point labelled with the
    stored-response operation and the owning model, with no token or cost point added."""
    extra = "rate_limits:\n  keys:\n    agents: {requests_per_minute: 3, tokens_per_minute: null}"
    async with running_rig(MODELS, extra=extra, **GATEWAY) as rig, rig.openai() as client:
        made = await client.responses.create(model="gpt-4.1", input="keep it")
        await asyncio.sleep(0.05)
        tokens_before = len(list(iter_points(rig.gw.telemetry, "gateway.tokens")))
        await client.responses.retrieve(made.id)
        await client.responses.delete(made.id)
        with pytest.raises(openai.RateLimitError) as info:
            await client.responses.retrieve(made.id)
    assert info.value.code == "rate_limit_exceeded" and info.value.response.headers["retry-after"]
    assert [s.method for s in rig.responses.state.requests] == ["POST", "GET", "DELETE"]
    await asyncio.sleep(0.05)
    stored = [(a, p.value) for a, p in iter_points(rig.gw.telemetry, "gateway.requests")
              if a["gen_ai.operation.name"] == "responses.stored"]
    by_status = {a["http.response.status_code"]: value for a, value in stored}
    assert by_status == {200: 2, 429: 1}
    assert {a["gen_ai.request.model"] for a, _ in stored if a["http.response.status_code"] == 200
            } == {"gpt-4.1"}
    assert all(a["gateway.key.alias"] == "agents" for a, _ in stored)
    assert len(list(iter_points(rig.gw.telemetry, "gateway.tokens"))) == tokens_before
    spans = rig.gw.telemetry.spans_named("GET /v1/responses/{response_id}")
    assert spans and attrs(spans[0])["http.response.status_code"] == 200

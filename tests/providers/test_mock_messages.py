"""The simulator answers the Messages paths in Anthropic's exact wire format: the SDK's
types parse its answers, its streams assemble, and prompt caching shows in usage."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import anthropic
import orjson
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from pydantic import TypeAdapter

from gateway.config import MockSettings, ModelConfig, Price, ProviderConfig
from gateway.dialects.anthropic.answer import usage_from
from gateway.dialects.anthropic.stream import DONE, MessagesStreamWatcher
from gateway.providers.base import UpstreamRequest
from gateway.providers.mock import MockProvider
from gateway.sse import SSESplitter
from tests.fakes import anthropic_wire as awire

MODEL = ModelConfig(provider="sim", name="claude-sonnet-4.5", upstream_model="claude-sonnet-4-5",
                    price_per_mtok=Price(Decimal(3), Decimal(15), Decimal("0.3")))
EVENT = TypeAdapter(anthropic.types.RawMessageStreamEvent)
SYSTEM = [{"type": "text", "text": "You are a careful assistant. " * 40,
           "cache_control": {"type": "ephemeral"}}]
HELLO = [{"role": "user", "content": "Hello"}]


def _provider(**mock: Any) -> MockProvider:
    settings = MockSettings(latency_ms=0, ms_per_chunk=0, jitter=0, **mock)
    return MockProvider(ProviderConfig("sim", "mock", "simulated", mock=settings))


async def _send(provider: MockProvider, body: dict[str, Any], path: str = "/v1/messages",
                directives: dict[str, str] | None = None) -> tuple[int, bytes, Any]:
    request = UpstreamRequest("chat", path, body, bool(body.get("stream")), MODEL,
                              directives=directives)
    response = await provider.send(request)
    return response.status, await response.read(), response.headers


async def test_json_answer_is_a_real_message() -> None:
    """A Messages request gets a Message the SDK validates, with usage and a request-id."""
    status, raw, headers = await _send(_provider(completion_tokens=5),
                                       {"model": "claude-sonnet-4-5", "max_tokens": 100,
                                        "messages": HELLO})
    message = anthropic.types.Message.model_validate(orjson.loads(raw))
    assert status == 200 and message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 5 and message.usage.cache_read_input_tokens == 0
    assert headers["request-id"].startswith("req_011C")


async def test_max_tokens_cuts_the_answer() -> None:
    """An answer longer than max_tokens stops with stop_reason max_tokens."""
    _, raw, _ = await _send(_provider(completion_tokens=50),
                            {"model": "m", "max_tokens": 3, "messages": HELLO})
    answer = orjson.loads(raw)
    assert answer["stop_reason"] == "max_tokens" and answer["usage"]["output_tokens"] == 3


async def test_stream_assembles_and_is_watched() -> None:
    """The streamed answer's events validate, assemble with the SDK, and the gateway's watcher
    reads the same usage as the JSON answer would carry."""
    _, raw, headers = await _send(_provider(completion_tokens=12),
                                  {"model": "m", "max_tokens": 100, "messages": HELLO,
                                   "stream": True})
    assert headers["content-type"] == "text/event-stream"
    snapshot: Any = None
    buffers: dict[int, bytes] = {}
    watcher = MessagesStreamWatcher()
    kinds = []
    for event in SSESplitter().feed(raw):
        kinds.append(watcher.feed(event))
        name, data = awire.split_stream(event + b"\n\n")[0]
        if name != "ping":
            snapshot = accumulate_event(event=EVENT.validate_python(data),
                                        current_snapshot=snapshot, json_bufs=buffers)
    assert kinds[-1] == DONE and snapshot.usage.output_tokens == 12
    assert len(snapshot.content[0].text.split()) == 12
    assert watcher.usage is not None and watcher.usage.output == 12


async def test_required_tool_answers_tool_use() -> None:
    """tool_choice any answers a tool_use block with the schema's required fields filled in."""
    tools = [{"name": "get_weather", "input_schema": {
        "type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"]}}]
    body = {"model": "m", "max_tokens": 100, "messages": HELLO, "tools": tools,
            "tool_choice": {"type": "any"}, "stream": True}
    _, raw, _ = await _send(_provider(), body)
    snapshot: Any = None
    buffers: dict[int, bytes] = {}
    for name, data in awire.split_stream(raw):
        if name != "ping":
            snapshot = accumulate_event(event=EVENT.validate_python(data),
                                        current_snapshot=snapshot, json_bufs=buffers)
    block = snapshot.content[0]
    assert block.type == "tool_use" and block.name == "get_weather"
    assert block.input == {"city": "simulated", "days": 1} and snapshot.stop_reason == "tool_use"


@pytest.mark.parametrize(("ttl", "field"), [(None, "ephemeral_5m_input_tokens"),
                                            ("1h", "ephemeral_1h_input_tokens")])
async def test_prompt_caching_writes_then_reads(ttl: str | None, field: str) -> None:
    """A cache_control prompt is written on first use (by its TTL) and read on the next."""
    provider = _provider()
    control: dict[str, Any] = {"type": "ephemeral", **({"ttl": ttl} if ttl else {})}
    body = {"model": "m", "max_tokens": 10, "messages": HELLO,
            "system": [{**SYSTEM[0], "cache_control": control}]}
    _, first, _ = await _send(provider, body)
    _, second, _ = await _send(provider, body)
    written, read = orjson.loads(first)["usage"], orjson.loads(second)["usage"]
    assert written["cache_creation"][field] == written["cache_creation_input_tokens"] > 100
    assert written["cache_read_input_tokens"] == 0
    assert read["cache_read_input_tokens"] == written["cache_creation_input_tokens"]
    assert read["cache_creation_input_tokens"] == 0
    first_usage, second_usage = usage_from(written), usage_from(read)
    assert first_usage is not None and second_usage is not None
    assert first_usage.input == second_usage.input  # same prompt, split differently


async def test_count_tokens_answers_the_estimate() -> None:
    """count_tokens answers {"input_tokens": N} as the API does."""
    _, raw, _ = await _send(_provider(), {"model": "m", "messages": HELLO, "system": SYSTEM},
                            "/v1/messages/count_tokens")
    counted = anthropic.types.MessageTokensCount.model_validate(orjson.loads(raw))
    assert counted.input_tokens > 200


@pytest.mark.parametrize(("status", "kind"), [(429, "rate_limit_error"), (500, "api_error"),
                                              (529, "overloaded_error")])
async def test_simulated_errors_are_anthropic_shaped(status: int, kind: str) -> None:
    """x-mock-error on a Messages path answers Anthropic's error body for that status."""
    got, raw, headers = await _send(_provider(), {"model": "m", "max_tokens": 5, "messages": HELLO},
                                    directives={"x-mock-error": str(status)})
    body = orjson.loads(raw)
    assert got == status and body["type"] == "error" and body["error"]["type"] == kind
    assert (headers.get("retry-after") == "1") == (status == 429)

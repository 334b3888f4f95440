"""The reverse translation: a chat completions client (the openai SDK's
`chat.completions`) on a model whose provider speaks only the Responses API, JSON and
streamed, with tool calls and usage; the upstream is asked to store nothing."""

from __future__ import annotations

from collections.abc import Callable

import openai
import orjson
import pytest

from gateway.config import load
from gateway.dialects.openai_responses.responses import NAME as RESPONSES
from gateway.testing import MemoryProvider, MemoryRequest, Reply
from tests.fakes.responses_upstream import Behaviour
from tests.fakes.responses_upstream import _output as fake_output
from tests.fakes.responses_upstream import _response as fake_response
from tests.fakes.responses_upstream import _usage as fake_usage
from tests.support.gateway import running_gateway

pytestmark = pytest.mark.integration  # the gateway on a port, for the SDK

CONFIG = """
providers:
  resp: {kind: openai, base_url: "http://responses.invalid/v1", provider_name: openai}
models:
  gpt-5: {provider: resp, price_per_mtok: {input: 1.25, output: 10}}
"""
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}


def _upstream(seen: list[dict[str, object]], behaviour: Behaviour
              ) -> Callable[[MemoryRequest], Reply]:
    def answer(request: MemoryRequest) -> Reply:
        body = request.json()
        seen.append(body)
        body["_id"] = "resp_abc"
        final = fake_response(body, "completed", fake_output(body, behaviour),
                              fake_usage(behaviour))
        if not request.stream:
            return Reply(200, orjson.dumps(final))
        start = fake_response(body, "in_progress", [], None)
        events = [("response.created", {"response": start})]
        for index, item in enumerate(final["output"]):
            events.append(("response.output_item.added", {"output_index": index, "item": item}))
            if item["type"] == "message":
                events.append(("response.output_text.delta", {
                    "item_id": item["id"], "output_index": index, "content_index": 0,
                    "delta": item["content"][0]["text"]}))
            elif item["type"] == "function_call":
                events.append(("response.function_call_arguments.delta", {
                    "item_id": item["id"], "output_index": index, "delta": item["arguments"]}))
        events.append(("response.completed", {"response": final}))
        return Reply(200, [b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(
            {"type": kind, "sequence_number": i, **payload}) + b"\n\n"
            for i, (kind, payload) in enumerate(events)],
            headers={"content-type": "text/event-stream"})
    return answer


async def test_chat_client_on_a_responses_only_provider() -> None:
    """chat.completions.create and a stream with include_usage: text, a tool call and usage
    come back as chat completions; the upstream got a Responses request with store false."""
    config = load(CONFIG, {})
    seen: list[dict[str, object]] = []
    provider = MemoryProvider(config.providers["resp"],
                              _upstream(seen, Behaviour(text="Hi from Responses",
                                                        reasoning_tokens=5)),
                              frozenset({RESPONSES}))
    async with running_gateway(config, providers={"resp": provider}) as gw, \
            openai.AsyncOpenAI(base_url=gw.base_url, api_key="any", max_retries=0) as client:
        answer = await client.chat.completions.create(
            model="gpt-5", messages=[{"role": "system", "content": "Be brief."},
                                     {"role": "user", "content": "hi"}])
        stream = await client.chat.completions.create(
            model="gpt-5", messages=[{"role": "user", "content": "hi"}], stream=True,
            stream_options={"include_usage": True})
        chunks = [chunk async for chunk in stream]
        provider.handler = _upstream(seen, Behaviour(tool_call=("get_weather", '{"city":"Rome"}')))
        called = await client.chat.completions.create(
            model="gpt-5", messages=[{"role": "user", "content": "weather?"}], tools=[TOOL])
    assert answer.choices[0].message.content == "Hi from Responses"
    assert answer.usage is not None and answer.usage.completion_tokens_details is not None
    assert answer.usage.completion_tokens_details.reasoning_tokens == 5
    assert seen[0]["store"] is False and seen[0]["input"] == [
        {"type": "message", "role": "system", "content": [{"type": "input_text",
                                                           "text": "Be brief."}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hi from Responses" and chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 21
    tool_calls = called.choices[0].message.tool_calls
    assert called.choices[0].finish_reason == "tool_calls" and tool_calls is not None
    assert tool_calls[0].function.arguments == '{"city":"Rome"}'  # type: ignore[union-attr]

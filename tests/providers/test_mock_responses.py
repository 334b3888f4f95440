"""The simulator's Responses answers validate against the official SDK's own types (its
pydantic models are the ground truth of the wire format): whole responses, every streamed
event in order, function calls when a tool is required, JSON for a schema, reasoning."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from gateway.providers.mock_responses import ResponsesSimulator, forced_call, sample
from gateway.sse import SSESplitter, event_data

EVENT = TypeAdapter(ResponseStreamEvent)
WORDS = ["the", "gateway", "measures"]
TOOL = {"type": "function", "name": "get_weather", "strict": True,
        "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                         "days": {"type": "integer"}}}}


def _events(chunks: list[bytes]) -> list[tuple[str, Any]]:
    splitter = SSESplitter(1 << 20)
    events = [e for chunk in chunks for e in splitter.feed(chunk)]
    out = []
    for event in events:
        name = event.split(b"\n", 1)[0].removeprefix(b"event: ").decode()
        data = event_data(event)
        assert data is not None
        out.append((name, orjson.loads(data)))
    return out


@pytest.mark.parametrize("body", [
    {"model": "m", "input": "hi"},
    {"model": "m", "input": "hi", "reasoning": {"effort": "medium"}},
    {"model": "m", "input": "hi", "tools": [TOOL], "tool_choice": "required"},
    {"model": "m", "input": "hi", "text": {"format": {"type": "json_schema", "name": "w",
                                                       "schema": TOOL["parameters"]}}},
])
def test_whole_answers_and_streams_are_the_sdks_types(body: dict[str, Any]) -> None:
    """Each answer validates as a Response and each event as a ResponseStreamEvent whose
    `event:` line names its type, with sequence numbers 0, 1, 2, ..."""
    simulator = ResponsesSimulator()
    Response.model_validate(simulator.answer(body, WORDS, False))
    events = _events(simulator.stream({**body, "stream": True}, WORDS, False))
    for name, payload in events:
        assert name == payload["type"]
        EVENT.validate_python(payload)
    assert [p["sequence_number"] for _, p in events] == list(range(len(events)))
    final = Response.model_validate(events[-1][1]["response"])
    assert final.status == "completed" and final.usage is not None


def test_reasoning_tokens_are_counted_in_the_output() -> None:
    """A reasoning effort spends reasoning tokens, included in output_tokens, with a
    reasoning item first."""
    answer = ResponsesSimulator().answer({"model": "m", "input": "x",
                                          "reasoning": {"effort": "high"}}, WORDS, False)
    assert answer["output"][0]["type"] == "reasoning"
    assert answer["usage"]["output_tokens_details"]["reasoning_tokens"] == 512
    assert answer["usage"]["output_tokens"] == 512 + len(WORDS)


def test_a_required_tool_is_called_with_its_parameters_filled() -> None:
    """tool_choice required (or naming the function) calls it with a sample of every
    property; auto answers in text."""
    call = forced_call({"tools": [TOOL], "tool_choice": {"type": "function",
                                                         "name": "get_weather"}})
    assert call is not None and orjson.loads(call["arguments"]) == {"city": "simulated", "days": 1}
    assert forced_call({"tools": [TOOL], "tool_choice": "auto"}) is None
    assert sample({"type": "array", "items": {"enum": ["a", "b"]}}) == ["a"]


def test_an_output_limit_makes_the_response_incomplete() -> None:
    """Cut short by max_output_tokens: status incomplete with that reason."""
    answer = ResponsesSimulator().answer({"model": "m", "input": "x", "max_output_tokens": 2},
                                         WORDS[:2], True)
    assert answer["status"] == "incomplete"
    assert answer["incomplete_details"] == {"reason": "max_output_tokens"}


def test_stored_routes_answer_like_the_api() -> None:
    """GET finds a stored response, input_items lists its input, cancel refuses a response
    not run in the background, DELETE removes it and a second GET is a 404."""
    simulator = ResponsesSimulator()
    made = simulator.answer({"model": "m", "input": "keep"}, WORDS, False)
    ident = made["id"]
    assert simulator.stored("GET", ident) == (200, orjson.dumps(made))
    status, items = simulator.stored("GET", f"{ident}/input_items")
    assert status == 200 and orjson.loads(items)["data"][0]["content"][0]["text"] == "keep"
    assert simulator.stored("POST", f"{ident}/cancel")[0] == 400
    assert orjson.loads(simulator.stored("DELETE", ident)[1])["deleted"] is True
    assert simulator.stored("GET", ident)[0] == 404
    unstored = simulator.answer({"model": "m", "input": "x", "store": False}, WORDS, False)
    assert simulator.stored("GET", unstored["id"])[0] == 404

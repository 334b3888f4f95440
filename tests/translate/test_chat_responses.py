"""Chat completions <-> the Responses API: requests, answers and streams both ways, checked
against the official SDK's types, and what has no meaning on the other side refused."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from gateway.errors import InvalidRequest
from gateway.sse import SSESplitter, event_data
from gateway.translate import chat_responses as tr
from gateway.translate.chat_responses_stream import ChatToResponsesStream, ResponsesToChatStream

EVENT = TypeAdapter(ResponseStreamEvent)
TOOL = {"type": "function", "name": "get_weather", "description": "Weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
CHAT_TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                              "parameters": TOOL["parameters"]}}


def test_a_responses_request_becomes_chat() -> None:
    """instructions -> system, items -> messages (calls merged into one assistant turn, their
    outputs as tool messages), tools flattened back, limits, effort and formats mapped."""
    body = {
        "model": "m", "instructions": "Be brief.", "max_output_tokens": 50,
        "reasoning": {"effort": "low"}, "store": True, "metadata": {"a": "b"},
        "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"},
                            "strict": True}},
        "tools": [TOOL], "tool_choice": {"type": "function", "name": "get_weather"},
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "weather?"},
                                         {"type": "input_image", "image_url": "data:x"}]},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
            {"type": "function_call", "call_id": "c2", "name": "get_weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
        ],
        "stream": True,
    }
    chat = tr.responses_to_chat_request(body)
    assert chat["messages"][0] == {"role": "system", "content": "Be brief."}
    assert chat["messages"][1]["content"][1] == {"type": "image_url",
                                                 "image_url": {"url": "data:x", "detail": "auto"}}
    assert [c["id"] for c in chat["messages"][2]["tool_calls"]] == ["c1", "c2"]
    assert chat["messages"][3] == {"role": "tool", "tool_call_id": "c1", "content": "sunny"}
    assert chat["tools"] == [CHAT_TOOL]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert chat["max_completion_tokens"] == 50 and chat["reasoning_effort"] == "low"
    assert chat["response_format"]["json_schema"]["name"] == "w"
    assert chat["stream_options"] == {"include_usage": True}
    assert "metadata" not in chat and "store" not in chat


@pytest.mark.parametrize(("body", "param"), [
    ({"tools": [{"type": "web_search"}]}, "tools[0]"),
    ({"tools": [TOOL, {"type": "file_search", "vector_store_ids": []}]}, "tools[1]"),
    ({"previous_response_id": "resp_1"}, "previous_response_id"),
    ({"conversation": "conv_1"}, "conversation"),
    ({"background": True}, "background"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]"),
    ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
     "input[0].content"),
    ({"tool_choice": {"type": "web_search"}}, "tool_choice"),
])
def test_what_chat_cannot_carry_is_refused(body: dict[str, Any], param: str) -> None:
    """Built-in tools, server-side state and items chat has no place for: a 400 naming the
    parameter."""
    with pytest.raises(InvalidRequest) as info:
        tr.responses_to_chat_request({"model": "m", "input": "hi", **body})
    assert info.value.status == 400 and info.value.param == param


CHAT_ANSWER = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000, "model": "up",
    "choices": [{"index": 0, "finish_reason": "tool_calls", "logprobs": None, "message": {
        "role": "assistant", "content": "Let me look.", "refusal": None,
        "tool_calls": [{"id": "call_1", "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}]}}],
    "usage": {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42,
              "prompt_tokens_details": {"cached_tokens": 10},
              "completion_tokens_details": {"reasoning_tokens": 4}},
}


def test_a_chat_answer_becomes_a_response_and_back() -> None:
    """A chat completion as a Response (message and function call items, usage renamed),
    and that Response as a chat completion again, both valid SDK types."""
    response = tr.chat_to_responses_answer(CHAT_ANSWER, {"model": "m", "input": "x"}, model="m")
    parsed = Response.model_validate(response)
    assert parsed.output_text == "Let me look." and parsed.model == "m"
    assert parsed.output[1].type == "function_call" and parsed.output[1].call_id == "call_1"
    assert parsed.usage is not None and parsed.usage.input_tokens_details.cached_tokens == 10
    assert parsed.usage.output_tokens_details.reasoning_tokens == 4
    chat = ChatCompletion.model_validate(tr.responses_to_chat_answer(response))
    assert chat.choices[0].message.content == "Let me look."
    assert chat.choices[0].finish_reason == "tool_calls"
    assert chat.usage is not None and chat.usage.prompt_tokens == 30


def test_a_cut_chat_answer_is_an_incomplete_response() -> None:
    """finish_reason length: status incomplete, reason max_output_tokens."""
    cut = {**CHAT_ANSWER, "choices": [{"index": 0, "finish_reason": "length", "message": {
        "role": "assistant", "content": "Half"}}]}
    response = tr.chat_to_responses_answer(cut, {"model": "m"})
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}


def test_a_chat_request_becomes_a_responses_request_that_stores_nothing() -> None:
    """messages -> items (tool calls and results as function_call items), tools flattened,
    store false; stop sequences and n > 1 refused."""
    body = {"model": "m", "max_tokens": 9, "tools": [CHAT_TOOL], "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "assistant", "content": None, "tool_calls": CHAT_ANSWER["choices"][0]  # type: ignore[index]
         ["message"]["tool_calls"]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}]}
    out = tr.chat_to_responses_request(body)
    assert out["store"] is False and out["max_output_tokens"] == 9 and out["tools"] == [TOOL]
    assert out["input"][0] == {"type": "message", "role": "system",
                               "content": [{"type": "input_text", "text": "Be brief."}]}
    assert out["input"][1]["type"] == "function_call" and out["input"][1]["call_id"] == "call_1"
    assert out["input"][2] == {"type": "function_call_output", "call_id": "call_1",
                               "output": "sunny"}
    for refused in ({"stop": ["x"]}, {"n": 2}, {"logit_bias": {"1": 2}}):
        with pytest.raises(InvalidRequest):
            tr.chat_to_responses_request({**body, **refused})


def _chunk(delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> bytes:
    chunk = {"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1_700_000_000,
             "model": "up", "choices": [] if usage else [{"index": 0, "delta": delta,
                                                         "finish_reason": finish}]}
    if usage:
        chunk["usage"] = usage
    return b"data: " + orjson.dumps(chunk)


CHAT_STREAM = [
    _chunk({"role": "assistant", "content": ""}),
    _chunk({"content": "Let "}), _chunk({"content": "me look."}),
    _chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                            "function": {"name": "get_weather", "arguments": ""}}]}),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Oslo"}'}}]}),
    _chunk({}, "tool_calls"),
    _chunk({}, usage=CHAT_ANSWER["usage"]),
    b"data: [DONE]",
]


def _typed(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    splitter = SSESplitter(1 << 20)
    out = []
    for event in splitter.feed(data):
        name = event.split(b"\n", 1)[0].removeprefix(b"event: ").decode()
        payload = event_data(event)
        assert payload is not None
        out.append((name, orjson.loads(payload)))
    return out


def test_a_chat_stream_becomes_the_full_typed_event_sequence() -> None:
    """Chunks in, Responses events out: created, in_progress, the message item's events, the
    function call's, completed with the whole response; every event an SDK type, sequence
    numbers 0..n, output indexes in order."""
    translator = ChatToResponsesStream({"model": "m", "input": "x"}, model="m")
    events = _typed(b"".join(translator.feed(e) for e in CHAT_STREAM))
    assert translator.done
    kinds = [name for name, _ in events]
    assert kinds == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.delta", "response.function_call_arguments.done",
        "response.output_item.done", "response.completed"]
    for name, payload in events:
        assert payload["type"] == name
        EVENT.validate_python(payload)
    assert [p["sequence_number"] for _, p in events] == list(range(len(events)))
    assert events[10][1]["output_index"] == 1
    final = Response.model_validate(events[-1][1]["response"])
    assert final.output_text == "Let me look." and final.output[1].arguments == '{"city":"Oslo"}'
    assert final.usage is not None and final.usage.output_tokens == 12


def test_a_responses_stream_becomes_chat_chunks() -> None:
    """The typed events of a translated stream, fed back, are chat chunks (valid SDK types)
    with the text, the tool call and, when asked for, the usage chunk, then [DONE]."""
    forward = ChatToResponsesStream({"model": "m", "input": "x"})
    splitter = SSESplitter(1 << 20)
    events = splitter.feed(b"".join(forward.feed(e) for e in CHAT_STREAM))
    back = ResponsesToChatStream(include_usage=True, model="m")
    out = b"".join(back.feed(e) for e in events)
    datas = [event_data(e) for e in SSESplitter(1 << 20).feed(out)]
    assert datas[-1] == b"[DONE]" and back.done
    chunks = [ChatCompletionChunk.model_validate(orjson.loads(d)) for d in datas[:-1] if d]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Let me look."
    calls = [c.choices[0].delta.tool_calls for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert calls[0][0].id == "call_1" and calls[0][0].function is not None
    assert "".join(c[0].function.arguments or "" for c in calls if c[0].function) == '{"city":"Oslo"}'
    assert chunks[-2].choices[0].finish_reason == "tool_calls"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 12


def test_an_error_chunk_ends_the_translated_stream_with_an_error_event() -> None:
    """An upstream error chunk mid-stream becomes an `error` event with the next sequence
    number, and the translation stops."""
    translator = ChatToResponsesStream({"model": "m"})
    out = translator.feed(CHAT_STREAM[0]) + translator.feed(
        b'data: {"error": {"message": "overloaded", "type": "server_error", "code": "overloaded"}}')
    events = _typed(out)
    assert events[-1][0] == "error" and events[-1][1]["code"] == "overloaded"
    assert events[-1][1]["sequence_number"] == 2 and translator.done
    EVENT.validate_python(events[-1][1])

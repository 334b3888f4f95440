"""OpenAI chat completions <-> Gemini generateContent, pure: requests, answers and streams
both ways, table-driven, and what cannot be translated refused with a 400."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.errors import InvalidRequest
from gateway.translate import chat_gemini as tg
from gateway.translate.chat_gemini_stream import ChatToGeminiStream, GeminiToChatStream

TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                         "parameters": {"type": "object", "properties": {
                                             "city": {"type": "string"}}}}}
CHAT = {
    "model": "gemini-2.5-flash",
    "messages": [
        {"role": "system", "content": "Be brief"},
        {"role": "user", "content": [{"type": "text", "text": "weather?"},
                                     {"type": "image_url",
                                      "image_url": {"url": "data:image/png;base64,AAAA"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ],
    "tools": [TOOL], "tool_choice": "required", "temperature": 0.5, "max_tokens": 100,
    "stop": "END", "response_format": {"type": "json_object"},
}
GEMINI = {
    "contents": [
        {"role": "user", "parts": [{"text": "weather?"},
                                   {"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]},
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather",
                                                      "args": {"city": "Oslo"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather",
                                                         "response": {"content": "sunny"}}}]},
    ],
    "systemInstruction": {"parts": [{"text": "Be brief"}]},
    "tools": [{"functionDeclarations": [{"name": "get_weather", "description": "Weather",
                                         "parametersJsonSchema": TOOL["function"][
                                             "parameters"]}]}],  # type: ignore[index]
    "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
    "generationConfig": {"temperature": 0.5, "maxOutputTokens": 100, "stopSequences": ["END"],
                         "responseMimeType": "application/json"},
}


def test_chat_request_becomes_a_gemini_request() -> None:
    """System, user text and image, a tool call and its result, tools, tool choice and
    sampling map to their Gemini places."""
    assert tg.chat_to_gemini_request(CHAT) == GEMINI


def test_gemini_request_becomes_a_chat_request() -> None:
    """The reverse: the function result answers the call it follows, by id."""
    chat = tg.gemini_to_chat_request(GEMINI)
    messages = chat["messages"]
    assert messages[0] == {"role": "system", "content": "Be brief"}
    assert messages[1]["content"][1] == {"type": "image_url",
                                         "image_url": {"url": "data:image/png;base64,AAAA"}}
    call = messages[2]["tool_calls"][0]
    assert call["function"] == {"name": "get_weather", "arguments": '{"city":"Oslo"}'}
    assert messages[3] == {"role": "tool", "tool_call_id": call["id"],
                           "content": '{"content":"sunny"}'}
    assert chat["tools"] == [TOOL] and chat["tool_choice"] == "required"
    assert (chat["temperature"], chat["max_completion_tokens"], chat["stop"]) == (
        0.5, 100, ["END"])
    assert chat["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize(("translate", "body", "words"), [
    (tg.chat_to_gemini_request, {"messages": [], "logit_bias": {"1": 1}}, "logit_bias"),
    (tg.chat_to_gemini_request, {"messages": [], "tools": [{"type": "web_search"}]},
     "not a function"),
    (tg.chat_to_gemini_request, {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]}, "by URL"),
    (tg.gemini_to_chat_request, {"contents": [], "tools": [{"googleSearch": {}}]},
     "googleSearch"),
    (tg.gemini_to_chat_request, {"contents": [], "cachedContent": "cachedContents/1"},
     "cachedContent"),
    (tg.gemini_to_chat_request, {"contents": [{"role": "user", "parts": [
        {"fileData": {"fileUri": "gs://x"}}]}]}, "fileData"),
])
def test_what_has_no_meaning_on_the_other_side_is_refused(translate: Any, body: Any,
                                                          words: str) -> None:
    """Built-in tools, Google-side caches, files, logit bias, remote images: a 400."""
    with pytest.raises(InvalidRequest, match=words):
        translate(body)


GEMINI_ANSWER = {
    "candidates": [{"content": {"parts": [{"text": "thinking...", "thought": True},
                                          {"text": "Sunny"},
                                          {"functionCall": {"name": "f", "args": {"a": 1}}}],
                                "role": "model"}, "finishReason": "STOP", "index": 0}],
    "usageMetadata": {"promptTokenCount": 10, "cachedContentTokenCount": 4,
                      "candidatesTokenCount": 3, "thoughtsTokenCount": 6},
    "modelVersion": "gemini-2.5-flash-001", "responseId": "abc",
}


def test_gemini_answer_becomes_a_chat_completion() -> None:
    """Thoughts are left out, a function call is a tool call (finish tool_calls), usage
    counts thinking as completion tokens."""
    answer = tg.gemini_to_chat_answer(GEMINI_ANSWER, model="gemini-2.5-flash")
    choice = answer["choices"][0]
    assert choice["message"]["content"] == "Sunny"
    assert choice["message"]["tool_calls"][0]["function"] == {"name": "f",
                                                              "arguments": '{"a":1}'}
    assert choice["finish_reason"] == "tool_calls" and answer["model"] == "gemini-2.5-flash"
    assert answer["usage"] == {"prompt_tokens": 10, "completion_tokens": 9, "total_tokens": 19,
                               "prompt_tokens_details": {"cached_tokens": 4},
                               "completion_tokens_details": {"reasoning_tokens": 6}}


def test_chat_completion_becomes_a_gemini_answer() -> None:
    """Text and tool calls become parts, length MAX_TOKENS, reasoning thoughts apart."""
    completion = {"id": "chatcmpl-1", "model": "gpt-4.1", "choices": [{
        "index": 0, "finish_reason": "length", "message": {
            "role": "assistant", "content": "Hi", "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}}],
        "usage": {"prompt_tokens": 8, "completion_tokens": 5,
                  "completion_tokens_details": {"reasoning_tokens": 2}}}
    answer = tg.chat_to_gemini_answer(completion)
    candidate = answer["candidates"][0]
    assert candidate["content"]["parts"] == [{"text": "Hi"},
                                             {"functionCall": {"name": "f", "args": {}}}]
    assert candidate["finishReason"] == "MAX_TOKENS"
    assert answer["usageMetadata"] == {"promptTokenCount": 8, "candidatesTokenCount": 3,
                                       "totalTokenCount": 13, "thoughtsTokenCount": 2}


def _sse(payload: Any) -> bytes:
    return b"data: " + (payload if isinstance(payload, bytes) else orjson.dumps(payload))


def _chunks(out: bytes) -> list[Any]:
    return [orjson.loads(e.removeprefix(b"data: ")) if e != b"data: [DONE]" else "[DONE]"
            for e in out.replace(b"\r\n", b"\n").split(b"\n\n") if e]


def test_gemini_stream_becomes_a_chat_stream() -> None:
    """Role first, text as it comes, a function call whole, then finish, usage, [DONE]."""
    stream = GeminiToChatStream(include_usage=True, model="gemini-2.5-flash")
    first = {"candidates": [{"content": {"parts": [{"text": "Hel"}]}, "index": 0}],
             "responseId": "r"}
    out = stream.feed(_sse(first)) + stream.feed(_sse(GEMINI_ANSWER))
    chunks = _chunks(out)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[1]["choices"][0]["delta"] == {"content": "Hel"}
    assert chunks[2]["choices"][0]["delta"] == {"content": "Sunny"}
    assert chunks[3]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"] == "f"
    assert chunks[4]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[5]["usage"]["completion_tokens"] == 9 and chunks[6] == "[DONE]"
    assert stream.done and {c["model"] for c in chunks[:-1]} == {"gemini-2.5-flash"}


def test_chat_stream_becomes_a_gemini_stream() -> None:
    """Text chunks pass as parts; tool-call argument pieces are joined into one
    functionCall in the last chunk, with the finish reason and the usage."""
    stream = ChatToGeminiStream()

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        return _sse({"id": "c1", "model": "gpt-4.1", "choices": [
            {"index": 0, "delta": delta, "finish_reason": finish}], **extra})

    out = b"".join([
        stream.feed(chunk({"role": "assistant", "content": "Hi"})),
        stream.feed(chunk({"tool_calls": [{"index": 0, "id": "x", "function": {
            "name": "f", "arguments": '{"a"'}}]})),
        stream.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]})),
        stream.feed(chunk({}, "tool_calls")),
        stream.feed(_sse({"id": "c1", "model": "gpt-4.1", "choices": [],
                          "usage": {"prompt_tokens": 4, "completion_tokens": 2}})),
    ])
    chunks = _chunks(out)
    assert chunks[0]["candidates"][0]["content"]["parts"] == [{"text": "Hi"}]
    last = chunks[-1]
    assert last["candidates"][0]["content"]["parts"] == [{"functionCall": {"name": "f",
                                                                            "args": {"a": 1}}}]
    assert last["candidates"][0]["finishReason"] == "STOP"
    assert last["usageMetadata"]["promptTokenCount"] == 4 and stream.done
    assert stream.feed(_sse(b"[DONE]")) == b""

"""Chat completions <-> Messages translation of requests, JSON answers and errors:
table-driven over bodies written as the SDKs send them, checked with the SDKs' types."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import orjson
import pytest
from anthropic.types.message_create_params import MessageCreateParamsNonStreaming
from openai.types.chat import ChatCompletion
from openai.types.chat.completion_create_params import CompletionCreateParamsBase
from pydantic import TypeAdapter

from gateway.errors import InvalidRequest
from gateway.translate.chat_messages import (
    DEFAULT_MAX_TOKENS,
    chat_to_messages_answer,
    chat_to_messages_request,
    messages_error_to_chat,
    messages_to_chat_answer,
    messages_to_chat_request,
)
from tests.fakes import anthropic_wire as awire
from tests.fakes import openai_wire as owire

MESSAGES_PARAMS = TypeAdapter(MessageCreateParamsNonStreaming)
CHAT_PARAMS = TypeAdapter(CompletionCreateParamsBase)


def valid(adapter: TypeAdapter[Any], body: dict[str, Any]) -> None:
    """Validate a request body against the SDK's params type, all the way down (pydantic
    checks `Iterable` fields lazily, as they are consumed: consume them)."""
    def consume(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: consume(v) for k, v in value.items()}
        if isinstance(value, str | bytes | int | float | bool) or value is None:
            return value
        return [consume(v) for v in value]
    consume(adapter.validate_python(body))
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
WEATHER_SCHEMA = {"type": "object", "properties": {"location": {"type": "string"}},
                  "required": ["location"]}

# An OpenAI chat request with every translatable part, as the openai SDK sends it.
CHAT_FULL: dict[str, Any] = {
    "model": "claude-sonnet-4.5",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is in this image, and the weather in Paris?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}},
        ]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_abc", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"location\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_abc", "content": "18C and sunny"},
        {"role": "user", "content": "Thanks. And the image?"},
    ],
    "tools": [{"type": "function", "function": {"name": "get_weather",
                                                "description": "Weather in a city",
                                                "parameters": WEATHER_SCHEMA}}],
    "tool_choice": "auto",
    "parallel_tool_calls": False,
    "max_completion_tokens": 300,
    "temperature": 0.5,
    "top_p": 0.9,
    "stop": ["END"],
    "user": "user-42",
}

# The same conversation as an anthropic SDK client sends it.
MESSAGES_FULL: dict[str, Any] = {
    "model": "gpt-4.1",
    "max_tokens": 300,
    "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": [
            {"type": "text", "text": "What is in this image, and the weather in Paris?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        ]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_01abc", "name": "get_weather",
             "input": {"location": "Paris"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01abc",
             "content": [{"type": "text", "text": "18C and sunny"}]},
            {"type": "text", "text": "Thanks. And the image?"}]},
    ],
    "tools": [{"name": "get_weather", "description": "Weather in a city",
               "input_schema": WEATHER_SCHEMA, "cache_control": {"type": "ephemeral"}}],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "temperature": 0.5,
    "top_p": 0.9,
    "stop_sequences": ["END"],
    "metadata": {"user_id": "user-42"},
}


def test_chat_request_becomes_a_valid_messages_request() -> None:
    """Every translatable part of a chat request maps to its Messages counterpart."""
    out = chat_to_messages_request(CHAT_FULL)
    valid(MESSAGES_PARAMS, out)
    assert out["system"] == [{"type": "text", "text": "You are terse."}]
    assert out["max_tokens"] == 300 and out["stop_sequences"] == ["END"]
    assert (out["temperature"], out["top_p"], out["metadata"]) == (0.5, 0.9, {"user_id": "user-42"})
    first, assistant, results = out["messages"][:3]
    assert first["content"][1] == {"type": "image", "source": {
        "type": "base64", "media_type": "image/png", "data": PNG}}
    assert first["content"][2] == {"type": "image", "source": {
        "type": "url", "url": "https://example.com/cat.jpg"}}
    assert assistant == {"role": "assistant", "content": [
        {"type": "tool_use", "id": "call_abc", "name": "get_weather", "input": {"location": "Paris"}}]}
    # The tool result and the next user text are one user turn, the result first.
    assert results == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "call_abc", "content": "18C and sunny"},
        {"type": "text", "text": "Thanks. And the image?"}]}
    assert len(out["messages"]) == 3
    assert out["tools"] == [{"name": "get_weather", "description": "Weather in a city",
                             "input_schema": WEATHER_SCHEMA}]
    assert out["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


def test_messages_request_becomes_a_valid_chat_request() -> None:
    """Every translatable part of a Messages request maps to its chat counterpart."""
    out = messages_to_chat_request(MESSAGES_FULL)
    valid(CHAT_PARAMS, out)
    assert out["messages"][0] == {"role": "system", "content": "You are terse."}
    user = out["messages"][1]
    assert user["content"][1] == {"type": "image_url",
                                  "image_url": {"url": f"data:image/png;base64,{PNG}"}}
    assert out["messages"][2] == {"role": "assistant", "content": "Let me check.", "tool_calls": [
        {"id": "toolu_01abc", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'}}]}
    assert out["messages"][3] == {"role": "tool", "tool_call_id": "toolu_01abc",
                                  "content": "18C and sunny"}
    assert out["messages"][4] == {"role": "user", "content": "Thanks. And the image?"}
    assert out["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "parameters": WEATHER_SCHEMA, "description": "Weather in a city"}}]
    assert (out["tool_choice"], out["parallel_tool_calls"]) == ("auto", False)
    assert (out["max_tokens"], out["stop"], out["user"]) == (300, ["END"], "user-42")
    assert "stream" not in out


def test_round_trip_keeps_the_conversation() -> None:
    """chat -> Messages -> chat keeps roles, text, images, tool calls and their results."""
    back = messages_to_chat_request(chat_to_messages_request(CHAT_FULL))
    valid(CHAT_PARAMS, back)
    roles = [m["role"] for m in back["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "user"]
    assert back["messages"][2]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert back["messages"][3] == {"role": "tool", "tool_call_id": "call_abc",
                                   "content": "18C and sunny"}
    assert back["messages"][1]["content"] == [
        *CHAT_FULL["messages"][1]["content"][:2],
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}]
    assert back["tools"] == CHAT_FULL["tools"] and back["stop"] == ["END"]


@pytest.mark.parametrize(("choice", "parallel", "expected"), [
    ("auto", None, {"type": "auto"}),
    ("none", None, {"type": "none"}),
    ("required", None, {"type": "any"}),
    ({"type": "function", "function": {"name": "get_weather"}}, None,
     {"type": "tool", "name": "get_weather"}),
    (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
    ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
    (None, None, None),
])
def test_tool_choice_to_messages(choice: Any, parallel: Any, expected: Any) -> None:
    """tool_choice and parallel_tool_calls map to Messages' tool_choice."""
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}],
            "tools": CHAT_FULL["tools"], "tool_choice": choice, "parallel_tool_calls": parallel}
    assert chat_to_messages_request(body).get("tool_choice") == expected


@pytest.mark.parametrize(("choice", "expected"), [
    ({"type": "auto"}, "auto"), ({"type": "any"}, "required"), ({"type": "none"}, "none"),
    ({"type": "tool", "name": "get_weather"}, {"type": "function", "function": {"name": "get_weather"}}),
])
def test_tool_choice_to_chat(choice: Any, expected: Any) -> None:
    """Messages' tool_choice maps to chat's."""
    body = {**MESSAGES_FULL, "tool_choice": choice}
    assert messages_to_chat_request(body)["tool_choice"] == expected


def test_defaults_and_streaming() -> None:
    """A chat request without max tokens gets the default; a streamed Messages request asks
    its OpenAI upstream for usage."""
    out = chat_to_messages_request({"model": "m", "stream": True, "stop": "STOP",
                                    "messages": [{"role": "developer", "content": "Be kind"},
                                                 {"role": "user", "content": "hi"}]})
    assert out["max_tokens"] == DEFAULT_MAX_TOKENS and out["stream"] is True
    assert out["stop_sequences"] == ["STOP"] and out["system"] == [{"type": "text", "text": "Be kind"}]
    chat = messages_to_chat_request({"model": "m", "max_tokens": 5, "stream": True,
                                     "system": "Be kind",
                                     "messages": [{"role": "user", "content": "hi"}]})
    assert chat["stream_options"] == {"include_usage": True}
    assert chat["messages"][0] == {"role": "system", "content": "Be kind"}


def test_pdf_documents_translate_both_ways() -> None:
    """A base64 PDF document is a chat `file` part and back."""
    doc = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                          "data": "JVBERi0="}}
    chat = messages_to_chat_request({"model": "m", "max_tokens": 5,
                                     "messages": [{"role": "user", "content": [doc]}]})
    part = chat["messages"][0]["content"][0]
    assert part == {"type": "file", "file": {"filename": "document.pdf",
                                             "file_data": "data:application/pdf;base64,JVBERi0="}}
    back = chat_to_messages_request({"model": "m", "messages": [{"role": "user", "content": [part]}]})
    assert back["messages"][0]["content"] == [doc]


_CHAT_USER = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(("extra", "param"), [
    ({"n": 2}, "n"),
    ({"logprobs": True}, "logprobs"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}},
     "response_format"),
    ({"frequency_penalty": 0.5}, "frequency_penalty"),
    ({"presence_penalty": -1}, "presence_penalty"),
    ({"logit_bias": {"50256": -100}}, "logit_bias"),
    ({"reasoning_effort": "high"}, "reasoning_effort"),
    ({"modalities": ["text", "audio"]}, "modalities"),
    ({"tools": [{"type": "custom", "custom": {"name": "grammar"}}]}, "tools"),
    ({"messages": [{"role": "user", "content": [{"type": "input_audio",
                                                  "input_audio": {"data": "AA", "format": "wav"}}]}]},
     "messages"),
    ({"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}]},
     "messages"),
    ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages"),
])
def test_chat_only_features_are_refused(extra: dict[str, Any], param: str) -> None:
    """What Messages cannot express is a 400 naming the parameter, never silently dropped."""
    body = {"model": "m", "messages": _CHAT_USER, **extra}
    with pytest.raises(InvalidRequest) as info:
        chat_to_messages_request(body)
    assert info.value.param == param and info.value.status == 400
    assert "Anthropic Messages API" in info.value.message


def test_harmless_chat_extras_pass() -> None:
    """Zero penalties, n=1, text format and a seed are accepted."""
    body = {"model": "m", "messages": _CHAT_USER, "n": 1, "frequency_penalty": 0,
            "presence_penalty": 0, "response_format": {"type": "text"}, "seed": 7, "store": False}
    assert chat_to_messages_request(body)["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]}]


_USER = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(("extra", "param"), [
    ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "thinking"),
    ({"top_k": 40}, "top_k"),
    ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools"),
    ({"mcp_servers": [{"type": "url", "url": "https://mcp.example", "name": "x"}]}, "mcp_servers"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
        {"type": "text", "text": "a"}]}]}, "messages"),
    ({"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
                                                  "content": [{"type": "image", "source": {}}]}]}]},
     "messages"),
    ({"messages": [{"role": "user", "content": [{"type": "document", "source": {
        "type": "url", "url": "https://x/a.pdf"}}]}]}, "messages"),
    ({"messages": [{"role": "user", "content": [{"type": "search_result", "source": "x"}]}]},
     "messages"),
])
def test_messages_only_features_are_refused(extra: dict[str, Any], param: str) -> None:
    """What chat completions cannot express is a 400 naming the parameter."""
    body = {"model": "m", "max_tokens": 5, "messages": _USER, **extra}
    with pytest.raises(InvalidRequest) as info:
        messages_to_chat_request(body)
    assert info.value.param == param and "OpenAI chat completions" in info.value.message


def test_disabled_thinking_is_accepted() -> None:
    """thinking {type: disabled} asks for nothing and is accepted."""
    body = {"model": "m", "max_tokens": 5, "messages": _USER, "thinking": {"type": "disabled"}}
    assert messages_to_chat_request(body)["messages"] == [{"role": "user", "content": "hi"}]


# --- answers ------------------------------------------------------------------------------

ANSWER = awire.message(
    ident="msg_01XFDUDYJgAACzvnptvVoYEL", model="claude-sonnet-4-5-20250929",
    content=[awire.thinking_block("Let me see", "sig"), awire.text_block("Checking the weather."),
             awire.tool_use_block("toolu_01A09q90qw90lq917835lq9", "get_weather",
                                  {"location": "Paris"})],
    stop_reason="tool_use",
    usage=awire.Usage(20, 45, cache_write_5m=1000, cache_write_1h=500, cache_read=300))


def test_messages_answer_becomes_a_chat_completion() -> None:
    """Text, tool calls, finish reason and usage (input totals all three kinds) map to chat."""
    anthropic.types.Message.model_validate(ANSWER)
    out = messages_to_chat_answer(ANSWER, model="claude-sonnet-4.5", created=1_700_000_000)
    completion = ChatCompletion.model_validate(out)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content == "Checking the weather."
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert call.id == "toolu_01A09q90qw90lq917835lq9"
    assert orjson.loads(call.function.arguments) == {"location": "Paris"}  # type: ignore[union-attr]
    assert completion.model == "claude-sonnet-4.5" and completion.id == ANSWER["id"]
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens == 1820 and usage.completion_tokens == 45
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 300


def test_chat_completion_becomes_a_messages_answer() -> None:
    """A chat completion maps to a Message: text, finish reason, usage without the cached part."""
    usage = owire.Usage(prompt_tokens=2000, completion_tokens=30, cached_tokens=1024)
    completion = owire.chat_completion(completion_id="chatcmpl-1", model="gpt-4.1-2025-04-14",
                                       content="Hi there", finish_reason="length", usage=usage,
                                       system_fingerprint="fp_1")
    out = chat_to_messages_answer(completion)
    message = anthropic.types.Message.model_validate(out)
    assert message.stop_reason == "max_tokens" and message.model == "gpt-4.1-2025-04-14"
    assert message.content[0].type == "text" and message.content[0].text == "Hi there"
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens) == (976, 1024)
    assert message.usage.output_tokens == 30


def test_tool_calls_round_trip_through_both_answers() -> None:
    """Messages answer -> chat completion -> Messages answer keeps text, tool_use and stop."""
    back = chat_to_messages_answer(messages_to_chat_answer(ANSWER))
    anthropic.types.Message.model_validate(back)
    assert back["content"] == ANSWER["content"][1:]  # the thinking block has no place in chat
    assert back["stop_reason"] == "tool_use"
    assert back["usage"]["input_tokens"] + back["usage"]["cache_read_input_tokens"] == 1820


@pytest.mark.parametrize(("stop", "finish"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"),
    ("tool_use", "tool_calls"), ("refusal", "content_filter"), ("pause_turn", "stop"),
    ("model_context_window_exceeded", "length"),
])
def test_stop_reasons_map_to_finish_reasons(stop: str, finish: str) -> None:
    """Each Anthropic stop reason has the chat finish reason of the same meaning."""
    assert messages_to_chat_answer({**ANSWER, "stop_reason": stop})["choices"][0][
        "finish_reason"] == finish


def test_invalid_tool_arguments_are_kept() -> None:
    """A model's invalid JSON arguments are kept under `_raw`, not lost."""
    completion = {"id": "c", "model": "m", "choices": [{"index": 0, "finish_reason": "tool_calls",
                  "message": {"role": "assistant", "content": None, "tool_calls": [
                      {"id": "call_1", "type": "function",
                       "function": {"name": "f", "arguments": "{not json"}}]}}]}
    out = chat_to_messages_answer(completion)
    assert out["content"] == [{"type": "tool_use", "id": "call_1", "name": "f",
                               "input": {"_raw": "{not json"}}]
    assert out["usage"] == {"input_tokens": 0, "output_tokens": 0}


def test_anthropic_error_in_openai_shape() -> None:
    """An Anthropic error body becomes OpenAI's error shape, which the openai SDK reads."""
    raw = orjson.dumps(awire.error_body(529, request_id="req_1"))
    body = orjson.loads(messages_error_to_chat(raw))
    assert body == {"error": {"message": "Overloaded", "type": "overloaded_error", "param": None,
                              "code": "overloaded_error"}}
    assert messages_error_to_chat(b"<html>") == b"<html>"
    assert messages_error_to_chat(b'{"error": {"message": "x"}}') == b'{"error": {"message": "x"}}'
    assert issubclass(openai.InternalServerError, openai.APIStatusError)


def test_the_sdk_validation_used_here_is_deep() -> None:
    """The params check above does reject a malformed nested block (it is not a no-op)."""
    bad = {"model": "m", "max_tokens": 5,
           "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "x"}}]}]}
    with pytest.raises(ValueError):
        valid(MESSAGES_PARAMS, bad)


def test_mid_conversation_system_message_to_chat() -> None:
    """A Messages `system` turn (a beta) becomes a chat system message in its place."""
    body = {"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": "hi"}, {"role": "system", "content": "Be brief."}]}
    assert messages_to_chat_request(body)["messages"] == [
        {"role": "user", "content": "hi"}, {"role": "system", "content": "Be brief."}]

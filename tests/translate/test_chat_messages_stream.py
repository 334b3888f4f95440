"""Streams translated event by event between chat completion chunks and Messages events:
what comes out is assembled by the SDKs' own stream accumulators."""

from __future__ import annotations

from typing import Any

import anthropic
import orjson
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk
from pydantic import TypeAdapter

from gateway.sse import SSESplitter
from gateway.translate.chat_messages_stream import ChatToMessagesStream, MessagesToChatStream
from tests.fakes import anthropic_wire as awire
from tests.fakes import openai_wire as owire

MODEL = "claude-sonnet-4-5-20250929"
EVENT = TypeAdapter(anthropic.types.RawMessageStreamEvent)


def _anthropic_stream(content: list[dict[str, Any]], stop: str = "end_turn") -> list[bytes]:
    raw = b"".join(awire.stream_events(
        ident="msg_01abc", model=MODEL, content=content, stop_reason=stop,
        usage=awire.Usage(25, 40, cache_write_5m=100, cache_read=1000)))
    return SSESplitter().feed(raw)


def _chat_chunks(out: bytes) -> tuple[list[ChatCompletionChunk], bool]:
    """The chunks of a chat SSE body (each validated by the SDK), and whether [DONE] ended it."""
    chunks, done = [], False
    for event in SSESplitter().feed(out):
        assert event.startswith(b"data: ") and not done
        data = event[6:]
        if data == b"[DONE]":
            done = True
        else:
            chunks.append(ChatCompletionChunk.model_validate(orjson.loads(data)))
    return chunks, done


def _to_chat(events: list[bytes], include_usage: bool = True) -> bytes:
    translator = MessagesToChatStream(include_usage=include_usage, model="claude-sonnet-4.5",
                                      created=1_700_000_000)
    return b"".join(translator.feed(e) for e in events)


def test_text_stream_to_chat() -> None:
    """A Messages text stream becomes chat chunks the openai SDK assembles, usage last."""
    text = "Hello there, this streams in several pieces"
    out = _to_chat(_anthropic_stream([awire.text_block(text)]))
    chunks, done = _chat_chunks(out)
    assert done
    state = ChatCompletionStreamState()
    for chunk in chunks:
        state.handle_chunk(chunk)
    final = state.get_final_completion()
    assert final.choices[0].message.content == text
    assert final.choices[0].finish_reason == "stop" and final.model == "claude-sonnet-4.5"
    usage = chunks[-1].usage
    assert usage is not None and chunks[-1].choices == []
    assert (usage.prompt_tokens, usage.completion_tokens) == (1125, 40)
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 1000


def test_usage_chunk_only_when_asked() -> None:
    """Without include_usage the client gets no usage chunk (the gateway still reads usage upstream)."""
    chunks, done = _chat_chunks(_to_chat(_anthropic_stream([awire.text_block("hi")]), False))
    assert done and all(c.usage is None and c.choices for c in chunks)


def test_tool_use_stream_to_chat_tool_calls() -> None:
    """tool_use blocks become tool_calls deltas with their arguments streamed; thinking is dropped."""
    content = [awire.thinking_block("Think first", "sig"), awire.text_block("Let me check."),
               awire.tool_use_block("toolu_01a", "get_weather", {"location": "Paris"}),
               awire.tool_use_block("toolu_01b", "get_time", {"tz": "Europe/Paris"})]
    chunks, _ = _chat_chunks(_to_chat(_anthropic_stream(content, "tool_use")))
    state = ChatCompletionStreamState()
    for chunk in chunks:
        state.handle_chunk(chunk)
    message = state.get_final_completion().choices[0].message
    assert message.content == "Let me check."
    calls = message.tool_calls or []
    assert [(c.id, c.function.name, orjson.loads(c.function.arguments)) for c in calls] == [
        ("toolu_01a", "get_weather", {"location": "Paris"}),
        ("toolu_01b", "get_time", {"tz": "Europe/Paris"})]
    assert state.get_final_completion().choices[0].finish_reason == "tool_calls"


def test_error_event_to_chat() -> None:
    """An Anthropic error event becomes OpenAI's in-stream error, and nothing follows it."""
    events = _anthropic_stream([awire.text_block("hi")])
    error = awire.event("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}})
    translator = MessagesToChatStream(include_usage=True)
    out = b"".join(translator.feed(e) for e in [*events[:2], error.strip(), *events[2:]])
    last = SSESplitter().feed(out)[-1]
    assert orjson.loads(last[6:]) == {"error": {"message": "Overloaded", "type": "overloaded_error",
                                                "param": None, "code": "overloaded_error"}}
    assert translator.done


def test_each_anthropic_event_yields_at_most_its_own_chunks() -> None:
    """Translation is event by event: each content delta gives exactly one chunk at once."""
    events = _anthropic_stream([awire.text_block("one two three four five six")])
    translator = MessagesToChatStream(include_usage=False)
    sizes = [len(SSESplitter().feed(translator.feed(e))) for e in events]
    deltas = [i for i, e in enumerate(events) if e.startswith(b"event: content_block_delta")]
    assert all(sizes[i] == 1 for i in deltas) and sizes[-1] == 1  # message_stop: [DONE]


# --- chat chunks to Messages events ---------------------------------------------------------


def _openai_text_stream(text: str, finish: str = "stop") -> list[bytes]:
    header = owire.ChunkHeader(completion_id="chatcmpl-1", model="gpt-4.1-2025-04-14",
                               created=1_700_000_000, system_fingerprint="fp_1",
                               include_usage=True, obfuscate=True)
    usage = owire.Usage(prompt_tokens=120, completion_tokens=9, cached_tokens=64)
    chunks = owire.stream_chunks(header, owire.split_chunks(text.split(" "), 4), finish, usage)
    raw = b"".join(owire.sse_event(orjson.dumps(c)) for c in chunks) + owire.SSE_DONE
    return SSESplitter().feed(raw)


# A tool call stream as api.openai.com sends it (compact JSON, arguments in fragments).
_TOOL_CHUNKS: list[dict[str, Any]] = [
    {"choices": [{"index": 0, "delta": {"role": "assistant", "content": None, "tool_calls": [
        {"index": 0, "id": "call_Xy1", "type": "function",
         "function": {"name": "get_weather", "arguments": ""}}], "refusal": None},
        "logprobs": None, "finish_reason": None}]},
    {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {
        "arguments": "{\"loc"}}]}, "logprobs": None, "finish_reason": None}]},
    {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {
        "arguments": "ation\": \"Paris\"}"}}]}, "logprobs": None, "finish_reason": None}]},
    {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 1, "id": "call_Zz2",
        "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
        "logprobs": None, "finish_reason": None}]},
    {"choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"}]},
    {"choices": [], "usage": {"prompt_tokens": 80, "completion_tokens": 20, "total_tokens": 100,
                              "prompt_tokens_details": {"cached_tokens": 0}}},
]


def _openai_tool_stream() -> list[bytes]:
    base = {"id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 1_700_000_000,
            "model": "gpt-4.1-2025-04-14", "system_fingerprint": "fp_1"}
    return [b"data: " + orjson.dumps({**base, **c}) for c in _TOOL_CHUNKS] + [b"data: [DONE]"]


def _assemble(out: bytes) -> tuple[anthropic.types.Message, list[str]]:
    """Parse a Messages SSE body with the SDK's event types and its own accumulator."""
    snapshot: Any = None
    names = []
    buffers: dict[int, bytes] = {}
    for name, data in awire.split_stream(out):
        names.append(name)
        assert data["type"] == name
        event = EVENT.validate_python(data)
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=buffers)
    return snapshot, names


def test_text_stream_to_messages() -> None:
    """Chat text chunks become Messages events the anthropic SDK assembles, with usage."""
    translator = ChatToMessagesStream(model="claude-sonnet-4.5")
    out = b"".join(translator.feed(e) for e in _openai_text_stream("Hello from an OpenAI model"))
    message, names = _assemble(out)
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello from an OpenAI model"
    assert message.stop_reason == "end_turn" and message.model == "claude-sonnet-4.5"
    assert message.usage.output_tokens == 9
    assert message.usage.input_tokens == 56 and message.usage.cache_read_input_tokens == 64


def test_tool_call_stream_to_messages_tool_use() -> None:
    """Chat tool call deltas become tool_use blocks with input_json_delta, stop reason tool_use."""
    translator = ChatToMessagesStream()
    out = b"".join(translator.feed(e) for e in _openai_tool_stream())
    message, names = _assemble(out)
    blocks = [(b.type, getattr(b, "name", None), getattr(b, "input", None)) for b in message.content]
    assert blocks == [("tool_use", "get_weather", {"location": "Paris"}),
                      ("tool_use", "get_time", {})]
    assert message.stop_reason == "tool_use" and message.usage.input_tokens == 80
    assert names.count("content_block_start") == names.count("content_block_stop") == 2


@pytest.mark.parametrize(("finish", "stop"), [("length", "max_tokens"),
                                               ("content_filter", "refusal")])
def test_finish_reasons_to_stop_reasons(finish: str, stop: str) -> None:
    """Chat finish reasons become the stop reasons of the same meaning."""
    translator = ChatToMessagesStream()
    out = b"".join(translator.feed(e) for e in _openai_text_stream("a b", finish))
    assert _assemble(out)[0].stop_reason == stop


def test_openai_error_event_to_messages() -> None:
    """OpenAI's in-stream error becomes a named Messages `error` event, and ends the stream."""
    translator = ChatToMessagesStream()
    events = _openai_text_stream("a b c")
    error = b'data: {"error": {"message": "The server had an error", "type": "server_error"}}'
    out = b"".join(translator.feed(e) for e in [*events[:2], error, *events[2:]])
    names = [name for name, _ in awire.split_stream(out)]
    assert names[-1] == "error" and translator.done
    assert awire.split_stream(out)[-1][1]["error"] == {"type": "api_error",
                                                       "message": "The server had an error"}


def test_close_without_done_still_ends_the_message() -> None:
    """close() ends an unfinished Messages stream properly (block stop, delta, stop), once."""
    translator = ChatToMessagesStream()
    events = _openai_text_stream("a b c")
    out = b"".join(translator.feed(e) for e in events[:3]) + translator.close()
    message, names = _assemble(out)
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert translator.close() == b"" and message.content[0].type == "text"

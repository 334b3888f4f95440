"""Which translation carries a client's dialect to an upstream, and how a translated
stream ends when the upstream's events go wrong."""

from __future__ import annotations

import orjson

from gateway.dialects.anthropic.messages import AnthropicCountTokens, AnthropicMessages
from gateway.dialects.gemini.generate import (
    GeminiBatchEmbed,
    GeminiCountTokens,
    GeminiEmbed,
    GeminiGenerate,
    GeminiStream,
)
from gateway.dialects.openai_chat import OpenAIChat
from gateway.dialects.openai_embeddings import OpenAIEmbeddings
from gateway.dialects.openai_responses.responses import OpenAIResponses
from gateway.dialects.registry import (
    ANTHROPIC_NATIVE,
    GEMINI_NATIVE,
    OPENAI_CHAT_ONLY,
    OPENAI_NATIVE,
)
from gateway.translate.dialects import translates, translation
from tests.fakes import anthropic_wire as awire
from tests.fakes import openai_wire as owire

CHAT_REQUEST = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'
MESSAGES_REQUEST = b'{"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}'


class _Timer:
    def first_chunk(self) -> None:
        """Nothing to time here."""

    def chunk(self) -> None:
        """Nothing to time here."""


def test_translates_says_what_translation_finds() -> None:
    """The chain's check (`translates`) agrees with the attempt's `translation` for every
    client dialect on every provider's set of dialects, without building one."""
    clients = [OpenAIChat(), OpenAIEmbeddings(), OpenAIResponses(), AnthropicMessages(),
               AnthropicCountTokens(), GeminiGenerate(), GeminiStream(), GeminiCountTokens(),
               GeminiEmbed(), GeminiBatchEmbed()]
    upstreams = [OPENAI_NATIVE, OPENAI_CHAT_ONLY, ANTHROPIC_NATIVE, GEMINI_NATIVE, frozenset()]
    found = 0
    for client in clients:
        for upstream in upstreams:
            made = translation(client, upstream)
            assert translates(client, upstream) is (made is not None), (client.name, upstream)
            found += made is not None
    assert found >= 10  # most pairs translate; the loop is not vacuous


def test_translations_by_pair() -> None:
    """Chat rides on Messages and Messages on chat; embeddings and count_tokens do not translate."""
    chat, messages = OpenAIChat(), AnthropicMessages()
    via_messages = translation(chat, ANTHROPIC_NATIVE)
    assert via_messages is not None and via_messages.upstream_path == "/v1/messages"
    assert via_messages.operation == "chat"
    assert via_messages.name == "openai.chat_completions>anthropic.messages"
    back = translation(messages, OPENAI_NATIVE)
    assert back is not None and back.name == "anthropic.messages>openai.chat_completions"
    assert back.upstream_path == "/chat/completions"
    assert translation(OpenAIEmbeddings(), ANTHROPIC_NATIVE) is None
    assert translation(AnthropicCountTokens(), OPENAI_NATIVE) is None
    assert translation(chat, frozenset()) is None


def test_every_client_dialect_reaches_every_upstream_through_chat() -> None:
    """Each chat-family client dialect has a path to each upstream dialect, named client
    then upstream; Gemini's URL is the call's (its action by whether it streams)."""
    clients = [OpenAIChat(), OpenAIResponses(), AnthropicMessages(), GeminiGenerate(),
               GeminiStream()]
    upstreams = {"openai.responses": frozenset({"openai.responses"}),
                 "openai.chat_completions": OPENAI_CHAT_ONLY,
                 "anthropic.messages": ANTHROPIC_NATIVE, "gemini.generate_content": GEMINI_NATIVE}
    for client in clients:
        for name, speaks in upstreams.items():
            if client.name in speaks:
                continue
            found = translation(client, speaks)
            assert found is not None, (client.name, name)
            assert found.name == f"{client.name}>{name}"
    via = translation(OpenAIResponses(), GEMINI_NATIVE)
    assert via is not None
    request = OpenAIResponses().parse(b'{"model": "m", "input": "hi", "stream": true}')
    route = via.upstream_route(request, "gemini-2.5-flash")  # type: ignore[attr-defined]
    assert route == "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    assert translation(GeminiCountTokens(), OPENAI_NATIVE) is None


def test_translated_stream_ends_on_a_malformed_event() -> None:
    """A malformed upstream event ends a translated stream with the client's own error event."""
    dialect = translation(OpenAIChat(), ANTHROPIC_NATIVE)
    assert dialect is not None
    request = OpenAIChat().parse(b'{"model": "m", "stream": true, '
                                 b'"messages": [{"role": "user", "content": "hi"}]}')
    watcher = dialect.watch(request, "m", False, _Timer(), False)
    start = awire.stream_events(ident="msg_01", model="claude", content=[awire.text_block("a")],
                                stop_reason="end_turn", usage=awire.Usage(3, 1))[0]
    out = watcher.feed([start.strip(), b"event: message_delta\ndata: {broken"])
    assert watcher.done and watcher.failure is not None and watcher.failure.end == "malformed"
    assert out.startswith(b"data: {") and out.rstrip().endswith(b"}")
    assert b'"code":"malformed_sse"' in out
    assert watcher.usage is not None and watcher.usage.input == 3


def test_translated_answers_are_read_as_the_upstreams_own() -> None:
    """A translated JSON answer's usage, attributes and captured output are what the
    upstream's own dialect reads from it (the same telemetry as a native call), the
    captured output in the conventions' shape; only the client's body is translated."""
    claude = awire.message(
        ident="msg_01", model="claude", stop_reason="tool_use", usage=awire.Usage(10, 7),
        content=[awire.text_block("Let me look"),
                 awire.tool_use_block("toolu_01", "get_weather", {"location": "Oslo"})])
    via = translation(OpenAIChat(), ANTHROPIC_NATIVE)
    assert via is not None
    request = OpenAIChat().parse(CHAT_REQUEST)
    reading = via.read_answer(request, dict(claude), "m", True, True)
    native = AnthropicMessages().read_answer(request, dict(claude), "m", False, True)
    assert (reading.usage, reading.attributes) == (native.usage, native.attributes)
    assert reading.output_messages == native.output_messages
    assert orjson.loads(reading.output_messages or "") == [{
        "role": "assistant", "finish_reason": "tool_use",
        "parts": [{"type": "text", "content": "Let me look"},
                  {"type": "tool_call", "id": "toolu_01", "name": "get_weather",
                   "arguments": {"location": "Oslo"}}]}]
    assert orjson.loads(reading.body or b"")["object"] == "chat.completion"

    gpt = owire.chat_completion(completion_id="chatcmpl-1", model="gpt-4.1", content="Hello",
                                finish_reason="stop", usage=owire.Usage(5, 2),
                                system_fingerprint="fp_1")
    back = translation(AnthropicMessages(), OPENAI_NATIVE)
    assert back is not None
    request = AnthropicMessages().parse(MESSAGES_REQUEST)
    reading = back.read_answer(request, dict(gpt), "m", True, True)
    native = OpenAIChat().read_answer(request, dict(gpt), "m", False, True)
    assert (reading.usage, reading.attributes) == (native.usage, native.attributes)
    assert orjson.loads(reading.output_messages or "") == [{
        "role": "assistant", "finish_reason": "stop",
        "parts": [{"type": "text", "content": "Hello"}]}]
    assert orjson.loads(reading.body or b"")["type"] == "message"
    assert back.read_answer(request, dict(gpt), "m", True, False).output_messages is None


def test_translated_streams_capture_the_upstreams_output() -> None:
    """A translated stream's captured output is the upstream stream's, as a native
    stream's would be: one assistant message with a part per Messages block."""
    via = translation(OpenAIChat(), ANTHROPIC_NATIVE)
    assert via is not None
    request = OpenAIChat().parse(CHAT_REQUEST.replace(b"}]}", b'}], "stream": true}'))
    events = awire.stream_events(ident="msg_01", model="claude", stop_reason="end_turn",
                                 usage=awire.Usage(3, 4),
                                 content=[awire.text_block("Streamed hello")])
    watcher = via.watch(request, "m", False, _Timer(), True)
    out = watcher.feed([e.strip() for e in events])
    assert watcher.done and b"Streamed" in out
    assert orjson.loads(watcher.output_messages() or "") == [{
        "role": "assistant", "finish_reason": "end_turn",
        "parts": [{"type": "text", "content": "Streamed hello"}]}]


def test_a_composed_stream_ends_on_an_upstream_error_with_the_clients_error_event() -> None:
    """A Gemini error chunk mid-stream reaches a Responses client as its `error` event and
    a Messages client as its own, after the text already sent, and ends the stream."""
    text = b"data: " + orjson.dumps({
        "candidates": [{"content": {"parts": [{"text": "hi "}], "role": "model"}, "index": 0}],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1},
        "modelVersion": "gemini-2.5-flash", "responseId": "r-1"})
    error = b'data: {"error": {"code": 500, "message": "boom", "status": "INTERNAL"}}'
    for client, raw, expected in [
            (OpenAIResponses(), b'{"model": "m", "stream": true, "input": "hi"}',
             b'"type":"error","code":"INTERNAL","message":"boom"'),
            (AnthropicMessages(), MESSAGES_REQUEST.replace(b"}]}", b'}], "stream": true}'),
             b'"error":{"type":"api_error","message":"boom"}')]:
        via = translation(client, GEMINI_NATIVE)
        assert via is not None
        watcher = via.watch(client.parse(raw), "m", False, _Timer(), False)
        out = watcher.feed([text, error])
        assert watcher.done and watcher.failure is not None
        assert watcher.failure.end == "upstream_error"
        assert out.index(b"hi ") < out.index(expected)
        assert watcher.usage is not None and watcher.usage.input == 3

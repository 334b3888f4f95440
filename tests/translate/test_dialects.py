"""Which translation carries a client's dialect to an upstream, and how a translated
stream ends when the upstream's events go wrong."""

from __future__ import annotations

from gateway.dialects.anthropic.messages import AnthropicCountTokens, AnthropicMessages
from gateway.dialects.openai_chat import OpenAIChat
from gateway.dialects.openai_embeddings import OpenAIEmbeddings
from gateway.dialects.registry import ANTHROPIC_NATIVE, OPENAI_NATIVE
from gateway.translate.dialects import ChatViaMessages, MessagesViaChat, translation
from tests.fakes import anthropic_wire as awire


class _Timer:
    def first_chunk(self) -> None:
        """Nothing to time here."""

    def chunk(self) -> None:
        """Nothing to time here."""


def test_translations_by_pair() -> None:
    """Chat rides on Messages and Messages on chat; embeddings and count_tokens do not translate."""
    chat, messages = OpenAIChat(), AnthropicMessages()
    via_messages = translation(chat, ANTHROPIC_NATIVE)
    assert isinstance(via_messages, ChatViaMessages)
    assert via_messages.upstream_path == "/v1/messages" and via_messages.operation == "chat"
    assert via_messages.name == "openai.chat_completions>anthropic.messages"
    assert isinstance(translation(messages, OPENAI_NATIVE), MessagesViaChat)
    assert translation(OpenAIEmbeddings(), ANTHROPIC_NATIVE) is None
    assert translation(AnthropicCountTokens(), OPENAI_NATIVE) is None
    assert translation(chat, frozenset()) is None


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

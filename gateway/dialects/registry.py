"""The dialects the gateway serves, and which provider can carry each.

A provider adapter lists the dialects it speaks natively (`Provider.dialects`);
the chain sends a call to a model whose provider speaks the call's dialect, or one
it translates to (`gateway/translate/`), and answers `DialectNotSupported` otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from gateway.dialects import openai_chat, openai_embeddings
from gateway.dialects.anthropic import messages as anthropic_messages
from gateway.dialects.anthropic.messages import AnthropicCountTokens, AnthropicMessages
from gateway.dialects.base import Dialect
from gateway.dialects.gemini import generate as gemini
from gateway.dialects.openai_chat import OpenAIChat
from gateway.dialects.openai_embeddings import OpenAIEmbeddings
from gateway.dialects.openai_responses import responses as openai_responses
from gateway.dialects.openai_responses.responses import OpenAIResponses, Remember
from gateway.limits import DEFAULT_LIMITS, RequestLimits

# What the OpenAI-compatible providers speak natively (the Responses API unless the
# provider says `responses_api: false`: then it is translated to chat completions).
OPENAI_NATIVE = frozenset({openai_chat.NAME, openai_embeddings.NAME, openai_responses.NAME})
OPENAI_CHAT_ONLY = OPENAI_NATIVE - {openai_responses.NAME}
# What Anthropic's own API (`kind: anthropic`) speaks natively.
ANTHROPIC_NATIVE = frozenset({anthropic_messages.NAME, anthropic_messages.COUNT_TOKENS})
# What Gemini's own API (`kind: gemini`) speaks natively.
GEMINI_NATIVE = frozenset({gemini.NAME, gemini.STREAM, gemini.COUNT_TOKENS, gemini.EMBED,
                           gemini.BATCH_EMBED})
# The simulator answers in all of them.
SIMULATOR_NATIVE = OPENAI_NATIVE | ANTHROPIC_NATIVE | GEMINI_NATIVE


def default_dialects(limits: RequestLimits = DEFAULT_LIMITS,
                     remember: Remember | None = None) -> list[Dialect]:
    """The dialects served unless `create_app` is given others, with the config's
    request `limits`; `remember` is told which model served each stored response."""
    responses = OpenAIResponses(limits) if remember is None else OpenAIResponses(limits, remember)
    return [OpenAIChat(limits), OpenAIEmbeddings(), responses, AnthropicMessages(limits),
            AnthropicCountTokens(), gemini.GeminiGenerate(limits), gemini.GeminiStream(limits),
            gemini.GeminiCountTokens(), gemini.GeminiEmbed(), gemini.GeminiBatchEmbed()]


class Dialects:
    """The served dialects, each once by name."""

    def __init__(self, dialects: Sequence[Dialect]) -> None:
        self._by_name: dict[str, Dialect] = {}
        for dialect in dialects:
            if dialect.name in self._by_name:
                raise ValueError(f"dialect {dialect.name!r} registered twice")
            self._by_name[dialect.name] = dialect

    def __iter__(self) -> Iterator[Dialect]:
        return iter(self._by_name.values())

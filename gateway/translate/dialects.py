"""Translations as the dialect of an attempt: when a model's provider does not speak the
client's dialect but speaks one the gateway translates to, the attempt runs with one
of these in its place. Each is the client's dialect towards the client (its parse,
request attributes, error shapes) and the upstream's towards the upstream (its path,
body, usage, events). Every one pivots on chat completions: a `Translation` joins the
client's side and the upstream's (`translate.sides`), so any client dialect of the chat
family reaches any upstream dialect of it; embeddings cross between OpenAI's and
Gemini's (`translate.embeddings`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import orjson

from gateway.dialects import openai_wire
from gateway.dialects.base import (
    ChunkTimer,
    ClientRequest,
    Dialect,
    Reading,
    SharesParse,
)
from gateway.dialects.openai_chat import NAME as CHAT
from gateway.dialects.streamstate import StreamState
from gateway.translate.embeddings import EMBEDDING_TRANSLATIONS
from gateway.translate.facing import ClientFacing
from gateway.translate.sides import (
    CHAT_UPSTREAM,
    CLIENT_SIDES,
    GEMINI_UPSTREAM,
    MESSAGES_UPSTREAM,
    RESPONSES_UPSTREAM,
    ClientSide,
    EventTranslator,
    FromChat,
    IntoChat,
    UpstreamSide,
)
from gateway.usage import Usage


class Translation(ClientFacing):
    """A client's dialect carried to an upstream of another over chat completions: the
    client's side (None when it speaks chat) and the upstream's (`translate.sides`). It
    is the client's dialect towards the client (parse, request attributes, error shapes)
    and the upstream's towards the upstream (path, body, usage, events)."""

    def __init__(self, client: Dialect, side: ClientSide | None, upstream: UpstreamSide
                 ) -> None:
        super().__init__(client, upstream.name)
        self.side = side
        self.upstream = upstream
        self.upstream_path = upstream.path
        # Looked up by name (dialects.base.MarksFirstToken): None is as good as absent.
        self.first_token = upstream.first_token

    def upstream_route(self, request: ClientRequest, upstream_model: str) -> str:
        route = self.upstream.route
        return self.upstream.path if route is None else route(request, upstream_model)

    def upstream_body(self, request: ClientRequest, upstream_model: str
                      ) -> tuple[dict[str, Any], bytes | None]:
        chat = request.body if self.side is None else self.side.to_chat(request)
        return self.upstream.from_chat(chat, upstream_model), None

    def read_answer(self, request: ClientRequest, payload: dict[str, Any], served: str,
                    rename: bool, capture: bool) -> Reading:
        reading = self.upstream.read(request, payload, served, capture)
        model = served if rename else None
        side, to_chat = self.side, self.upstream.answer
        # The rename is the last step's: the client's side, else the upstream's.
        chat = payload if to_chat is None else to_chat(payload, model if side is None else None)
        reading.body = orjson.dumps(chat if side is None else side.answer(chat, request, model))
        return reading

    def watch(self, request: ClientRequest, served: str, rename: bool, timer: ChunkTimer,
              capture: bool) -> TranslatedStream:
        model = served if rename else None
        side, into_chat = self.side, self.upstream.stream
        translator: EventTranslator
        if side is not None and into_chat is not None:
            translator = Chained(into_chat(True, None), side.stream(request, model))
        elif side is not None:
            translator = side.stream(request, model)
        elif into_chat is not None:  # a chat client: its usage chunk only when it asked
            options = request.body.get("stream_options")
            include_usage = isinstance(options, dict) and options.get("include_usage") is True
            translator = into_chat(include_usage, model)
        else:
            raise TypeError("chat completions on both sides need no translation")
        return TranslatedStream(self.upstream.watcher(request, served, timer, capture),
                                translator, self.client.stream_error)

    def event_error(self, data: bytes) -> str | None:
        return self.upstream.event_error(data)

    def upstream_error(self, status: int, body: bytes) -> bytes:
        shaped = self.upstream.error(status, body)
        if self.side is None:
            return openai_wire.upstream_error(status, shaped)
        return self.side.error(status, shaped)


class Chained:
    """Two event translators in a row: into chat completions, then out of them; the chat
    chunks pass from the first to the second as objects."""

    def __init__(self, first: IntoChat, second: FromChat) -> None:
        first.sink = second.feed_payload
        self._first = first
        self._second = second
        self.done = False
        # the second numbers the client's events, so it numbers the gateway's error event too
        self.stream_error: Callable[[str, str], bytes] | None = getattr(second, "stream_error", None)

    def feed(self, event: bytes) -> bytes:
        out = self._first.feed(event)
        self.done = self._second.done
        return out

    def feed_payload(self, payload: dict[str, Any] | bytes | None) -> bytes:
        out = self._first.feed_payload(payload)
        self.done = self._second.done
        return out


class TranslatedStream(StreamState):
    """Reads each upstream event with the upstream dialect's watcher (usage, timing, the
    end) and sends the client what the translator makes of it, event by event. Each
    event is parsed once: the watcher reads most in their raw bytes, and the translator
    takes the JSON object of those the watcher parsed (`SharesParse`)."""

    def __init__(self, reader: SharesParse, translator: EventTranslator,
                 stream_error: Callable[[str, str], bytes]) -> None:
        super().__init__()
        self._reader = reader
        self._translator = translator
        self._stream_error = stream_error

    @property
    def usage(self) -> Usage | None:
        return self._reader.usage

    def output_tokens(self) -> int:
        return self._reader.output_tokens()

    def output_messages(self) -> str | None:
        return self._reader.output_messages()

    def feed(self, events: list[bytes]) -> bytes:
        parts: list[bytes] = []
        reader, translator = self._reader, self._translator
        for event in events:
            reader.feed([event])
            if reader.failure is not None and reader.failure.end == "malformed":
                self.failure = reader.failure
                parts.append(self.stream_error(reader.failure.message, "malformed_sse"))
                self.done = True
                break
            if reader.parsed_event is event:
                parts.append(translator.feed_payload(reader.parsed))
            else:
                parts.append(translator.feed(event))
            self.response_model = reader.response_model
            self.response_attributes = reader.response_attributes
            if reader.done or translator.done:
                self.failure = reader.failure
                self.done = True
                break
        return b"".join(parts)

    def stream_error(self, message: str, code: str) -> bytes:
        """The gateway's own error event: the translator's when it numbers the client's
        events (a Responses client's), else the client dialect's."""
        own = getattr(self._translator, "stream_error", None)
        event: bytes = (own or self._stream_error)(message, code)
        return event


# The upstream sides in the order they are tried: chat completions first (one mapping
# fewer when the client's dialect is not chat), then the others.
_UPSTREAMS: Final = (CHAT_UPSTREAM, RESPONSES_UPSTREAM, MESSAGES_UPSTREAM, GEMINI_UPSTREAM)


def translation(client: Dialect, upstream: frozenset[str]) -> Dialect | None:
    """The translation that carries `client`'s calls to an upstream speaking `upstream`'s
    dialects, through chat completions (embeddings: between OpenAI's and Gemini's), or
    None when there is none (count_tokens is answered by the chain instead)."""
    make = _translation_maker(client, upstream)
    return None if make is None else make()


def translates(client: Dialect, upstream: frozenset[str]) -> bool:
    """Whether `translation` finds one, without building it."""
    return _translation_maker(client, upstream) is not None


def _translation_maker(client: Dialect, upstream: frozenset[str]
                       ) -> Callable[[], Dialect] | None:
    """What builds the translation `translation` returns, or None."""
    side = CLIENT_SIDES.get(client.name)
    if side is None and client.name != CHAT:
        embeddings = EMBEDDING_TRANSLATIONS.get(client.name)
        if embeddings is not None and embeddings[0] in upstream:
            factory = embeddings[1]
            return lambda: factory(client)
        return None
    for target in _UPSTREAMS:
        if target.name in upstream and (side is not None or target.name != CHAT):
            chosen = target
            return lambda: Translation(client, side, chosen)
    return None

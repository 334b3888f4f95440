"""Translations as the dialect of an attempt: when a model's provider does not speak the
client's dialect but speaks one the gateway translates to, the attempt runs with one
of these in its place. Each is the client's dialect towards the client (its parse,
request attributes, error shapes) and the upstream's towards the upstream (its path,
body, usage, events), with `chat_messages`, `chat_responses`, `chat_gemini` and their
`_stream` modules in between.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Protocol

import orjson

from gateway.dialects import openai_wire
from gateway.dialects.anthropic import messages as anthropic
from gateway.dialects.base import (
    ChunkTimer,
    ClientRequest,
    Dialect,
    Reading,
    StreamWatcher,
)
from gateway.dialects.gemini import answer as gemini_answer
from gateway.dialects.gemini import errors as gemini_errors
from gateway.dialects.gemini import generate as gemini
from gateway.dialects.gemini import stream as gemini_stream
from gateway.dialects.gemini.stream import GeminiWatcher
from gateway.dialects.openai_chat import NAME as CHAT
from gateway.dialects.openai_chat import ChatWatcher, OpenAIChat
from gateway.dialects.openai_responses import responses
from gateway.dialects.openai_responses import wire as responses_wire
from gateway.dialects.streamstate import StreamState
from gateway.errors import GatewayError
from gateway.translate import chat_gemini as tg
from gateway.translate import chat_messages as tm
from gateway.translate import chat_responses as tr
from gateway.translate.chat_gemini_stream import ChatToGeminiStream, GeminiToChatStream
from gateway.translate.chat_messages_stream import ChatToMessagesStream, MessagesToChatStream
from gateway.translate.chat_responses_stream import ChatToResponsesStream, ResponsesToChatStream
from gateway.usage import Usage

# The upstream's own dialect reads a translated answer (usage, response attributes, the
# captured output, the output estimate), so its telemetry is the same as a native call's
# whatever the client speaks; only the body is translated. Their read_answer needs no
# request limits.
_MESSAGES: Final = anthropic.AnthropicMessages()
_CHAT: Final = OpenAIChat()


class _Translation:
    """What both directions share: the client's dialect faces the client."""

    upstream_name = ""  # the dialect spoken upstream
    forward_headers: tuple[str, ...] = ()  # the client's headers mean nothing upstream
    routes: tuple[str, ...] = ()

    def __init__(self, client: Dialect) -> None:
        self.client = client
        self.name = f"{client.name}>{self.upstream_name}"
        self.operation = client.operation
        self.pass_headers = client.pass_headers

    def parse(self, raw: bytes) -> ClientRequest:
        return self.client.parse(raw)

    def estimate_prompt(self, body: dict[str, Any]) -> int:
        return self.client.estimate_prompt(body)

    def request_attributes(self, request: ClientRequest, capture: bool) -> dict[str, Any]:
        return self.client.request_attributes(request, capture)

    def error_body(self, error: GatewayError) -> bytes:
        return self.client.error_body(error)

    def stream_error(self, message: str, code: str) -> bytes:
        return self.client.stream_error(message, code)


class ChatViaMessages(_Translation):
    """An OpenAI chat completions client served by an Anthropic Messages upstream."""

    upstream_name = anthropic.NAME
    upstream_path = anthropic.AnthropicMessages.upstream_path

    def upstream_body(self, request: ClientRequest, upstream_model: str
                      ) -> tuple[dict[str, Any], bytes | None]:
        body = tm.chat_to_messages_request(request.body)
        body["model"] = upstream_model
        return body, None

    def read_answer(self, request: ClientRequest, payload: dict[str, Any], served: str,
                    rename: bool, capture: bool) -> Reading:
        reading = _MESSAGES.read_answer(request, payload, served, False, capture)
        answer = tm.messages_to_chat_answer(payload, model=served if rename else None)
        reading.body = orjson.dumps(answer)
        return reading

    def watch(self, request: ClientRequest, served: str, rename: bool, timer: ChunkTimer,
              capture: bool) -> TranslatedStream:
        options = request.body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        return TranslatedStream(
            anthropic.MessagesWatcher(None, timer, capture),
            MessagesToChatStream(include_usage=include_usage, model=served if rename else None),
            self.client.stream_error)

    def event_error(self, data: bytes) -> str | None:
        return anthropic.event_error(data)

    def first_token(self, event: bytes) -> bool:
        return anthropic.first_token(event)

    def upstream_error(self, status: int, body: bytes) -> bytes:
        return tm.messages_error_to_chat(anthropic.upstream_error(status, body))


class MessagesViaChat(_Translation):
    """An Anthropic Messages client served by an OpenAI chat completions upstream."""

    upstream_name = CHAT
    upstream_path = "/chat/completions"

    def upstream_body(self, request: ClientRequest, upstream_model: str
                      ) -> tuple[dict[str, Any], bytes | None]:
        body = tm.messages_to_chat_request(request.body)
        body["model"] = upstream_model
        return body, None

    def read_answer(self, request: ClientRequest, payload: dict[str, Any], served: str,
                    rename: bool, capture: bool) -> Reading:
        reading = _CHAT.read_answer(request, payload, served, False, capture)
        answer = tm.chat_to_messages_answer(payload, model=served if rename else None)
        reading.body = orjson.dumps(answer)
        return reading

    def watch(self, request: ClientRequest, served: str, rename: bool, timer: ChunkTimer,
              capture: bool) -> TranslatedStream:
        return TranslatedStream(ChatWatcher(request, served, False, timer, capture),
                                ChatToMessagesStream(model=served if rename else None),
                                self.client.stream_error)

    def event_error(self, data: bytes) -> str | None:
        return openai_wire.event_error(data)

    def upstream_error(self, status: int, body: bytes) -> bytes:
        return anthropic.upstream_error(status, openai_wire.upstream_error(status, body))


class ResponsesViaChat(_Translation):
    """A Responses client served by a chat completions upstream. Nothing is stored
    upstream, so the answer's id cannot be retrieved later (and is not remembered)."""

    upstream_name = CHAT
    upstream_path = "/chat/completions"

    def upstream_body(self, request: ClientRequest, upstream_model: str
                      ) -> tuple[dict[str, Any], bytes | None]:
        body = tr.responses_to_chat_request(request.body)
        body["model"] = upstream_model
        return body, None

    def read_answer(self, request: ClientRequest, payload: dict[str, Any], served: str,
                    rename: bool, capture: bool) -> Reading:
        reading = _CHAT.read_answer(request, payload, served, False, capture)
        answer = tr.chat_to_responses_answer(payload, request.body, model=served if rename else None)
        reading.body = orjson.dumps(answer)
        return reading

    def watch(self, request: ClientRequest, served: str, rename: bool, timer: ChunkTimer,
              capture: bool) -> TranslatedStream:
        return TranslatedStream(ChatWatcher(request, served, False, timer, capture),
                                ChatToResponsesStream(request.body, model=served if rename else None),
                                self.client.stream_error)

    def event_error(self, data: bytes) -> str | None:
        return openai_wire.event_error(data)

    def upstream_error(self, status: int, body: bytes) -> bytes:
        return openai_wire.upstream_error(status, body)


class ChatViaResponses(_Translation):
    """A chat completions client served by an upstream that speaks only the Responses API
    (asked to store nothing)."""

    upstream_name = responses.NAME
    upstream_path = responses.OpenAIResponses.upstream_path

    def upstream_body(self, request: ClientRequest, upstream_model: str
                      ) -> tuple[dict[str, Any], bytes | None]:
        body = tr.chat_to_responses_request(request.body)
        body["model"] = upstream_model
        return body, None

    def read_answer(self, request: ClientRequest, payload: dict[str, Any], served: str,
                    rename: bool, capture: bool) -> Reading:
        model = payload.get("model")
        answer = tr.responses_to_chat_answer(payload, model=served if rename else None)
        return Reading(responses_wire.usage_from(payload.get("usage")),
                       model if isinstance(model, str) else None,
                       responses_wire.response_attributes(payload), orjson.dumps(answer))

    def watch(self, request: ClientRequest, served: str, rename: bool, timer: ChunkTimer,
              capture: bool) -> TranslatedStream:
        options = request.body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        return TranslatedStream(
            responses.ResponsesWatcher(served, False, timer, capture, _keep_nothing),
            ResponsesToChatStream(include_usage=include_usage, model=served if rename else None),
            self.client.stream_error)

    def event_error(self, data: bytes) -> str | None:
        return responses_wire.event_error(data)

    def first_token(self, event: bytes) -> bool:
        return responses.first_token(event)

    def upstream_error(self, status: int, body: bytes) -> bytes:
        return openai_wire.upstream_error(status, body)


class ResponsesViaMessages(_Translation):
    """A Responses client served by an Anthropic Messages upstream: through chat completions,
    both mappings in a row (Responses -> chat -> Messages, and back)."""

    upstream_name = anthropic.NAME
    upstream_path = anthropic.AnthropicMessages.upstream_path

    def upstream_body(self, request: ClientRequest, upstream_model: str
                      ) -> tuple[dict[str, Any], bytes | None]:
        body = tm.chat_to_messages_request(tr.responses_to_chat_request(request.body))
        body["model"] = upstream_model
        return body, None

    def read_answer(self, request: ClientRequest, payload: dict[str, Any], served: str,
                    rename: bool, capture: bool) -> Reading:
        reading = _MESSAGES.read_answer(request, payload, served, False, capture)
        chat = tm.messages_to_chat_answer(payload)
        answer = tr.chat_to_responses_answer(chat, request.body, model=served if rename else None)
        reading.body = orjson.dumps(answer)
        return reading

    def watch(self, request: ClientRequest, served: str, rename: bool, timer: ChunkTimer,
              capture: bool) -> TranslatedStream:
        return TranslatedStream(
            anthropic.MessagesWatcher(None, timer, capture),
            Chained(MessagesToChatStream(include_usage=True),
                    ChatToResponsesStream(request.body, model=served if rename else None)),
            self.client.stream_error)

    def event_error(self, data: bytes) -> str | None:
        return anthropic.event_error(data)

    def first_token(self, event: bytes) -> bool:
        return anthropic.first_token(event)

    def upstream_error(self, status: int, body: bytes) -> bytes:
        return tm.messages_error_to_chat(anthropic.upstream_error(status, body))


class Chained:
    """Two event translators in a row: what the first makes of an event, split into events,
    is fed to the second."""

    def __init__(self, first: EventTranslator, second: EventTranslator) -> None:
        self._first = first
        self._second = second
        self.done = False
        # the second numbers the client's events, so it numbers the gateway's error event too
        self.stream_error: Callable[[str, str], bytes] | None = getattr(second, "stream_error", None)

    def feed(self, event: bytes) -> bytes:
        middle = self._first.feed(event)
        out = b"".join(self._second.feed(part) for part in middle.split(b"\n\n") if part)
        self.done = self._second.done
        return out


def _keep_nothing(response_id: str, model: str) -> None:
    """A translated call's response is never retrieved by its id."""


class ChatViaGemini(_Translation):
    """An OpenAI chat completions client served by a Gemini upstream (generateContent, or
    its SSE stream when the client streams)."""

    upstream_name = gemini.NAME
    upstream_path = "/v1beta/models/{model}"  # the action is the call's: `upstream_route`

    def upstream_route(self, request: ClientRequest, upstream_model: str) -> str:
        template = gemini.GeminiStream if request.stream else gemini.GeminiGenerate
        return gemini.upstream_route(template.upstream_path, upstream_model)

    def upstream_body(self, request: ClientRequest, upstream_model: str
                      ) -> tuple[dict[str, Any], bytes | None]:
        return tg.chat_to_gemini_request(request.body), None

    def read_answer(self, request: ClientRequest, payload: dict[str, Any], served: str,
                    rename: bool, capture: bool) -> Reading:
        answer = tg.gemini_to_chat_answer(payload, model=served if rename else None)
        return Reading(gemini_answer.usage_from(payload.get("usageMetadata")),
                       gemini_answer.response_model(payload),
                       gemini_answer.response_attributes(payload), orjson.dumps(answer))

    def watch(self, request: ClientRequest, served: str, rename: bool, timer: ChunkTimer,
              capture: bool) -> TranslatedStream:
        options = request.body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        return TranslatedStream(
            GeminiWatcher(None, timer, capture),
            GeminiToChatStream(include_usage=include_usage, model=served if rename else None),
            self.client.stream_error)

    def event_error(self, data: bytes) -> str | None:
        return gemini_stream.event_error(data)

    def upstream_error(self, status: int, body: bytes) -> bytes:
        return openai_wire.upstream_error(status, _google_to_openai(status, body))


class GeminiViaChat(_Translation):
    """A Gemini client (generateContent or its stream) served by an OpenAI chat completions
    upstream."""

    upstream_name = CHAT
    upstream_path = "/chat/completions"

    def upstream_body(self, request: ClientRequest, upstream_model: str
                      ) -> tuple[dict[str, Any], bytes | None]:
        body = tg.gemini_to_chat_request(request.body)
        body["model"] = upstream_model
        if request.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body, None

    def read_answer(self, request: ClientRequest, payload: dict[str, Any], served: str,
                    rename: bool, capture: bool) -> Reading:
        reading = _CHAT.read_answer(request, payload, served, False, capture)
        answer = tg.chat_to_gemini_answer(payload, model=served if rename else None)
        reading.body = orjson.dumps(answer)
        return reading

    def watch(self, request: ClientRequest, served: str, rename: bool, timer: ChunkTimer,
              capture: bool) -> TranslatedStream:
        return TranslatedStream(ChatWatcher(request, served, False, timer, capture),
                                ChatToGeminiStream(model=served if rename else None),
                                self.client.stream_error)

    def event_error(self, data: bytes) -> str | None:
        return openai_wire.event_error(data)

    def upstream_error(self, status: int, body: bytes) -> bytes:
        return gemini_errors.upstream_error(status, body)


def _google_to_openai(status: int, body: bytes) -> bytes:
    """A Google error body in OpenAI's shape (its message and status name kept)."""
    try:
        found = gemini_errors.read_error(orjson.loads(body))
    except orjson.JSONDecodeError:
        return body
    if found is None:
        return body
    _code, name, message = found
    kind = "invalid_request_error" if status < 500 else "server_error"
    return orjson.dumps({"error": {"message": message, "type": kind, "param": None,
                                   "code": name}})


class EventTranslator(Protocol):
    """Turns one upstream event into the client's bytes (see chat_messages_stream)."""

    done: bool

    def feed(self, event: bytes) -> bytes: ...


class TranslatedStream(StreamState):
    """Reads each upstream event with the upstream dialect's watcher (usage, timing, the
    end) and sends the client what the translator makes of it, event by event."""

    def __init__(self, reader: StreamWatcher, translator: EventTranslator,
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


# Which translation serves a client dialect on an upstream that speaks another: by the
# client's dialect, the upstream dialect it can be carried over, and the translation.
_TRANSLATIONS: Final[tuple[tuple[str, str, Callable[[Dialect], Dialect]], ...]] = (
    (CHAT, anthropic.NAME, ChatViaMessages),
    (anthropic.NAME, CHAT, MessagesViaChat),
    (responses.NAME, CHAT, ResponsesViaChat),
    (CHAT, responses.NAME, ChatViaResponses),
    (responses.NAME, anthropic.NAME, ResponsesViaMessages),
    (CHAT, gemini.NAME, ChatViaGemini),
    (gemini.NAME, CHAT, GeminiViaChat),
    (gemini.STREAM, CHAT, GeminiViaChat),
)


def translation(client: Dialect, upstream: frozenset[str]) -> Dialect | None:
    """The translation that carries `client`'s calls to an upstream speaking `upstream`'s
    dialects, or None when there is none."""
    for source, target, make in _TRANSLATIONS:
        if client.name == source and target in upstream:
            return make(client)
    return None

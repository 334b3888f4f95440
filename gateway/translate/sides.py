"""How each dialect meets OpenAI chat completions, the pivot of every translation: a
`ClientSide` carries a client's call to chat and chat's answer back, an `UpstreamSide`
carries chat to an upstream and its answer back to chat, read meanwhile by the upstream's
own dialect (so telemetry is a native call's). `translate.dialects` puts one of each
together; a side that is chat itself is None there, so a one-step translation does no
work for the other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

import orjson

from gateway.dialects import openai_wire
from gateway.dialects.anthropic import messages as anthropic
from gateway.dialects.base import ChunkTimer, ClientRequest, Reading, SharesParse
from gateway.dialects.gemini import answer as gemini_answer
from gateway.dialects.gemini import errors as gemini_errors
from gateway.dialects.gemini import generate as gemini
from gateway.dialects.gemini import stream as gemini_stream
from gateway.dialects.gemini.stream import GeminiWatcher
from gateway.dialects.openai_chat import NAME as CHAT
from gateway.dialects.openai_chat import ChatWatcher, OpenAIChat
from gateway.dialects.openai_responses import responses
from gateway.dialects.openai_responses import wire as responses_wire
from gateway.translate import chat_gemini as tg
from gateway.translate import chat_messages as tm
from gateway.translate import chat_responses as tr
from gateway.translate.chat_gemini_stream import ChatToGeminiStream, GeminiToChatStream
from gateway.translate.chat_messages_stream import ChatToMessagesStream, MessagesToChatStream
from gateway.translate.chat_responses_stream import ChatToResponsesStream, ResponsesToChatStream

JSON = dict[str, Any]

# The upstream's own dialect reads a translated answer (usage, response attributes, the
# captured output, the output estimate), so its telemetry is the same as a native call's
# whatever the client speaks; only the body is translated. Their read_answer needs no
# request limits.
_MESSAGES: Final = anthropic.AnthropicMessages()
_CHAT: Final = OpenAIChat()


class EventTranslator(Protocol):
    """Turns one upstream event into the client's bytes (see chat_messages_stream):
    `feed` reads the event, `feed_payload` takes it as read already (`event_payload`:
    its JSON object, or its data when it is none, such as `[DONE]`)."""

    done: bool

    def feed(self, event: bytes) -> bytes: ...

    def feed_payload(self, payload: JSON | bytes | None) -> bytes: ...


class IntoChat(EventTranslator, Protocol):
    """A translator into chat completions (a `chat_chunks.ChatChunks`): with a `sink`, its
    chunks go there as objects and it returns what the sink makes of them."""

    sink: Callable[[JSON | bytes | None], bytes] | None


class FromChat(EventTranslator, Protocol):
    """A translator out of chat completions, which a `ChatChunks` may hand its chunks to
    as objects (`feed_payload`) when the two are chained."""


@dataclass(frozen=True, slots=True)
class ClientSide:
    """A client dialect carried over chat completions: its request as chat (a stream asking
    for its usage chunk), chat's answer and chunks as its own, and an upstream's error
    (OpenAI-shaped once translated) in its error shape. `model`: the served name when
    the answer is renamed, else None."""

    to_chat: Callable[[ClientRequest], JSON]
    answer: Callable[[JSON, ClientRequest, str | None], JSON]
    stream: Callable[[ClientRequest, str | None], FromChat]
    error: Callable[[int, bytes], bytes]


@dataclass(frozen=True, slots=True)
class UpstreamSide:
    """An upstream dialect reached from chat completions: its path (a `{` template is
    filled by `route`), chat's request in its shape, its own reading of the answer and
    stream (the body left to the translation), its answer and events as chat's, its
    errors in OpenAI's shape (as they are when it speaks chat), and which event is the
    first token (None: the first with data)."""

    name: str
    path: str
    from_chat: Callable[[JSON, str], JSON]
    read: Callable[[ClientRequest, JSON, str, bool], Reading]
    watcher: Callable[[ClientRequest, str, ChunkTimer, bool], SharesParse]
    event_error: Callable[[bytes], str | None]
    error: Callable[[int, bytes], bytes]
    # None when the upstream speaks chat: its answer and events are chat's already.
    answer: Callable[[JSON, str | None], JSON] | None = None
    stream: Callable[[bool, str | None], IntoChat] | None = None
    first_token: Callable[[bytes], bool] | None = None
    route: Callable[[ClientRequest, str], str] | None = None


def _with_model(body: JSON, upstream_model: str) -> JSON:
    body["model"] = upstream_model
    return body


def _gemini_to_chat(request: ClientRequest) -> JSON:
    body = tg.gemini_to_chat_request(request.body)
    if request.stream:  # a Gemini client's stream is its URL's, not a body field
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


MESSAGES_CLIENT: Final = ClientSide(
    to_chat=lambda request: tm.messages_to_chat_request(request.body),
    answer=lambda chat, request, model: tm.chat_to_messages_answer(chat, model=model),
    stream=lambda request, model: ChatToMessagesStream(model=model),
    error=lambda status, body: anthropic.upstream_error(
        status, openai_wire.upstream_error(status, body)))

RESPONSES_CLIENT: Final = ClientSide(
    to_chat=lambda request: tr.responses_to_chat_request(request.body),
    answer=lambda chat, request, model: tr.chat_to_responses_answer(chat, request.body,
                                                                    model=model),
    stream=lambda request, model: ChatToResponsesStream(request.body, model=model),
    error=openai_wire.upstream_error)

GEMINI_CLIENT: Final = ClientSide(
    to_chat=_gemini_to_chat,
    answer=lambda chat, request, model: tg.chat_to_gemini_answer(chat, model=model),
    stream=lambda request, model: ChatToGeminiStream(model=model),
    error=gemini_errors.upstream_error)

# By client dialect name; chat completions' own clients need no side.
CLIENT_SIDES: Final[Mapping[str, ClientSide]] = {
    anthropic.NAME: MESSAGES_CLIENT,
    responses.NAME: RESPONSES_CLIENT,
    gemini.NAME: GEMINI_CLIENT,
    gemini.STREAM: GEMINI_CLIENT,
}


def _keep_nothing(response_id: str, model: str) -> None:
    """A translated call's response is never retrieved by its id."""


def _read_responses(request: ClientRequest, payload: JSON, served: str,
                    capture: bool) -> Reading:
    model = payload.get("model")
    return Reading(responses_wire.usage_from(payload.get("usage")),
                   model if isinstance(model, str) else None,
                   responses_wire.response_attributes(payload))


def _read_gemini(request: ClientRequest, payload: JSON, served: str, capture: bool) -> Reading:
    return Reading(gemini_answer.usage_from(payload.get("usageMetadata")),
                   gemini_answer.response_model(payload),
                   gemini_answer.response_attributes(payload))


def _gemini_route(request: ClientRequest, upstream_model: str) -> str:
    template = gemini.GeminiStream if request.stream else gemini.GeminiGenerate
    return gemini.upstream_route(template.upstream_path, upstream_model)


def google_to_openai(status: int, body: bytes) -> bytes:
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


CHAT_UPSTREAM: Final = UpstreamSide(
    name=CHAT,
    path="/chat/completions",
    from_chat=_with_model,
    read=lambda request, payload, served, capture: _CHAT.read_answer(
        request, payload, served, False, capture),
    watcher=lambda request, served, timer, capture: ChatWatcher(
        request, served, False, timer, capture),
    event_error=openai_wire.event_error,
    error=lambda status, body: body)

MESSAGES_UPSTREAM: Final = UpstreamSide(
    name=anthropic.NAME,
    path=anthropic.AnthropicMessages.upstream_path,
    from_chat=lambda chat, model: _with_model(tm.chat_to_messages_request(chat), model),
    read=lambda request, payload, served, capture: _MESSAGES.read_answer(
        request, payload, served, False, capture),
    watcher=lambda request, served, timer, capture: anthropic.MessagesWatcher(
        None, timer, capture),
    event_error=anthropic.event_error,
    error=lambda status, body: tm.messages_error_to_chat(anthropic.upstream_error(status, body)),
    answer=lambda payload, model: tm.messages_to_chat_answer(payload, model=model),
    stream=lambda usage, model: MessagesToChatStream(include_usage=usage, model=model),
    first_token=anthropic.first_token)

# Asked to store nothing: the answer's id cannot be retrieved later (and is not remembered).
RESPONSES_UPSTREAM: Final = UpstreamSide(
    name=responses.NAME,
    path=responses.OpenAIResponses.upstream_path,
    from_chat=lambda chat, model: _with_model(tr.chat_to_responses_request(chat), model),
    read=_read_responses,
    watcher=lambda request, served, timer, capture: responses.ResponsesWatcher(
        served, False, timer, capture, _keep_nothing),
    event_error=responses_wire.event_error,
    error=lambda status, body: body,
    answer=lambda payload, model: tr.responses_to_chat_answer(payload, model=model),
    stream=lambda usage, model: ResponsesToChatStream(include_usage=usage, model=model),
    first_token=responses.first_token)

# generateContent, or its SSE stream when the client streams; the model goes in the URL.
GEMINI_UPSTREAM: Final = UpstreamSide(
    name=gemini.NAME,
    path="/v1beta/models/{model}",
    from_chat=lambda chat, model: tg.chat_to_gemini_request(chat),
    read=_read_gemini,
    watcher=lambda request, served, timer, capture: GeminiWatcher(None, timer, capture),
    event_error=gemini_stream.event_error,
    error=google_to_openai,
    answer=lambda payload, model: tg.gemini_to_chat_answer(payload, model=model),
    stream=lambda usage, model: GeminiToChatStream(include_usage=usage, model=model),
    route=_gemini_route)

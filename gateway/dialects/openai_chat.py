"""OpenAI chat completions (`POST /v1/chat/completions`), JSON and SSE.

Usage is the answer's `usage`, or the last chunk's when the stream was asked for
it (`stream_options.include_usage`, which the gateway always asks the upstream
for and strips again when the client did not). A stream ends with `data: [DONE]`.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.dialects import openai_wire as wire
from gateway.dialects.base import ChunkTimer, ClientRequest, Reading, StreamEnd
from gateway.errors import InvalidRequest
from gateway.limits import DEFAULT_LIMITS, RequestLimits
from gateway.sse import DONE, event_data
from gateway.telemetry import content
from gateway.telemetry import names as n
from gateway.telemetry.vocabulary import error_code
from gateway.usage import Usage, estimate_prompt_tokens, estimate_text_tokens, from_openai

NAME = "openai.chat_completions"
_NULL_USAGE = (b',"usage":null', b', "usage": null')
# What a prefix skipped by the plain-chunk path must not contain: the start of every
# pattern that path searches for (so none can lie in it, whole or in part, but at its end).
_PREFIX_MARKS = (b'"finish_reason', b'"usage', b'"error', b'"content', b"\n")


class OpenAIChat(wire.OpenAIErrorShapes):
    """The chat completions dialect."""

    name: str = NAME
    operation: str = n.OP_CHAT
    routes: tuple[str, ...] = ("/v1/chat/completions", "/chat/completions")
    upstream_path: str = "/chat/completions"
    pass_headers: tuple[str, ...] = wire.PASS_HEADERS
    forward_headers: tuple[str, ...] = ()

    def __init__(self, limits: RequestLimits = DEFAULT_LIMITS) -> None:
        self.limits = limits  # bounds on max_tokens and n (`limits:` in the config)

    def parse(self, raw: bytes) -> ClientRequest:
        body = wire.parse_json(raw)
        model = wire.model_of(body)
        wire.check_bounds(body, self.limits)
        messages = body.get("messages")
        if messages is None:
            raise InvalidRequest("Missing required parameter: 'messages'.", param="messages")
        if not isinstance(messages, list) or not messages:
            raise InvalidRequest("'messages' must be a non-empty array.", param="messages")
        stream = body.get("stream")
        if stream is not None and not isinstance(stream, bool):
            raise InvalidRequest("'stream' must be a boolean.", param="stream")
        return ClientRequest(self, body, model, stream=bool(stream), max_tokens=wire.max_tokens(body),
                             raw=raw)

    def estimate_prompt(self, body: dict[str, Any]) -> int:
        return estimate_prompt_tokens(body)

    def request_attributes(self, request: ClientRequest, capture: bool) -> dict[str, Any]:
        attrs = wire.common_request_attributes(request.body, request.max_tokens, request.stream)
        attrs[n.OPENAI_API_TYPE] = "chat_completions"
        if capture:
            messages, system = content.input_messages(request.body.get("messages"))
            attrs[n.GEN_AI_INPUT_MESSAGES] = messages
            if system is not None:
                attrs[n.GEN_AI_SYSTEM_INSTRUCTIONS] = system
        return attrs

    def upstream_body(self, request: ClientRequest, upstream_model: str
                      ) -> tuple[dict[str, Any], bytes | None]:
        return wire.upstream_body(request.body, request.model, request.stream, upstream_model)

    def read_answer(self, request: ClientRequest, payload: dict[str, Any], served: str,
                    rename: bool, capture: bool) -> Reading:
        usage = from_openai(payload.get("usage"))
        response_model = payload.get("model")
        body = None
        if rename and isinstance(response_model, str):
            body = wire.renamed(payload, served)
        reading = Reading(usage, response_model if isinstance(response_model, str) else None,
                          wire.response_attributes(payload), body)
        choices = payload.get("choices")
        if isinstance(choices, list):
            reasons = [c.get("finish_reason") or "" for c in choices if isinstance(c, dict)]
            reading.attributes[n.GEN_AI_RESPONSE_FINISH_REASONS] = reasons
            if capture:
                texts = {i: str((c.get("message") or {}).get("content") or "")
                         for i, c in enumerate(choices) if isinstance(c, dict)}
                reading.output_messages = content.output_messages(texts, dict(enumerate(reasons)))
        if usage is None:
            reading.output_tokens = _output_estimate(choices)
        return reading

    def watch(self, request: ClientRequest, served: str, rename: bool, timer: ChunkTimer,
              capture: bool) -> ChatWatcher:
        return ChatWatcher(request, served, rename, timer, capture)


class ChatWatcher:
    """Reads a chat completion stream event by event: usage, finish reasons, the
    response model, chunk timing; rewrites the model name and drops the usage the
    client did not ask for."""

    def __init__(self, request: ClientRequest, served: str, rename: bool, timer: ChunkTimer,
                 capture: bool) -> None:
        options = request.body.get("stream_options")
        self.include_usage = isinstance(options, dict) and options.get("include_usage") is True
        self.served = served
        self.timer = timer
        self.capture = capture
        self.rewrite_model = rename
        self.strip_null_usage = not self.include_usage
        self.done = False
        self.failure: StreamEnd | None = None
        self.usage: Usage | None = None
        self.response_model: str | None = None
        self.response_attributes: dict[str, Any] = {}
        self.finish_reasons: dict[int, str] = {}
        self.texts: dict[int, str] = {}
        self.content_chunks = 0
        # The last chunk parsed and its JSON object, unchanged (dialects.base.SharesParse).
        self.parsed_event = b""
        self.parsed: dict[str, Any] | None = None
        self._seen_first = False
        # Raw-byte fast path for plain chunks; off where every chunk must be rewritten or read.
        self._fast = not capture and not rename
        # The first chunk's bytes up to its choices (id, object, created, model, ...: the
        # same in every chunk of a stream), when nothing searched for is in them; a chunk
        # that starts with them is searched from just before their end only.
        self._prefix = b""
        self._skip = 0

    def output_tokens(self) -> int:
        return self.content_chunks

    def output_messages(self) -> str | None:
        if not self.texts:
            return None
        return content.output_messages(self.texts, self.finish_reasons)

    def feed(self, events: list[bytes]) -> bytes:
        parts: list[bytes] = []
        for event in events:
            if self._fast and self._plain_chunk(event):
                parts.append(self._relay_plain(event))
                parts.append(b"\n\n")
                continue
            data = event_data(event)
            if data is None:  # comment or keep-alive: pass on
                parts.append(event + b"\n\n")
                continue
            if data == DONE:
                self.done = True
                parts.append(b"data: [DONE]\n\n")
                break
            try:
                payload = orjson.loads(data)
            except orjson.JSONDecodeError:
                self.failure = StreamEnd("malformed", "malformed_sse",
                                         "the upstream sent a malformed event")
                parts.append(wire.stream_error(self.failure.message, "malformed_sse"))
                self.done = True
                break
            if not isinstance(payload, dict):
                parts.append(event + b"\n\n")
                continue
            parts.append(self._chunk(event, payload))
        return b"".join(parts)

    def _plain_chunk(self, event: bytes) -> bool:
        """A mid-stream content chunk that carries nothing to read (no usage, no finish
        reason, no error), recognised in the raw bytes of compact JSON so the common
        case skips parsing. Anything unusual takes the parsing path.

        Each search runs once over the event (this is per event, and the event is
        longer than the JSON parse of it is slow): one `"finish_reason"` key, null;
        choices; no usage object, no error, one line."""
        if not (self._seen_first and event.startswith(b'data: {"') and event.endswith(b"}")):
            return False
        # From `at` on: no pattern searched for (20 bytes at most) lies in the prefix.
        at = self._skip if self._skip and event.startswith(self._prefix) else 0
        reason = event.find(b'"finish_reason"', at)
        return (
            reason > 0
            and event.startswith(b':null', reason + 15)
            and event.find(b'"finish_reason"', reason + 15) < 0
            and (at > 0 or b'"choices":[{' in event)
            and event.find(b'"usage":{', at) < 0
            and event.find(b'"error"', at) < 0
            and event.find(b"\n", at) < 0
        )

    def _relay_plain(self, event: bytes) -> bytes:
        """The event to forward (without its blank line), counted and timed."""
        self.timer.chunk()
        at = self._skip if self._skip and event.startswith(self._prefix) else 0
        text = event.find(b'"content":"', at)
        # counted unless some content is empty (none can start before the first)
        if text > 0 and event[text + 11] != 0x22 and event.find(b'"content":""', text) < 0:
            self.content_chunks += 1
        if self.strip_null_usage:
            usage = event.find(b'"usage":null', at)
            if usage > 0:
                if event[usage - 1] == 0x2C and event.find(b'"usage":null', usage + 12) < 0:
                    cut = event[:usage - 1] + event[usage + 12:]  # the one `,"usage":null`
                    # as the two replaces below, unless the cut joined a `"usage":null,`
                    if cut.find(b'"usage":null,', max(0, usage - 14), usage + 12) < 0:
                        return cut
                event = event.replace(b',"usage":null', b"").replace(b'"usage":null,', b"")
        return event

    def _chunk(self, event: bytes, payload: dict[str, Any]) -> bytes:
        self.parsed_event = event
        self.parsed = payload  # changed below only when renamed (never in a translation)
        if wire.is_error_event(payload):
            error = payload.get("error")
            code = error.get("code") if isinstance(error, dict) else None
            self.failure = StreamEnd("upstream_error", error_code(code),
                                     "the upstream reported an error mid-stream")
            self.done = True
            return event + b"\n\n"
        choices = payload.get("choices")
        usage = payload.get("usage")
        if usage is not None:
            self.usage = from_openai(usage)
        if not self._seen_first:
            self._seen_first = True
            self.timer.first_chunk()
            self._learn_prefix(event)
            self.response_attributes = wire.response_attributes(payload)
            model = payload.get("model")
            self.response_model = model if isinstance(model, str) else None
        elif choices:
            self.timer.chunk()
        if choices:
            self._read_choices(choices)
        elif usage is not None and not self.include_usage:
            return b""  # the usage-only chunk the client did not ask for
        if self.rewrite_model and "model" in payload:
            if self.strip_null_usage and "usage" in payload and payload["usage"] is None:
                del payload["usage"]
            return b"data: " + wire.renamed(payload, self.served) + b"\n\n"
        if self.strip_null_usage and usage is None and b'"usage"' in event:
            for pattern in _NULL_USAGE:
                event = event.replace(pattern, b"")
        if not event.startswith(b"data: ") or b"\n" in event:
            return b"data: " + orjson.dumps(payload) + b"\n\n"
        return event + b"\n\n"

    def _learn_prefix(self, event: bytes) -> None:
        """Remember the first chunk's bytes up to `"choices":[{` when none of the
        patterns the fast path searches for (nor a part of one) is in them."""
        end = event.find(b'"choices":[{')
        if end < 0:
            return
        prefix = event[:end + 12]
        if not any(mark in prefix for mark in _PREFIX_MARKS):
            self._prefix = prefix
            self._skip = max(0, len(prefix) - 24)  # a match may begin in the last 19 bytes

    def _read_choices(self, choices: Any) -> None:
        if not isinstance(choices, list):
            return
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", 0)
            index = index if isinstance(index, int) else 0
            reason = choice.get("finish_reason")
            if isinstance(reason, str):
                self.finish_reasons[index] = reason
            delta = choice.get("delta")
            text = delta.get("content") if isinstance(delta, dict) else None
            if text:
                self.content_chunks += 1
                if self.capture:
                    self.texts[index] = self.texts.get(index, "") + text
        if self.finish_reasons:
            self.response_attributes[n.GEN_AI_RESPONSE_FINISH_REASONS] = [
                self.finish_reasons[i] for i in sorted(self.finish_reasons)
            ]


def _output_estimate(choices: Any) -> int:
    output = 0
    if isinstance(choices, list):
        for choice in choices:
            message = choice.get("message") if isinstance(choice, dict) else None
            text = message.get("content") if isinstance(message, dict) else None
            if isinstance(text, str):
                output += estimate_text_tokens(text)
    return output

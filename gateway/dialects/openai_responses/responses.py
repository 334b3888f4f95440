"""OpenAI's Responses API (`POST /v1/responses`), JSON and typed SSE events.

The client's body passes to a native upstream untouched but for the model id. Usage
is read from the final `response` object (the answer, or the `response.completed`,
`response.incomplete` or `response.failed` event that ends a stream); the stream's
events are relayed one by one as they came, only those carrying a whole `response`
re-encoded when the model is renamed. A response the upstream stores is remembered
(`Remember`: its id and the model that served it) so that `GET`, `DELETE` and
`cancel` on it reach the same provider later.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import orjson

from gateway.dialects import openai_wire
from gateway.dialects.base import ChunkTimer, ClientRequest, Reading, StreamEnd, python_class
from gateway.dialects.openai_responses import wire
from gateway.errors import GatewayError
from gateway.limits import DEFAULT_LIMITS, RequestLimits
from gateway.sse import event_data
from gateway.telemetry import content
from gateway.telemetry import names as n
from gateway.telemetry.vocabulary import error_code
from gateway.usage import Usage, estimate_text_tokens

NAME: Final = "openai.responses"
ROUTE: Final = "/v1/responses"

# Told the id of each response an upstream stores, and the model that served it.
Remember = Callable[[str, str], None]


def _forget(response_id: str, model: str) -> None:
    """The default: remember nothing (no stored-response routes)."""


@python_class
class OpenAIResponses:
    """The Responses dialect (its class attributes read on the class by the translations)."""

    name: str = NAME
    operation: str = n.OP_CHAT
    routes: tuple[str, ...] = (ROUTE, "/responses")
    upstream_path: str = "/responses"
    pass_headers: tuple[str, ...] = openai_wire.PASS_HEADERS
    forward_headers: tuple[str, ...] = ()

    def __init__(self, limits: RequestLimits = DEFAULT_LIMITS,
                 remember: Remember = _forget) -> None:
        self.limits = limits  # the bound on max_output_tokens (`limits:` in the config)
        self.remember = remember

    def parse(self, raw: bytes) -> ClientRequest:
        body = openai_wire.parse_json(raw)
        model, stream, max_tokens = wire.check_request(body, self.limits.max_tokens)
        return ClientRequest(self, body, model, stream=stream, max_tokens=max_tokens, raw=raw)

    def estimate_prompt(self, body: dict[str, Any]) -> int:
        return wire.estimate_prompt_tokens(body)

    def request_attributes(self, request: ClientRequest, capture: bool) -> dict[str, Any]:
        attrs = wire.span_attributes(request.body, request.max_tokens, request.stream)
        if capture:
            attrs.update(captured_input(request.body))
        return attrs

    def upstream_body(self, request: ClientRequest, upstream_model: str
                      ) -> tuple[dict[str, Any], bytes | None]:
        if upstream_model == request.model:
            return request.body, None  # re-serialised, never the client's bytes (openai_wire)
        body = dict(request.body)
        body["model"] = upstream_model
        return body, None

    def read_answer(self, request: ClientRequest, payload: dict[str, Any], served: str,
                    rename: bool, capture: bool) -> Reading:
        model = payload.get("model")
        body = None
        if rename and isinstance(model, str):
            body = openai_wire.renamed(payload, served)
        self._remember(request, payload, served)
        reading = Reading(wire.usage_from(payload.get("usage")),
                          model if isinstance(model, str) else None,
                          wire.response_attributes(payload), body)
        if reading.usage is None or capture:
            text = wire.output_texts(payload)
            reading.output_tokens = estimate_text_tokens(text) if text else 0
            if capture and text:
                reading.output_messages = content.output_messages(
                    {0: text}, {0: wire.finish_reason(payload)})
        return reading

    def _remember(self, request: ClientRequest, response: dict[str, Any], served: str) -> None:
        ident = response.get("id")
        if isinstance(ident, str) and request.body.get("store") is not False:
            self.remember(ident, served)

    def watch(self, request: ClientRequest, served: str, rename: bool, timer: ChunkTimer,
              capture: bool) -> ResponsesWatcher:
        stored = request.body.get("store") is not False
        return ResponsesWatcher(served, rename, timer, capture,
                                self.remember if stored else _forget)

    def event_error(self, data: bytes) -> str | None:
        return wire.event_error(data)

    def first_token(self, event: bytes) -> bool:
        return first_token(event)

    def error_body(self, error: GatewayError) -> bytes:
        return openai_wire.error_body(error)

    def upstream_error(self, status: int, body: bytes) -> bytes:
        return openai_wire.upstream_error(status, body)

    def stream_error(self, message: str, code: str) -> bytes:
        return wire.error_event(message, code, 0)


def first_token(event: bytes) -> bool:
    """Whether an event is past the stream's preamble (`response.created`, a new item or
    content part), which the API sends before the model has produced anything."""
    return wire.event_type(event) not in wire.PREAMBLE


def captured_input(body: dict[str, Any]) -> dict[str, Any]:
    """gen_ai.input.messages and gen_ai.system_instructions of a Responses request."""
    value = body.get("input")
    messages: list[Any] = []
    if isinstance(value, str):
        messages.append({"role": "user", "content": value})
    elif isinstance(value, list):
        messages.extend(_as_message(item) for item in value
                        if isinstance(item, dict) and "role" in item)
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.insert(0, {"role": "system", "content": instructions})
    captured, system = content.input_messages(messages)
    attrs: dict[str, Any] = {n.GEN_AI_INPUT_MESSAGES: captured}
    if system is not None:
        attrs[n.GEN_AI_SYSTEM_INSTRUCTIONS] = system
    return attrs


def _as_message(item: dict[str, Any]) -> dict[str, Any]:
    """An input message item with its `input_text`/`output_text` parts as text parts."""
    parts = item.get("content")
    if not isinstance(parts, list):
        return item
    return {"role": item["role"], "content": [
        {"type": "text", "text": part.get("text", "")}
        if isinstance(part, dict) and part.get("type") in ("input_text", "output_text")
        else part for part in parts]}


class ResponsesWatcher:
    """Relays a Responses stream event by event: each forwarded as it came (those carrying
    a whole `response` renamed when asked), read for usage, timing and the end."""

    def __init__(self, served: str, rename: bool, timer: ChunkTimer, capture: bool,
                 remember: Remember) -> None:
        self._served = served
        self._rename = rename
        self._timer = timer
        self._capture = capture
        self._remember = remember
        self._seen_delta = False
        self._usage: Usage | None = None
        self._sequence = -1  # the last sequence_number read from an event parsed anyway
        self._last = b""  # the last event relayed, read for its number only on error
        # The last event parsed and its JSON object, unchanged (dialects.base.SharesParse).
        self.parsed_event = b""
        self.parsed: dict[str, Any] | None = None
        self.deltas = 0
        self.text = ""
        self.reason = ""
        self.done = False
        self.failure: StreamEnd | None = None
        self.response_model: str | None = None
        self.response_attributes: dict[str, Any] = {}

    @property
    def usage(self) -> Usage | None:
        return self._usage

    def output_tokens(self) -> int:
        return self.deltas

    def output_messages(self) -> str | None:
        if not self.text:
            return None
        return content.output_messages({0: self.text}, {0: self.reason})

    def feed(self, events: list[bytes]) -> bytes:
        parts: list[bytes] = []
        for event in events:
            if self.done:
                break
            parts.append(self._event(event))
            self._last = event
        return b"".join(parts)

    def stream_error(self, message: str, code: str) -> bytes:
        """The gateway's own `error` event, numbered after the last event relayed (the
        API's numbers run on by one, so the SDK sees one unbroken sequence)."""
        return wire.error_event(message, code, self._next_sequence())

    def _next_sequence(self) -> int:
        last = wire.sequence_number(self._last) if self._last else None
        return (self._sequence if last is None else last) + 1

    def _event(self, event: bytes) -> bytes:
        kind = wire.event_type(event)
        if kind in (wire.TEXT_DELTA, wire.ARGUMENTS_DELTA) or kind.endswith("_text.delta"):
            self._delta(event, kind)
            return event + b"\n\n"
        if kind not in wire.WITH_RESPONSE and kind != wire.ERROR:
            return event + b"\n\n"  # items, parts and their ends: relayed as they are
        data = event_data(event)
        try:
            payload = orjson.loads(data) if data is not None else None
        except orjson.JSONDecodeError:
            payload = None
        if not isinstance(payload, dict):
            self.failure = StreamEnd("malformed", "malformed_sse",
                                     "the upstream sent a malformed event")
            self.done = True
            return wire.error_event(self.failure.message, "malformed_sse", self._next_sequence())
        self.parsed_event = event
        self.parsed = payload  # changed below only when renamed (never in a translation)
        sequence = payload.get("sequence_number")
        if isinstance(sequence, int):
            self._sequence = sequence
        if kind == wire.ERROR:
            self.failure = StreamEnd("upstream_error", error_code(payload.get("code")),
                                     "the upstream reported an error mid-stream")
            self.done = True
            return event + b"\n\n"
        response = payload.get("response")
        if not isinstance(response, dict):
            return event + b"\n\n"
        self._read_response(kind, response)
        if self._rename and "model" in response:
            response["model"] = self._served
            return wire.event(kind, payload)
        return event + b"\n\n"

    def _delta(self, event: bytes, kind: str) -> None:
        self.deltas += 1
        if self._seen_delta:
            self._timer.chunk()
        else:
            self._seen_delta = True
            self._timer.first_chunk()
        if self._capture and kind == wire.TEXT_DELTA:
            data = event_data(event)
            payload = orjson.loads(data) if data is not None else None
            if isinstance(payload, dict):
                self.parsed_event = event
                self.parsed = payload
            delta = payload.get("delta") if isinstance(payload, dict) else None
            if isinstance(delta, str):
                self.text += delta

    def _read_response(self, kind: str, response: dict[str, Any]) -> None:
        model = response.get("model")
        if isinstance(model, str):
            self.response_model = model
        self.response_attributes.update(wire.response_attributes(response))
        if kind == wire.CREATED:
            ident = response.get("id")
            if isinstance(ident, str):
                self._remember(ident, self._served)
            return
        if kind not in wire.TERMINAL:
            return
        self.done = True
        self._usage = wire.usage_from(response.get("usage"))
        self.reason = wire.finish_reason(response)
        if self._capture and not self.text:
            self.text = wire.output_texts(response)
        if kind == wire.FAILED:
            error = response.get("error")
            code = error.get("code") if isinstance(error, dict) else None
            self.failure = StreamEnd("upstream_error", error_code(code),
                                     "the upstream reported the response failed")

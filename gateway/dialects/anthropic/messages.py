"""Anthropic's Messages API (`POST /v1/messages`), JSON and named SSE events, and its
token counting (`POST /v1/messages/count_tokens`), as dialects of the request path.

The client's body passes to a native Anthropic upstream untouched but for the model
id; its `anthropic-version` and `anthropic-beta` headers and its `beta` query parameter
go along. Usage is the
answer's `usage`, or a stream's `message_start` usage updated by its final
`message_delta`; the stream ends with `message_stop` (there is no `[DONE]`). Errors
take Anthropic's shape, so the `anthropic` SDK raises its own classes.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from gateway.dialects.anthropic import errors as wire_errors
from gateway.dialects.anthropic import stream as s
from gateway.dialects.anthropic.answer import output_parts, response_attributes, usage_from
from gateway.dialects.anthropic.request import (
    check_count_tokens,
    check_messages,
    estimate_prompt_tokens,
    parse_json,
    span_attributes,
)
from gateway.dialects.base import ChunkTimer, ClientRequest, Reading, StreamEnd
from gateway.dialects.streamstate import StreamState
from gateway.errors import GatewayError, UpstreamStatus
from gateway.limits import DEFAULT_LIMITS, RequestLimits
from gateway.telemetry import content
from gateway.telemetry import names as n
from gateway.usage import Usage, estimate_text_tokens

NAME: Final = "anthropic.messages"
COUNT_TOKENS: Final = "anthropic.count_tokens"
# The client's request headers a native upstream must see (the API version, beta features).
FORWARD_HEADERS: Final = ("anthropic-version", "anthropic-beta")
# The client's query parameters a native upstream must see: the SDK's beta client (and so
# Claude Code) calls `/v1/messages?beta=true`.
FORWARD_QUERY: Final = ("beta",)
# The upstream's response headers Anthropic's clients read.
PASS_HEADERS: Final = (
    "request-id", "retry-after", "anthropic-ratelimit-requests-limit",
    "anthropic-ratelimit-requests-remaining", "anthropic-ratelimit-requests-reset",
    "anthropic-ratelimit-input-tokens-limit", "anthropic-ratelimit-input-tokens-remaining",
    "anthropic-ratelimit-input-tokens-reset", "anthropic-ratelimit-output-tokens-limit",
    "anthropic-ratelimit-output-tokens-remaining", "anthropic-ratelimit-output-tokens-reset",
    "anthropic-ratelimit-tokens-limit", "anthropic-ratelimit-tokens-remaining",
    "anthropic-ratelimit-tokens-reset",
)


class AnthropicMessages:
    """The Messages dialect."""

    name: str = NAME
    operation: str = n.OP_CHAT
    routes: tuple[str, ...] = ("/v1/messages",)
    upstream_path: str = "/v1/messages"
    pass_headers: tuple[str, ...] = PASS_HEADERS
    forward_headers: tuple[str, ...] = FORWARD_HEADERS
    forward_query: tuple[str, ...] = FORWARD_QUERY  # see dialects.base.ForwardsQuery

    def __init__(self, limits: RequestLimits = DEFAULT_LIMITS) -> None:
        self.limits = limits  # the bound on max_tokens (`limits:` in the config)

    def parse(self, raw: bytes) -> ClientRequest:
        body = parse_json(raw)
        model, stream, max_tokens = check_messages(body, self.limits.max_tokens)
        return ClientRequest(self, body, model, stream=stream, max_tokens=max_tokens, raw=raw)

    def estimate_prompt(self, body: dict[str, Any]) -> int:
        return estimate_prompt_tokens(body)

    def request_attributes(self, request: ClientRequest, capture: bool) -> dict[str, Any]:
        attrs = span_attributes(request.body, request.stream)
        if capture:
            attrs.update(captured_input(request.body))
        return attrs

    def upstream_body(self, request: ClientRequest, upstream_model: str
                      ) -> tuple[dict[str, Any], bytes | None]:
        return renamed_body(request, upstream_model)

    def read_answer(self, request: ClientRequest, payload: dict[str, Any], served: str,
                    rename: bool, capture: bool) -> Reading:
        model = payload.get("model")
        body = None
        if rename and isinstance(model, str):
            payload["model"] = served
            body = orjson.dumps(payload)
        reading = Reading(usage_from(payload.get("usage")),
                          model if isinstance(model, str) else None,
                          response_attributes(payload), body)
        if reading.usage is None:
            text = _text(payload)
            reading.output_tokens = estimate_text_tokens(text) if text else 0
        if capture:
            reading.output_messages = captured_output(payload)
        return reading

    def watch(self, request: ClientRequest, served: str, rename: bool, timer: ChunkTimer,
              capture: bool) -> MessagesWatcher:
        return MessagesWatcher(served if rename else None, timer, capture)

    def event_error(self, data: bytes) -> str | None:
        return event_error(data)

    def first_token(self, event: bytes) -> bool:
        return first_token(event)

    def error_body(self, error: GatewayError) -> bytes:
        return wire_errors.from_gateway(error)[1]

    def upstream_error(self, status: int, body: bytes) -> bytes:
        return upstream_error(status, body)

    def stream_error(self, message: str, code: str) -> bytes:
        return wire_errors.stream_error_event(_stream_error_type(code), message)


class AnthropicCountTokens(AnthropicMessages):
    """`POST /v1/messages/count_tokens`: forwarded to a native Anthropic upstream (the chain
    answers it from the gateway's estimate when the model's provider is not one). It costs
    nothing and uses no tokens: its operation is `count_tokens`, whose CLIENT span carries
    the count as `gen_ai.usage.input_tokens` (as OpenTelemetry's Go instrumentation of the
    Anthropic SDK does) and whose only metric is the operation's duration."""

    name: str = COUNT_TOKENS
    operation: str = n.OP_COUNT_TOKENS
    routes: tuple[str, ...] = ("/v1/messages/count_tokens",)
    upstream_path: str = "/v1/messages/count_tokens"

    def parse(self, raw: bytes) -> ClientRequest:
        body = parse_json(raw)
        return ClientRequest(self, body, check_count_tokens(body), raw=raw)

    def request_attributes(self, request: ClientRequest, capture: bool) -> dict[str, Any]:
        return {}

    def read_answer(self, request: ClientRequest, payload: dict[str, Any], served: str,
                    rename: bool, capture: bool) -> Reading:
        counted = payload.get("input_tokens")
        attrs: dict[str, Any] = {}
        if isinstance(counted, int) and not isinstance(counted, bool):
            attrs[n.GEN_AI_USAGE_INPUT_TOKENS] = counted
        return Reading(Usage(), None, attrs)  # nothing used, nothing billed

    def local_answer(self, request: ClientRequest) -> bytes:
        return orjson.dumps({"input_tokens": request.prompt_tokens})


def renamed_body(request: ClientRequest, upstream_model: str
                 ) -> tuple[dict[str, Any], bytes | None]:
    """The client's body for the upstream: its own bytes when the model id is unchanged."""
    if upstream_model == request.model and request.raw:
        return request.body, request.raw
    body = dict(request.body)
    body["model"] = upstream_model
    return body, None


def upstream_error(status: int, body: bytes) -> bytes:
    """An upstream's error body in Anthropic's shape (an Anthropic body as it is)."""
    if wire_errors.is_error_body(body):
        return body
    return wire_errors.from_gateway(UpstreamStatus(status, body))[1]


def event_error(data: bytes) -> str | None:
    """The message of an `error` event's data, else None (cheap for ordinary events)."""
    if b'"error"' not in data:
        return None
    try:
        parsed = wire_errors.read_error(orjson.loads(data))
    except orjson.JSONDecodeError:
        return None
    return None if parsed is None else f"{parsed[0]}: {parsed[1]}"


_PREAMBLE: Final = (s.MESSAGE_START, b"ping", b"content_block_start")


def first_token(event: bytes) -> bool:
    """Whether a Messages event is past the stream's preamble (message_start, pings, a
    block's start), which the API sends before the model has produced anything."""
    return s.event_name(event) not in _PREAMBLE


def _stream_error_type(code: str) -> str:
    if code in (n.ERROR_TIMEOUT, "first_token_timeout"):
        return "timeout_error"
    if code in ("overloaded_error", "rate_limit_error"):
        return code
    return wire_errors.API_ERROR


def captured_input(body: dict[str, Any]) -> dict[str, Any]:
    """gen_ai.input.messages and gen_ai.system_instructions of a Messages request."""
    messages = body.get("messages")
    system = body.get("system")
    if system:
        messages = [{"role": "system", "content": system}, *(messages or [])]
    captured, instructions = content.input_messages(messages)
    attrs: dict[str, Any] = {n.GEN_AI_INPUT_MESSAGES: captured}
    if instructions is not None:
        attrs[n.GEN_AI_SYSTEM_INSTRUCTIONS] = instructions
    return attrs


def captured_output(payload: dict[str, Any]) -> str | None:
    """gen_ai.output.messages of a Messages answer: one assistant message, a part per
    content block, its stop reason as Anthropic names it; None without content."""
    parts = output_parts(payload.get("content"))
    if not parts:
        return None
    return content.assistant_message(parts, str(payload.get("stop_reason") or ""))


def _text(payload: dict[str, Any]) -> str:
    blocks = payload.get("content")
    if not isinstance(blocks, list):
        return ""
    return "".join(str(b.get("text", "")) for b in blocks
                   if isinstance(b, dict) and b.get("type") == "text")


class MessagesWatcher(StreamState):
    """Relays a Messages stream event by event: each event forwarded as it came (the
    model renamed in `message_start` when asked), read for usage, timing and the end."""

    def __init__(self, served: str | None, timer: ChunkTimer, capture: bool) -> None:
        super().__init__()
        self._reader = s.MessagesStreamWatcher(capture=capture)
        self._served = served
        self._timer = timer

    @property
    def usage(self) -> Usage | None:
        """The stream's usage; past message_start but without its final message_delta (a
        client that left, an upstream that failed), the output counted from the deltas."""
        reader = self._reader
        if reader.usage is None:
            return None
        return reader.usage_or_estimate(0)

    def output_tokens(self) -> int:
        return self._reader.chunks

    @property
    def parsed_event(self) -> bytes:
        return self._reader.parsed_event

    @property
    def parsed(self) -> dict[str, Any] | None:
        return self._reader.parsed

    def output_messages(self) -> str | None:
        reader = self._reader
        parts = output_parts(reader.captured_blocks())
        if not parts:
            return None
        return content.assistant_message(parts, reader.stop_reason or "")

    def feed(self, events: list[bytes]) -> bytes:
        parts: list[bytes] = []
        reader, timer = self._reader, self._timer
        for event in events:
            if self.done:
                break
            kind = reader.feed(event)
            if kind == s.CHUNK:
                timer.chunk()
            elif kind == s.FIRST:
                timer.first_chunk()
                self.response_model = reader.response_model
                self.response_attributes = reader.response_attributes
                if self._served is not None:
                    event = _renamed_start(event, self._served)
            elif kind == s.DONE:
                self.done = True
            elif kind == s.ERROR:
                kind_, _ = reader.error or (wire_errors.API_ERROR, "")
                self.failure = StreamEnd("upstream_error", kind_,
                                         "the upstream reported an error mid-stream")
                self.done = True
            elif kind == s.MALFORMED:
                self.failure = StreamEnd("malformed", "malformed_sse",
                                         "the upstream sent a malformed event")
                self.done = True
                parts.append(wire_errors.stream_error_event(wire_errors.API_ERROR,
                                                            self.failure.message))
                break
            parts.append(event + b"\n\n")
        return b"".join(parts)


def _renamed_start(event: bytes, served: str) -> bytes:
    """`message_start` with the gateway's model name in place of the upstream's."""
    name, _, data = event.partition(b"\ndata: ")
    payload = orjson.loads(data)
    message = payload.get("message")
    if isinstance(message, dict):
        message["model"] = served
    return name + b"\ndata: " + orjson.dumps(payload)

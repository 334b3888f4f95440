"""The Responses API's wire knowledge, pure: request checks, the prompt estimate, span
attributes, usage and finish reasons of a `response` object, and the typed SSE events
(`event: <type>` + `data: {"type": <type>, "sequence_number", ...}`).

Usage lives in the final `response` object: `input_tokens` (cache reads and writes
included, as `input_tokens_details.cached_tokens` and `.cache_write_tokens`),
`output_tokens` (reasoning included, as `output_tokens_details.reasoning_tokens`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

from gateway.dialects import openai_wire
from gateway.errors import InvalidRequest
from gateway.limits import check_count
from gateway.sse import event_data
from gateway.telemetry import names as n
from gateway.usage import MAX_TOKENS, Usage, estimate_text_tokens

JSON = dict[str, Any]
API_TYPE: Final = "responses"

# Event types.
CREATED: Final = "response.created"
COMPLETED: Final = "response.completed"
INCOMPLETE: Final = "response.incomplete"
FAILED: Final = "response.failed"
ERROR: Final = "error"
TEXT_DELTA: Final = "response.output_text.delta"
ARGUMENTS_DELTA: Final = "response.function_call_arguments.delta"
# The events that end a stream, each carrying the whole `response` (usage included).
TERMINAL: Final = frozenset({COMPLETED, INCOMPLETE, FAILED})
# Events that carry a whole `response` object (whose `model` a rename rewrites).
WITH_RESPONSE: Final = frozenset({CREATED, "response.in_progress", "response.queued",
                                  COMPLETED, INCOMPLETE, FAILED})
# Events sent before the model has produced anything (the first-token deadline skips them).
PREAMBLE: Final = frozenset({CREATED, "response.in_progress", "response.queued",
                             "response.output_item.added", "response.content_part.added"})


def check_request(body: Mapping[str, Any], max_tokens_limit: int) -> tuple[str, bool, int | None]:
    """(model, stream, max_output_tokens) of a Responses request; raises InvalidRequest."""
    model = openai_wire.model_of(body)
    value = body.get("input")
    if value is not None and not isinstance(value, str | list):
        raise InvalidRequest("'input' must be a string or an array of input items.",
                             param="input")
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str | list):
        raise InvalidRequest("'instructions' must be a string.", param="instructions")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean.", param="stream")
    limit = body.get("max_output_tokens")
    check_count("max_output_tokens", limit, max_tokens_limit)
    max_tokens = limit if isinstance(limit, int) and not isinstance(limit, bool) else None
    return model, bool(stream), max_tokens


def estimate_prompt_tokens(body: Mapping[str, Any]) -> int:
    """A rough count of the instructions and input items (about 4 characters a token)."""
    total = _tokens(body.get("instructions"))
    value = body.get("input")
    if isinstance(value, list):
        for item in value:
            total += 4 + (_item_tokens(item) if isinstance(item, dict) else _tokens(item))
        return total + 3
    return total + _tokens(value)


def _item_tokens(item: JSON) -> int:
    kind = item.get("type")
    if kind == "function_call_output":
        return _tokens(item.get("output"))
    if kind == "function_call":
        return _tokens(item.get("arguments")) + _tokens(item.get("name"))
    return _tokens(item.get("content"))


def _tokens(value: Any) -> int:
    if isinstance(value, str):
        return estimate_text_tokens(value) if value else 0
    if isinstance(value, list):
        total = 0
        for part in value:
            if isinstance(part, dict):
                text = part.get("text")
                total += estimate_text_tokens(text) if isinstance(text, str) else 85
            elif isinstance(part, str):
                total += estimate_text_tokens(part)
        return total
    return 0


def span_attributes(body: Mapping[str, Any], max_tokens: int | None, stream: bool) -> JSON:
    """gen_ai request attributes of a Responses request."""
    attrs = openai_wire.common_request_attributes(body, max_tokens, stream)
    attrs[n.OPENAI_API_TYPE] = API_TYPE
    text = body.get("text")
    fmt = text.get("format") if isinstance(text, dict) else None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind in ("json_schema", "json_object"):
        attrs[n.GEN_AI_OUTPUT_TYPE] = "json"
    elif kind == "text":
        attrs[n.GEN_AI_OUTPUT_TYPE] = "text"
    return attrs


def _count(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return min(value, MAX_TOKENS)
    return 0


def usage_from(usage: Any) -> Usage | None:
    """A `response` object's `usage` as the gateway's Usage; None when absent."""
    if not isinstance(usage, dict):
        return None
    prompt = _count(usage.get("input_tokens"))
    output = _count(usage.get("output_tokens"))
    inputs = usage.get("input_tokens_details")
    outputs = usage.get("output_tokens_details")
    cached = written = 0
    if isinstance(inputs, dict):
        cached = _count(inputs.get("cached_tokens"))
        written = _count(inputs.get("cache_write_tokens"))
    reasoning = _count(outputs.get("reasoning_tokens")) if isinstance(outputs, dict) else 0
    return Usage(input=prompt, output=output, cache_read=min(cached, prompt),
                 cache_creation=min(written, prompt), reasoning=min(reasoning, output))


def finish_reason(response: Mapping[str, Any]) -> str:
    """One finish reason for a `response` object, in chat completions' words: `stop`,
    `tool_calls`, `length`, `content_filter`, or `error`."""
    status = response.get("status")
    if status == "failed":
        return "error"
    if status == "incomplete":
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        return "length" if reason == "max_output_tokens" else str(reason or "incomplete")
    output = response.get("output")
    if isinstance(output, list) and any(isinstance(item, dict) and item.get("type") == "function_call"
                                        for item in output):
        return "tool_calls"
    return "stop"


def response_attributes(response: Mapping[str, Any]) -> JSON:
    """gen_ai response attributes of a `response` object (id, service tier, finish reason)."""
    attrs: JSON = {}
    ident = response.get("id")
    if isinstance(ident, str):
        attrs[n.GEN_AI_RESPONSE_ID] = ident
    tier = response.get("service_tier")
    if isinstance(tier, str):
        attrs[n.OPENAI_RESPONSE_SERVICE_TIER] = tier
    if response.get("status") in ("completed", "incomplete", "failed"):
        attrs[n.GEN_AI_RESPONSE_FINISH_REASONS] = [finish_reason(response)]
    return attrs


def output_texts(response: Mapping[str, Any]) -> str:
    """The text of a response's message items, joined."""
    parts: list[str] = []
    output = response.get("output")
    for item in output if isinstance(output, list) else ():
        if isinstance(item, dict) and item.get("type") == "message":
            for part in item.get("content") or ():
                if isinstance(part, dict) and part.get("type") == "output_text":
                    parts.append(str(part.get("text", "")))
    return "".join(parts)


def event_type(event: bytes) -> str:
    """An event's type: its `event:` line, else its data's `type` ("" when neither)."""
    if event.startswith(b"event:"):
        line, _, _ = event.partition(b"\n")
        return line[6:].strip().decode("utf-8", "replace")
    data = event_data(event)
    if data is None:
        return ""
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError:
        return ""
    kind = payload.get("type") if isinstance(payload, dict) else None
    return kind if isinstance(kind, str) else ""


def event(kind: str, payload: JSON) -> bytes:
    """One typed event as the API sends it: its type in the `event:` line and the data."""
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def error_event(message: str, code: str, sequence_number: int) -> bytes:
    """An `error` event (the SDK's ResponseErrorEvent)."""
    return event(ERROR, {"type": ERROR, "code": code, "message": message, "param": None,
                         "sequence_number": sequence_number})


def sequence_number(event: bytes) -> int | None:
    """An event's `sequence_number`, None when it has none."""
    data = event_data(event)
    try:
        payload = orjson.loads(data) if data is not None else None
    except orjson.JSONDecodeError:
        return None
    number = payload.get("sequence_number") if isinstance(payload, dict) else None
    return number if isinstance(number, int) and not isinstance(number, bool) else None


def event_error(data: bytes) -> str | None:
    """The message when an event reports an error (`error`, `response.failed`), else None."""
    if b'"error"' not in data and b"response.failed" not in data:
        return None
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(payload, dict):
        return None
    kind = payload.get("type")
    if kind == ERROR:
        return str(payload.get("message") or payload.get("code") or "an error")[:300]
    if kind == FAILED:
        response = payload.get("response")
        error = response.get("error") if isinstance(response, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        return str(message or "the response failed")[:300]
    return openai_wire.event_error(data) if kind is None else None

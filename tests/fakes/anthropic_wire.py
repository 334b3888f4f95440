"""Anthropic Messages wire-format builders for the fake upstream: pure functions, no I/O.

The exact shapes api.anthropic.com sends (ids, usage with cache fields and the TTL
split, content blocks, the named stream events, error bodies), kept in one place that
tests read without an event loop. Checked against the official `anthropic` SDK's
pydantic types (tests/fakes/test_anthropic_upstream.py parses every shape with them).
"""

from __future__ import annotations

import itertools
import os
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

JSON = dict[str, Any]

_ALPHABET = string.ascii_letters + string.digits
DEFAULT_MODEL = "claude-sonnet-4-5-20250929"
API_VERSION = "2023-06-01"

ERROR_TYPES: Mapping[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_ERROR_MESSAGES: Mapping[str, str] = {
    "authentication_error": "invalid x-api-key",
    "rate_limit_error": "Number of request tokens has exceeded your per-minute rate limit",
    "api_error": "Internal server error",
    "overloaded_error": "Overloaded",
}


class IdFactory:
    """Ids shaped like Anthropic's (`msg_01...`, `toolu_01...`, `req_011C...`)."""

    def __init__(self) -> None:
        raw = os.urandom(16)
        self._prefix = "".join(_ALPHABET[b % len(_ALPHABET)] for b in raw)
        self._counter = itertools.count(1)

    def _next(self) -> str:
        return f"{self._prefix}{next(self._counter):08d}"

    def message_id(self) -> str:
        return "msg_01" + self._next()

    def tool_use_id(self) -> str:
        return "toolu_01" + self._next()

    def request_id(self) -> str:
        return "req_011C" + self._next()


@dataclass(frozen=True)
class Usage:
    """One answer's tokens as Anthropic counts them: `input` is the uncached part only."""

    input: int
    output: int
    cache_write_5m: int = 0
    cache_write_1h: int = 0
    cache_read: int = 0

    def as_json(self) -> JSON:
        return {
            "input_tokens": self.input,
            "cache_creation_input_tokens": self.cache_write_5m + self.cache_write_1h,
            "cache_read_input_tokens": self.cache_read,
            "cache_creation": {"ephemeral_5m_input_tokens": self.cache_write_5m,
                               "ephemeral_1h_input_tokens": self.cache_write_1h},
            "output_tokens": self.output,
            "service_tier": "standard",
        }


def error_body(status: int, message: str | None = None, request_id: str | None = None) -> JSON:
    kind = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    body: JSON = {"type": "error",
                  "error": {"type": kind, "message": message or _ERROR_MESSAGES.get(kind, kind)}}
    if request_id is not None:
        body["request_id"] = request_id
    return body


def count_input_tokens(body: Mapping[str, Any]) -> int:
    """Deterministic prompt size: whitespace words of system and messages, plus 3 a message."""
    words = len(_text(body.get("system")).split())
    for message in body.get("messages") or ():
        if isinstance(message, Mapping):
            words += len(_text(message.get("content")).split()) + 3
    return words + 3


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, Mapping):
                if block.get("type") == "text":
                    parts.append(str(block.get("text", "")))
                elif block.get("type") == "tool_result":
                    parts.append(_text(block.get("content")))
        return " ".join(parts)
    return ""


def last_user_text(body: Mapping[str, Any]) -> str:
    for message in reversed(list(body.get("messages") or ())):
        if isinstance(message, Mapping) and message.get("role") == "user":
            return _text(message.get("content"))
    return ""


def text_block(text: str) -> JSON:
    return {"type": "text", "text": text}


def tool_use_block(ident: str, name: str, arguments: Mapping[str, Any]) -> JSON:
    return {"type": "tool_use", "id": ident, "name": name, "input": dict(arguments)}


def thinking_block(thinking: str, signature: str) -> JSON:
    return {"type": "thinking", "thinking": thinking, "signature": signature}


def message(*, ident: str, model: str, content: Sequence[JSON], stop_reason: str,
            usage: Usage, stop_sequence: str | None = None) -> JSON:
    return {
        "id": ident,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": list(content),
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": usage.as_json(),
    }


def event(kind: str, payload: Mapping[str, Any]) -> bytes:
    """One SSE event as Anthropic frames it: `event:` line, compact JSON `data:` line."""
    data = orjson.dumps({"type": kind, **payload})
    return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


def _pieces(text: str, size: int) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def stream_events(*, ident: str, model: str, content: Sequence[JSON], stop_reason: str,
                  usage: Usage, chunk_chars: int = 12, full_delta_usage: bool = False,
                  pings: bool = True) -> list[bytes]:
    """The events of a streamed answer, as the API sends them: message_start (input usage
    and a placeholder output count), each block's start, deltas of its type and stop, a
    ping, message_delta (stop reason and cumulative usage) and message_stop."""
    start_usage = {**usage.as_json(), "output_tokens": 1}
    start = {"id": ident, "type": "message", "role": "assistant", "model": model, "content": [],
             "stop_reason": None, "stop_sequence": None, "usage": start_usage}
    events = [event("message_start", {"message": start})]
    for index, block in enumerate(content):
        events.extend(_block_events(index, block, chunk_chars))
        if index == 0 and pings:
            events.insert(2, event("ping", {}))
    delta_usage: JSON = {"output_tokens": usage.output}
    if full_delta_usage:
        delta_usage = {k: v for k, v in usage.as_json().items()
                       if k not in ("cache_creation", "service_tier")}
    events.append(event("message_delta", {
        "delta": {"stop_reason": stop_reason, "stop_sequence": None}, "usage": delta_usage}))
    events.append(event("message_stop", {}))
    return events


def _block_events(index: int, block: Mapping[str, Any], size: int) -> Iterable[bytes]:
    kind = block["type"]
    if kind == "text":
        yield event("content_block_start", {"index": index, "content_block": text_block("")})
        for piece in _pieces(block["text"], size):
            yield event("content_block_delta",
                        {"index": index, "delta": {"type": "text_delta", "text": piece}})
    elif kind == "tool_use":
        start = tool_use_block(block["id"], block["name"], {})
        yield event("content_block_start", {"index": index, "content_block": start})
        arguments = orjson.dumps(block["input"]).decode()
        for piece in ["", *_pieces(arguments, size)]:
            yield event("content_block_delta",
                        {"index": index, "delta": {"type": "input_json_delta", "partial_json": piece}})
    elif kind == "thinking":
        yield event("content_block_start", {"index": index,
                                            "content_block": {"type": "thinking", "thinking": "",
                                                              "signature": ""}})
        for piece in _pieces(block["thinking"], size):
            yield event("content_block_delta",
                        {"index": index, "delta": {"type": "thinking_delta", "thinking": piece}})
        yield event("content_block_delta", {
            "index": index, "delta": {"type": "signature_delta", "signature": block["signature"]}})
    yield event("content_block_stop", {"index": index})


def split_stream(raw: bytes) -> list[tuple[str, JSON]]:
    """(event name, data) of every event in a Messages SSE body: for assertions."""
    out = []
    for chunk in raw.split(b"\n\n"):
        if not chunk.strip():
            continue
        lines = chunk.split(b"\n")
        name = next(line[6:].strip().decode() for line in lines if line.startswith(b"event:"))
        data = b"".join(line[5:].strip() for line in lines if line.startswith(b"data:"))
        out.append((name, orjson.loads(data)))
    return out

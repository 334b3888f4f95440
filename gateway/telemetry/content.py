"""Message-content capture, off unless OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT
asks for it; converts OpenAI messages and Anthropic's content blocks to the GenAI
semconv JSON shape."""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from typing import Any

import orjson

ENV_VAR = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_log = logging.getLogger(__name__)


class ContentMode(enum.Enum):
    NO_CONTENT = "NO_CONTENT"
    SPAN_ONLY = "SPAN_ONLY"
    EVENT_ONLY = "EVENT_ONLY"
    SPAN_AND_EVENT = "SPAN_AND_EVENT"

    @property
    def on_span(self) -> bool:
        return self in (ContentMode.SPAN_ONLY, ContentMode.SPAN_AND_EVENT)

    @property
    def as_event(self) -> bool:
        return self in (ContentMode.EVENT_ONLY, ContentMode.SPAN_AND_EVENT)

    @property
    def enabled(self) -> bool:
        return self is not ContentMode.NO_CONTENT


def content_mode(environ: Mapping[str, str]) -> ContentMode:
    raw = environ.get(ENV_VAR, "").strip()
    if not raw:
        return ContentMode.NO_CONTENT
    try:
        return ContentMode(raw.upper())
    except ValueError:
        _log.warning("%s=%r is not one of %s; capturing no content", ENV_VAR, raw,
                     ", ".join(m.value for m in ContentMode))
        return ContentMode.NO_CONTENT


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts: list[dict[str, Any]] = []
    if isinstance(content, list):
        for part in content:
            if not isinstance(part, Mapping):
                continue
            kind = part.get("type")
            if kind == "text":
                parts.append({"type": "text", "content": part.get("text", "")})
            elif kind == "tool_use":  # Anthropic's blocks in a Messages conversation
                parts.append({"type": "tool_call", "id": part.get("id"), "name": part.get("name"),
                              "arguments": part.get("input")})
            elif kind == "tool_result":
                parts.append({"type": "tool_call_response", "id": part.get("tool_use_id"),
                              "response": part.get("content")})
            elif kind == "thinking":
                parts.append({"type": "reasoning", "content": part.get("thinking", "")})
            else:
                parts.append({"type": str(kind or "unknown")})
    return parts


def input_messages(messages: Any) -> tuple[str, str | None]:
    """(gen_ai.input.messages, gen_ai.system_instructions) as JSON strings."""
    converted: list[dict[str, Any]] = []
    system: list[dict[str, Any]] = []
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, Mapping):
            continue
        role = str(message.get("role", "user"))
        parts = _parts(message.get("content"))
        if role in ("system", "developer"):
            system.extend(parts)
            continue
        for call in message.get("tool_calls") or []:
            if isinstance(call, Mapping):
                function = call.get("function") or {}
                parts.append({"type": "tool_call", "id": call.get("id"),
                              "name": function.get("name"), "arguments": function.get("arguments")})
        if role == "tool":
            parts = [{"type": "tool_call_response", "id": message.get("tool_call_id"),
                      "response": message.get("content")}]
        converted.append({"role": role, "parts": parts})
    system_json = orjson.dumps(system).decode() if system else None
    return orjson.dumps(converted).decode(), system_json


def assistant_message(parts: list[dict[str, Any]], finish_reason: str) -> str:
    """gen_ai.output.messages of an answer that is one assistant message made of parts
    (Anthropic's content blocks: text, tool calls, reasoning)."""
    return orjson.dumps([{"role": "assistant", "parts": parts,
                          "finish_reason": finish_reason}]).decode()


def output_messages(texts: Mapping[int, str], finish_reasons: Mapping[int, str]) -> str:
    """gen_ai.output.messages of chat choices: one assistant message per choice index."""
    out = [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": texts[index]}],
            "finish_reason": finish_reasons.get(index, ""),
        }
        for index in sorted(texts)
    ]
    return orjson.dumps(out).decode()

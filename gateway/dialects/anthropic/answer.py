"""Usage and response attributes from a Messages answer (the JSON `message`, or the
`message` of a stream's `message_start`).

Anthropic's `input_tokens` counts only the input that was neither written to nor read
from the prompt cache; the gateway's `Usage.input`, like the semantic conventions'
`gen_ai.usage.input_tokens`, is the sum of all three.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.telemetry import names as n
from gateway.usage import Usage


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def usage_from(usage: Any) -> Usage | None:
    """Read an Anthropic `usage` object parsed from JSON; None when absent. Cache writes
    without the TTL breakdown are five-minute writes (the default lifetime)."""
    if not isinstance(usage, dict):
        return None
    uncached = _int(usage.get("input_tokens"))
    written = _int(usage.get("cache_creation_input_tokens"))
    read = _int(usage.get("cache_read_input_tokens"))
    output = _int(usage.get("output_tokens"))
    written_1h = 0
    split = usage.get("cache_creation")
    if isinstance(split, dict):
        written_1h = _int(split.get("ephemeral_1h_input_tokens"))
        written = max(written, written_1h + _int(split.get("ephemeral_5m_input_tokens")))
    details = usage.get("output_tokens_details")
    thinking = _int(details.get("thinking_tokens")) if isinstance(details, dict) else 0
    return Usage(
        input=uncached + written + read,
        output=output,
        cache_read=read,
        cache_creation=written,
        reasoning=min(thinking, output),
        cache_creation_1h=written_1h,
    )


def merged_usage(start: Any, delta: Any) -> Usage | None:
    """A stream's usage: `message_start`'s, with each count the final `message_delta`
    reports (cumulative, so it replaces; absent or null fields keep the start's)."""
    if not isinstance(delta, dict):
        return usage_from(start)
    if not isinstance(start, dict):
        return usage_from(delta)
    merged = dict(start)
    for key, value in delta.items():
        if value is not None:
            merged[key] = value
    return usage_from(merged)


def response_attributes(message: Mapping[str, Any]) -> dict[str, Any]:
    """gen_ai response attributes of a Messages answer: id and finish reasons (the stop
    reason as Anthropic names it). The response model is read by the caller."""
    attrs: dict[str, Any] = {}
    ident = message.get("id")
    if isinstance(ident, str):
        attrs[n.GEN_AI_RESPONSE_ID] = ident
    reason = message.get("stop_reason")
    if isinstance(reason, str):
        attrs[n.GEN_AI_RESPONSE_FINISH_REASONS] = [reason]
    return attrs


def output_parts(blocks: Any) -> list[dict[str, Any]]:
    """A Messages answer's content blocks as the parts of the GenAI conventions' output
    message: text, tool calls (client and server tools) and reasoning (thinking); other
    blocks by their type only."""
    parts: list[dict[str, Any]] = []
    for block in blocks if isinstance(blocks, list) else ():
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            parts.append({"type": "text", "content": str(block.get("text", ""))})
        elif kind in ("tool_use", "server_tool_use"):
            parts.append({"type": "tool_call", "id": block.get("id"), "name": block.get("name"),
                          "arguments": block.get("input")})
        elif kind == "thinking":
            parts.append({"type": "reasoning", "content": str(block.get("thinking", ""))})
        else:
            parts.append({"type": str(kind or "unknown")})
    return parts


def response_model(message: Mapping[str, Any]) -> str | None:
    model = message.get("model")
    return model if isinstance(model, str) else None

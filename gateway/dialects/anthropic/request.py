"""Reading a Messages request (`POST /v1/messages`, `/v1/messages/count_tokens`):
validation of what the gateway relies on, the span attributes it carries and the
prompt estimate. Everything else passes to the upstream untouched.

Validation messages follow Anthropic's own (`max_tokens: Field required`), and are
raised as the gateway's `InvalidRequest`, which the edge shapes as Anthropic's
`invalid_request_error`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

from gateway.dialects.bodies import (
    bounded_count,
    json_object,
    numbers_into,
    required_string,
    string_list,
)
from gateway.errors import InvalidRequest
from gateway.telemetry import names as n
from gateway.usage import estimate_text_tokens

# Rough sizes for blocks whose text is not in the request (Anthropic bills an image by
# its pixels, about 1,600 tokens for a full-size one; a document by its pages).
_IMAGE_TOKENS: Final = 1600
_DOCUMENT_TOKENS: Final = 3000


def parse_json(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object, or InvalidRequest."""
    return json_object(raw, "There was an issue with the request body: it is empty.",
                       "There was an issue with the request body: it is not valid JSON.",
                       "There was an issue with the request body: it must be a JSON object.")


def check_messages(body: Mapping[str, Any], max_tokens_limit: int) -> tuple[str, bool, int]:
    """Validate a Messages create request (model, max_tokens up to the gateway's limit,
    messages, stream, system, tools, stop_sequences); its model, whether it streams, and
    its max_tokens."""
    model = _model(body)
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        raise InvalidRequest("max_tokens: Field required", param="max_tokens")
    max_tokens = bounded_count(
        max_tokens, max_tokens_limit, "max_tokens",
        "max_tokens: Input should be a valid integer greater than or equal to 1",
        f"max_tokens: Input should be less than or equal to {max_tokens_limit}")
    _messages(body)
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("stream: Input should be a valid boolean", param="stream")
    _system(body.get("system"))
    _tools(body.get("tools"))
    stops = body.get("stop_sequences")
    if stops is not None and (not isinstance(stops, list)
                              or not all(isinstance(s, str) for s in stops)):
        raise InvalidRequest("stop_sequences: Input should be a valid list of strings",
                             param="stop_sequences")
    return model, bool(stream), max_tokens


def check_count_tokens(body: Mapping[str, Any]) -> str:
    """Validate a count_tokens request (a Messages request without max_tokens); its model."""
    model = _model(body)
    _messages(body)
    _system(body.get("system"))
    _tools(body.get("tools"))
    return model


def _model(body: Mapping[str, Any]) -> str:
    return required_string(body, "model", "model: Field required",
                           "model: Input should be a non-empty string")


def _messages(body: Mapping[str, Any]) -> None:
    messages = body.get("messages")
    if messages is None:
        raise InvalidRequest("messages: Field required", param="messages")
    if not isinstance(messages, list):
        raise InvalidRequest("messages: Input should be a valid list", param="messages")
    if not messages:
        raise InvalidRequest("messages: at least one message is required", param="messages")
    for index, message in enumerate(messages):
        where = f"messages.{index}"
        if not isinstance(message, dict):
            raise InvalidRequest(f"{where}: Input should be a valid dictionary", param="messages")
        # Roles beyond user and assistant come with betas (mid-conversation `system`):
        # the upstream judges them.
        role = message.get("role")
        if not isinstance(role, str) or not role:
            raise InvalidRequest(f"{where}.role: Input should be 'user' or 'assistant'",
                                 param="messages")
        _content(message.get("content"), f"{where}.content")


def _content(content: Any, where: str) -> None:
    if isinstance(content, str):
        return
    if content is None:
        raise InvalidRequest(f"{where}: Field required", param="messages")
    if not isinstance(content, list):
        raise InvalidRequest(f"{where}: Input should be a valid string or list of content blocks",
                             param="messages")
    for index, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise InvalidRequest(f"{where}.{index}.type: Field required", param="messages")


def _system(system: Any) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list) or not all(
            isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
            for b in system):
        raise InvalidRequest("system: Input should be a valid string or list of text blocks",
                             param="system")


def _tools(tools: Any) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise InvalidRequest("tools: Input should be a valid list", param="tools")
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise InvalidRequest(f"tools.{index}.name: Field required", param="tools")


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


_NUMERIC: Final = (
    ("temperature", n.GEN_AI_REQUEST_TEMPERATURE),
    ("top_p", n.GEN_AI_REQUEST_TOP_P),
    ("top_k", n.GEN_AI_REQUEST_TOP_K),
)


def span_attributes(body: Mapping[str, Any], stream: bool) -> dict[str, Any]:
    """The gen_ai request attributes of a Messages request's CLIENT span."""
    attrs: dict[str, Any] = {}
    max_tokens = body.get("max_tokens")
    if _positive_int(max_tokens):
        attrs[n.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
    numbers_into(attrs, body, _NUMERIC)
    stops = string_list(body.get("stop_sequences"))
    if stops is not None:
        attrs[n.GEN_AI_REQUEST_STOP_SEQUENCES] = stops
    if stream:
        attrs[n.GEN_AI_REQUEST_STREAM] = True
    return attrs


def estimate_prompt_tokens(body: Mapping[str, Any]) -> int:
    """Rough input tokens of a Messages request: system, messages and tool definitions."""
    total = _blocks_tokens(body.get("system"))
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict):
                total += 4 + _blocks_tokens(message.get("content"))
    tools = body.get("tools")
    if isinstance(tools, list) and tools:
        total += estimate_text_tokens(orjson.dumps(tools).decode())
    return max(1, total)


def _blocks_tokens(content: Any) -> int:
    if isinstance(content, str):
        return estimate_text_tokens(content)
    if not isinstance(content, list):
        return 0
    total = 0
    for block in content:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            total += _text_tokens(block.get("text"))
        elif kind == "image":
            total += _IMAGE_TOKENS
        elif kind == "document":
            total += _DOCUMENT_TOKENS
        elif kind == "tool_use":
            total += estimate_text_tokens(orjson.dumps(block.get("input")).decode())
        elif kind == "tool_result":
            total += _blocks_tokens(block.get("content"))
        elif kind == "thinking":
            total += _text_tokens(block.get("thinking"))
    return total


def _text_tokens(text: Any) -> int:
    return estimate_text_tokens(text) if isinstance(text, str) else 0

"""The simulator's answers in Anthropic's Messages format (`/v1/messages` and
`/v1/messages/count_tokens`): JSON and named SSE events, usage with the cache fields,
a `tool_use` block when the request requires a tool, and Anthropic's error bodies.

Prompt caching is simulated: a request whose blocks carry `cache_control` writes its
prompt to the cache the first time (one-hour entries when the marker says `ttl: 1h`)
and reads it on later identical prompts, so cache costs show up with no key.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Final

import orjson

from gateway.dialects.anthropic.errors import error_body, type_for_status
from gateway.dialects.anthropic.request import estimate_prompt_tokens

_CACHE_ENTRIES: Final = 1024
_CHARS_PER_DELTA: Final = 24

JSON = dict[str, Any]


def _ident(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


class PromptCache:
    """Which prompts were written to the simulated cache (bounded, oldest forgotten)."""

    def __init__(self) -> None:
        self._seen: OrderedDict[bytes, None] = OrderedDict()

    def hit(self, key: bytes) -> bool:
        """True when `key` was cached before; caches it otherwise."""
        if key in self._seen:
            self._seen.move_to_end(key)
            return True
        self._seen[key] = None
        if len(self._seen) > _CACHE_ENTRIES:
            self._seen.popitem(last=False)
        return False


def _cache_marker(body: Mapping[str, Any]) -> str | None:
    """The TTL of the request's cache_control markers ("5m" or "1h"), None when it has none."""
    found: str | None = None
    for part in _blocks(body):
        control = part.get("cache_control")
        if isinstance(control, dict):
            found = "1h" if control.get("ttl") == "1h" or found == "1h" else "5m"
    return found


def _blocks(body: Mapping[str, Any]) -> list[JSON]:
    blocks: list[JSON] = []
    for key in ("system", "tools"):
        value = body.get(key)
        if isinstance(value, list):
            blocks.extend(b for b in value if isinstance(b, dict))
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            blocks.extend(b for b in content if isinstance(b, dict))
    return blocks


def usage(body: Mapping[str, Any], output: int, cache: PromptCache) -> JSON:
    """Usage as Anthropic reports it, the prompt split into uncached, written and read."""
    prompt = estimate_prompt_tokens(body)
    written_5m = written_1h = read = 0
    ttl = _cache_marker(body)
    if ttl is not None:
        cached = max(0, prompt - 4)  # all but the last turn's few tokens
        key = hashlib.blake2b(orjson.dumps(body.get("system")) + orjson.dumps(body.get("tools"))
                              + orjson.dumps(body.get("messages")), digest_size=16).digest()
        if cache.hit(key):
            read = cached
        elif ttl == "1h":
            written_1h = cached
        else:
            written_5m = cached
    return {
        "input_tokens": prompt - written_5m - written_1h - read,
        "cache_creation_input_tokens": written_5m + written_1h,
        "cache_read_input_tokens": read,
        "cache_creation": {"ephemeral_5m_input_tokens": written_5m,
                           "ephemeral_1h_input_tokens": written_1h},
        "output_tokens": output,
        "service_tier": "standard",
    }


def forced_tool(body: Mapping[str, Any]) -> JSON | None:
    """The tool_use block for a request that requires a tool (tool_choice any or tool)."""
    choice = body.get("tool_choice")
    tools = [t for t in body.get("tools") or () if isinstance(t, dict) and "name" in t]
    if not tools or not isinstance(choice, dict) or choice.get("type") not in ("any", "tool"):
        return None
    tool = tools[0]
    if choice.get("type") == "tool":
        tool = next((t for t in tools if t.get("name") == choice.get("name")), tool)
    schema = tool.get("input_schema")
    properties = schema.get("properties") if isinstance(schema, dict) else None
    required = schema.get("required") if isinstance(schema, dict) else None
    arguments = {str(name): _sample(properties.get(name) if isinstance(properties, dict) else None)
                 for name in (required if isinstance(required, list) else [])}
    return {"type": "tool_use", "id": _ident("toolu_01"), "name": tool["name"], "input": arguments}


def _sample(schema: Any) -> Any:
    kind = schema.get("type") if isinstance(schema, dict) else None
    return {"integer": 1, "number": 1.5, "boolean": True, "array": [], "object": {}}.get(
        str(kind), "simulated")


def message(body: Mapping[str, Any], text: str, output: int, stop: str,
            cache: PromptCache) -> JSON:
    """A whole Messages answer."""
    tool = forced_tool(body)
    content = [tool] if tool is not None else [{"type": "text", "text": text}]
    return {
        "id": _ident("msg_01"),
        "type": "message",
        "role": "assistant",
        "model": str(body.get("model", "")),
        "content": content,
        "stop_reason": "tool_use" if tool is not None else stop,
        "stop_sequence": None,
        "usage": usage(body, output, cache),
    }


def _event(kind: str, payload: JSON) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **payload}) + b"\n\n"


def stream(answer: JSON) -> list[bytes]:
    """A whole answer as the API streams it: message_start, each block's start, deltas and
    stop (a ping after the first start), message_delta, message_stop."""
    start = {**answer, "content": [], "stop_reason": None,
             "usage": {**answer["usage"], "output_tokens": 1}}
    events = [_event("message_start", {"message": start})]
    for index, block in enumerate(answer["content"]):
        if block["type"] == "tool_use":
            events.append(_event("content_block_start",
                                 {"index": index, "content_block": {**block, "input": {}}}))
            deltas = [{"type": "input_json_delta", "partial_json": piece}
                      for piece in _pieces(orjson.dumps(block["input"]).decode())]
        else:
            events.append(_event("content_block_start",
                                 {"index": index, "content_block": {"type": "text", "text": ""}}))
            deltas = [{"type": "text_delta", "text": piece} for piece in _pieces(block["text"])]
        if index == 0:
            events.append(_event("ping", {}))
        events.extend(_event("content_block_delta", {"index": index, "delta": d}) for d in deltas)
        events.append(_event("content_block_stop", {"index": index}))
    events.append(_event("message_delta", {
        "delta": {"stop_reason": answer["stop_reason"], "stop_sequence": None},
        "usage": {"output_tokens": answer["usage"]["output_tokens"]}}))
    events.append(_event("message_stop", {}))
    return events


def _pieces(text: str) -> list[str]:
    return [text[i:i + _CHARS_PER_DELTA] for i in range(0, len(text), _CHARS_PER_DELTA)] or [""]


def count_tokens(body: Mapping[str, Any]) -> bytes:
    return orjson.dumps({"input_tokens": estimate_prompt_tokens(body)})


def error(status: int) -> bytes:
    return orjson.dumps(error_body(type_for_status(status), f"Simulated upstream error {status}.",
                                   _ident("req_011C")))

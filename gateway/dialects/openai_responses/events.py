"""Builds a Responses stream's typed events in order, with their sequence numbers and
output indexes, from pieces of output as they come: the simulator's streams and a chat
completions stream translated for a Responses client are both written with it.

    events = ResponseEvents(skeleton)         # a `response` object with no output yet
    out = events.start()                      # response.created, response.in_progress
    out += events.text("Hel") + events.text("lo")
    out += events.function_call(0, "call_1", "get_weather") + events.arguments(0, '{"a":')
    out += events.finish(usage)               # each open item's done events, response.completed

Each item is opened with `response.output_item.added` (a message also with its
`response.content_part.added`) and closed with its `.done` events before the next item
opens, as the API does; the final event carries the whole response, usage included.
"""

from __future__ import annotations

import uuid
from typing import Any

from gateway.dialects.openai_responses.wire import event

JSON = dict[str, Any]


def ident(prefix: str) -> str:
    """An id in the API's style (`resp_...`, `msg_...`, `fc_...`)."""
    return f"{prefix}_{uuid.uuid4().hex}"


class ResponseEvents:
    """One response's event sequence, built piece by piece."""

    def __init__(self, response: JSON) -> None:
        self.response = response
        response["output"] = []
        response["status"] = "in_progress"
        self._sequence = 0
        self._open: JSON | None = None  # the item being written
        self._calls: dict[int, JSON] = {}  # a caller's key (chat's tool index) -> its item

    @property
    def sequence(self) -> int:
        """The next event's sequence number."""
        return self._sequence

    @property
    def output(self) -> list[JSON]:
        output: list[JSON] = self.response["output"]
        return output

    def _event(self, kind: str, payload: JSON) -> bytes:
        data = {"type": kind, "sequence_number": self._sequence, **payload}
        self._sequence += 1
        return event(kind, data)

    def _snapshot(self) -> JSON:
        return {**self.response, "output": [dict(item) for item in self.output]}

    def start(self) -> bytes:
        return (self._event("response.created", {"response": self._snapshot()})
                + self._event("response.in_progress", {"response": self._snapshot()}))

    def _add(self, item: JSON) -> bytes:
        out = self.close_item()
        self.output.append(item)
        self._open = item
        out += self._event("response.output_item.added",
                           {"output_index": len(self.output) - 1, "item": dict(item)})
        return out

    def text(self, delta: str) -> bytes:
        """Text of the answer: a message item is opened first when none is open."""
        out = b""
        item = self._open
        if item is None or item["type"] != "message":
            item = {"id": ident("msg"), "type": "message", "status": "in_progress",
                    "role": "assistant", "content": []}
            out += self._add(item)
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            item["content"].append(part)
            out += self._event("response.content_part.added", {
                "item_id": item["id"], "output_index": len(self.output) - 1,
                "content_index": 0, "part": dict(part)})
        if not delta:
            return out
        item["content"][0]["text"] += delta
        return out + self._event("response.output_text.delta", {
            "item_id": item["id"], "output_index": self.output.index(item), "content_index": 0,
            "delta": delta, "logprobs": []})

    def reasoning(self) -> bytes:
        """A reasoning item with no summary (the model thought; what it thought is not sent)."""
        out = self._add({"id": ident("rs"), "type": "reasoning", "summary": []})
        return out + self.close_item()

    def function_call(self, key: int, call_id: str, name: str) -> bytes:
        """A function call item, its arguments to follow (`arguments(key, ...)`)."""
        item = {"id": ident("fc"), "type": "function_call", "status": "in_progress",
                "arguments": "", "call_id": call_id, "name": name}
        self._calls[key] = item
        return self._add(item)

    def arguments(self, key: int, delta: str) -> bytes:
        item = self._calls.get(key)
        if item is None or not delta:
            return b""
        item["arguments"] += delta
        return self._event("response.function_call_arguments.delta", {
            "item_id": item["id"], "output_index": self.output.index(item), "delta": delta})

    def close_item(self) -> bytes:
        """The done events of the open item, if any."""
        item, self._open = self._open, None
        if item is None:
            return b""
        index = self.output.index(item)
        out = b""
        if item["type"] == "message":
            part = item["content"][0]
            where = {"item_id": item["id"], "output_index": index, "content_index": 0}
            out += self._event("response.output_text.done",
                               {**where, "text": part["text"], "logprobs": []})
            out += self._event("response.content_part.done", {**where, "part": dict(part)})
        elif item["type"] == "function_call":
            out += self._event("response.function_call_arguments.done", {
                "item_id": item["id"], "output_index": index, "name": item["name"],
                "arguments": item["arguments"]})
        if "status" in item:
            item["status"] = "completed"
        return out + self._event("response.output_item.done",
                                 {"output_index": index, "item": dict(item)})

    def finish(self, usage: JSON | None, incomplete: str | None = None) -> bytes:
        """Close what is open and end with `response.completed` (or `response.incomplete`
        with its reason, such as `max_output_tokens`), carrying the whole response."""
        out = self.close_item()
        response = self.response
        response["usage"] = usage
        if incomplete is None:
            response["status"] = "completed"
            return out + self._event("response.completed", {"response": self._snapshot()})
        response["status"] = "incomplete"
        response["incomplete_details"] = {"reason": incomplete}
        return out + self._event("response.incomplete", {"response": self._snapshot()})

    def fail(self, code: str, message: str) -> bytes:
        """End with `response.failed` (an upstream error mid-stream)."""
        response = self.response
        response["status"] = "failed"
        response["error"] = {"code": code, "message": message}
        return self._event("response.failed", {"response": self._snapshot()})


def skeleton(body: JSON, model: str, created_at: int, response_id: str | None = None) -> JSON:
    """A `response` object for `body`'s request before any output: what the API echoes of
    the request (instructions, tools, text format, ...) and the fields the SDK reads."""
    text = body.get("text")
    reasoning = body.get("reasoning")
    return {
        "id": response_id or ident("resp"),
        "object": "response",
        "created_at": created_at,
        "status": "in_progress",
        "background": bool(body.get("background", False)),
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": model,
        "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": reasoning if isinstance(reasoning, dict) else {"effort": None,
                                                                      "summary": None},
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": text if isinstance(text, dict) else {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools", []),
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": None,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def usage(input_tokens: int, output_tokens: int, cached: int = 0, reasoning: int = 0,
          cache_write: int = 0) -> JSON:
    """A `usage` object as the API reports it."""
    return {"input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": cache_write},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": input_tokens + output_tokens}

"""The simulator's answers in the Responses API's format (`/responses`): a whole
`response` object or its typed event stream, a function call when the request requires
a tool, JSON matching the schema when `text.format` asks for one, reasoning tokens (and
a reasoning item) when `reasoning.effort` is set, and the stored-response routes
(`GET`/`DELETE /responses/{id}`, `POST /responses/{id}/cancel`, `GET .../input_items`)
over the responses it made, so the SDK's whole Responses surface works with no key.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Final

import orjson

from gateway.dialects.openai_responses.events import ResponseEvents, ident, skeleton, usage
from gateway.dialects.openai_responses.wire import estimate_prompt_tokens

JSON = dict[str, Any]
_STORED: Final = 1024  # responses kept for GET, oldest forgotten
# Reasoning tokens a simulated reasoning model spends at each effort.
_REASONING: Final = {"minimal": 0, "low": 64, "medium": 192, "high": 512}


def forced_call(body: Mapping[str, Any]) -> JSON | None:
    """The function call for a request that requires a tool (`tool_choice` "required" or a
    named function), its arguments filled in from the function's required parameters."""
    choice = body.get("tool_choice")
    tools = [t for t in body.get("tools") or () if isinstance(t, dict) and t.get("type") == "function"]
    if not tools or not (choice == "required" or isinstance(choice, dict)):
        return None
    tool = tools[0]
    if isinstance(choice, dict):
        tool = next((t for t in tools if t.get("name") == choice.get("name")), tool)
    return {"id": ident("fc"), "type": "function_call", "status": "completed",
            "arguments": orjson.dumps(sample(tool.get("parameters"))).decode(),
            "call_id": ident("call"), "name": str(tool.get("name", ""))}


def sample(schema: Any) -> Any:
    """A value that satisfies a (simple) JSON schema: every property of an object."""
    if not isinstance(schema, dict):
        return "simulated"
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties")
        properties = properties if isinstance(properties, dict) else {}
        return {str(name): sample(value) for name, value in properties.items()}
    if kind == "array":
        return [sample(schema.get("items"))]
    return {"integer": 1, "number": 1.5, "boolean": True, "null": None}.get(str(kind), "simulated")


def _structured(body: Mapping[str, Any]) -> str | None:
    """The answer's text when `text.format` asks for JSON."""
    text = body.get("text")
    fmt = text.get("format") if isinstance(text, dict) else None
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_schema":
        return orjson.dumps(sample(fmt.get("schema"))).decode()
    if fmt.get("type") == "json_object":
        return '{"answer": "simulated"}'
    return None


def reasoning_tokens(body: Mapping[str, Any]) -> int:
    reasoning = body.get("reasoning")
    effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
    return _REASONING.get(str(effort), 0) if effort else 0


class ResponsesSimulator:
    """Answers one simulated provider's Responses calls and keeps what it stored."""

    def __init__(self) -> None:
        self._stored: OrderedDict[str, tuple[JSON, Any]] = OrderedDict()

    def plan(self, body: Mapping[str, Any], words: list[str], cut: bool
             ) -> tuple[JSON, list[str], JSON | None, int]:
        """The response skeleton, the text pieces, the function call and reasoning tokens."""
        model = str(body.get("model", ""))
        response = skeleton(dict(body), model, int(time.time()))
        call = forced_call(body)
        structured = _structured(body)
        pieces = [] if call is not None else (
            [structured] if structured is not None
            else [w if i == 0 else " " + w for i, w in enumerate(words)])
        if cut and call is None and structured is None:
            response["incomplete_details"] = {"reason": "max_output_tokens"}
        return response, pieces, call, reasoning_tokens(body)

    def answer(self, body: Mapping[str, Any], words: list[str], cut: bool) -> JSON:
        """A whole `response` object."""
        response, pieces, call, reasoning = self.plan(body, words, cut)
        events = ResponseEvents(response)
        events.start()
        if reasoning:
            events.reasoning()
        for piece in pieces:
            events.text(piece)
        if call is not None:
            events.output.append(call)
        incomplete = response["incomplete_details"]
        events.finish(self._usage(body, len(words), reasoning),
                      incomplete["reason"] if incomplete else None)
        self._keep(response, body.get("input"), body)
        return response

    def stream(self, body: Mapping[str, Any], words: list[str], cut: bool) -> list[bytes]:
        """The same answer as the API streams it, one list entry per content event."""
        response, pieces, call, reasoning = self.plan(body, words, cut)
        events = ResponseEvents(response)
        chunks = [events.start()]
        if reasoning:
            chunks.append(events.reasoning())
        chunks.extend(events.text(piece) for piece in pieces)
        if call is not None:
            chunks.append(events.function_call(0, call["call_id"], call["name"]))
            chunks.append(events.arguments(0, call["arguments"]))
        incomplete = response["incomplete_details"]
        chunks.append(events.finish(self._usage(body, len(words), reasoning),
                                    incomplete["reason"] if incomplete else None))
        self._keep(response, body.get("input"), body)
        return chunks

    @staticmethod
    def _usage(body: Mapping[str, Any], words: int, reasoning: int) -> JSON:
        prompt = estimate_prompt_tokens(body)
        cached = (prompt // 128) * 64 if prompt >= 1024 else 0
        return usage(prompt, words + reasoning, cached, reasoning)

    def _keep(self, response: JSON, given: Any, body: Mapping[str, Any]) -> None:
        if body.get("store") is False:
            return
        self._stored[response["id"]] = (response, given)
        if len(self._stored) > _STORED:
            self._stored.popitem(last=False)

    def stored(self, method: str, path: str) -> tuple[int, bytes]:
        """Status and body of a stored-response route (`path` below `/responses/`)."""
        response_id, _, action = path.partition("/")
        found = self._stored.get(response_id)
        if found is None:
            return 404, _not_found(response_id)
        response, given = found
        if method == "DELETE" and not action:
            del self._stored[response_id]
            return 200, orjson.dumps({"id": response_id, "object": "response", "deleted": True})
        if method == "POST" and action == "cancel":
            if not response.get("background"):
                return 400, orjson.dumps({"error": {
                    "message": "Only responses created with background=true can be cancelled.",
                    "type": "invalid_request_error", "param": None, "code": None}})
            return 200, orjson.dumps(response)
        if method == "GET" and action == "input_items":
            items = [{"id": ident("msg"), "type": "message", "role": "user", "status": "completed",
                      "content": [{"type": "input_text", "text": given}]}] \
                if isinstance(given, str) else list(given or [])
            return 200, orjson.dumps({"object": "list", "data": items, "has_more": False,
                                      "first_id": None, "last_id": None})
        if method == "GET" and not action:
            return 200, orjson.dumps(response)
        return 404, _not_found(response_id)


def _not_found(response_id: str) -> bytes:
    return orjson.dumps({"error": {
        "message": f"Response with id '{response_id[:100]}' not found.",
        "type": "invalid_request_error", "param": None, "code": None}})

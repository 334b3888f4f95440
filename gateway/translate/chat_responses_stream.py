"""Chat completion chunks <-> the Responses API's typed events, event by event.

Each translator is fed the upstream's whole SSE events in order and returns the bytes
to send the client for each. Towards a Responses client the full typed sequence is
written (`ResponseEvents`: created, in_progress, each item's added/delta/done events
with their output indexes, completed) with sequence numbers counted from 0; the final
`response.completed` waits for the chat stream's usage chunk, which comes just before
its `[DONE]`.
"""

from __future__ import annotations

from typing import Any

from gateway.dialects.openai_responses import wire
from gateway.dialects.openai_responses.events import ResponseEvents, skeleton
from gateway.sse import DONE
from gateway.translate.chat_chunks import ChatChunks
from gateway.translate.chat_responses import (
    INCOMPLETE_BY_FINISH,
    chat_finish_reason,
    chat_usage_to_responses,
    responses_usage_to_chat,
)
from gateway.translate.payload import PayloadFed

JSON = dict[str, Any]



class ChatToResponsesStream(PayloadFed):
    """Chat completion chunks in, Responses events out (a Responses client of a chat-only
    model)."""

    def __init__(self, request: JSON, model: str | None = None) -> None:
        self.request = request
        self.model = model
        self.done = False
        self._events: ResponseEvents | None = None
        self._finish: str | None = None
        self._usage: JSON | None = None

    def feed_payload(self, payload: JSON | bytes | None) -> bytes:
        """One chunk as read (`event_payload`), or as a `ChatChunks` hands it over."""
        if self.done or payload is None:
            return b""
        if payload == DONE:
            return self.close()
        if not isinstance(payload, dict):
            return b""
        if "error" in payload and not payload.get("choices"):
            return self._error(payload)
        out = self._start(payload)
        events = self._events
        assert events is not None
        if payload.get("usage") is not None:
            self._usage = chat_usage_to_responses(payload["usage"])
        for choice in payload.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                out += self._delta(events, delta)
            if choice.get("finish_reason"):
                self._finish = str(choice["finish_reason"])
        return out

    def _start(self, payload: JSON) -> bytes:
        if self._events is not None:
            return b""
        created = payload.get("created")
        response = skeleton(self.request, str(self.model or payload.get("model") or ""),
                            created if isinstance(created, int) else 0,
                            response_id=f"resp_{payload.get('id') or ''}")
        self._events = ResponseEvents(response)
        return self._events.start()

    def _delta(self, events: ResponseEvents, delta: JSON) -> bytes:
        out = b""
        text = delta.get("content")
        if isinstance(text, str) and text:
            out += events.text(text)
        for call in delta.get("tool_calls") or ():
            if not isinstance(call, dict):
                continue
            index = call.get("index", 0)
            function = call.get("function")
            function = function if isinstance(function, dict) else {}
            if call.get("id") or function.get("name"):
                out += events.function_call(index, str(call.get("id") or ""),
                                            str(function.get("name") or ""))
            arguments = function.get("arguments")
            if isinstance(arguments, str) and arguments:
                out += events.arguments(index, arguments)
        return out

    def close(self) -> bytes:
        """The end: each open item's done events and `response.completed` (or incomplete)."""
        if self.done:
            return b""
        self.done = True
        start = self._start({})
        assert self._events is not None
        return start + self._events.finish(self._usage, INCOMPLETE_BY_FINISH.get(
            self._finish or ""))

    def _error(self, payload: JSON) -> bytes:
        self.done = True
        error = payload.get("error")
        error = error if isinstance(error, dict) else {}
        return self.stream_error(str(error.get("message") or "the upstream failed"),
                                 str(error.get("code") or error.get("type") or "upstream_error"))

    def stream_error(self, message: str, code: str) -> bytes:
        """An `error` event numbered after the last event written (dialects.base.NumbersErrors)."""
        return wire.error_event(message, code, 0 if self._events is None else self._events.sequence)


class ResponsesToChatStream(ChatChunks):
    """Responses events in, chat completion chunks out (a chat client of a Responses-only
    model). The usage chunk is sent only when the client asked for it."""

    def __init__(self, *, include_usage: bool, model: str | None = None) -> None:
        super().__init__(include_usage=include_usage, model=model, created=0)
        self._tools: dict[int, int] = {}  # output index -> chat tool call index

    def feed_payload(self, payload: JSON | bytes | None) -> bytes:
        """One event as read (`event_payload`)."""
        if self.done or not isinstance(payload, dict):
            return b""
        kind = payload.get("type")
        if kind == wire.TEXT_DELTA:
            return self._chunk({"content": str(payload.get("delta", ""))})
        if kind == wire.ARGUMENTS_DELTA:
            position = self._tools.get(int(payload.get("output_index", -1)))
            if position is None:
                return b""
            return self._chunk({"tool_calls": [{"index": position, "function": {
                "arguments": str(payload.get("delta", ""))}}]})
        if kind == "response.output_item.added":
            return self._item(payload)
        if kind == wire.CREATED:
            response = payload.get("response")
            response = response if isinstance(response, dict) else {}
            self.ident = f"chatcmpl-{str(response.get('id', ''))[5:]}"
            self.created = int(response.get("created_at") or 0)
            self.model = self.model or response.get("model")
            return self._chunk({"role": "assistant", "content": ""})
        if kind in (wire.COMPLETED, wire.INCOMPLETE):
            return self._end(payload.get("response"))
        if kind in (wire.FAILED, wire.ERROR):
            return self._error(payload)
        return b""

    def _item(self, payload: JSON) -> bytes:
        item = payload.get("item")
        if not isinstance(item, dict) or item.get("type") != "function_call":
            return b""
        position = self._tools[int(payload.get("output_index", -1))] = len(self._tools)
        return self._chunk({"tool_calls": [{"index": position, "id": item.get("call_id"),
                                            "type": "function", "function": {
                                                "name": item.get("name"), "arguments": ""}}]})

    def _end(self, response: Any) -> bytes:
        self.done = True
        response = response if isinstance(response, dict) else {}
        out = self._chunk({}, chat_finish_reason(response))
        return out + self._close(responses_usage_to_chat(response.get("usage")))

    def _error(self, payload: JSON) -> bytes:
        response = payload.get("response")
        error = response.get("error") if isinstance(response, dict) else payload
        error = error if isinstance(error, dict) else {}
        return self._fail(str(error.get("message") or "the upstream failed"),
                           "upstream_error", str(error.get("code") or "upstream_error"))


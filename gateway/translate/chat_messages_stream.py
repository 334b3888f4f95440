"""OpenAI chat completion chunks <-> Anthropic Messages stream events, event by event.

Each translator is fed the upstream's whole SSE events in order (as
`sse.SSESplitter` yields them) and returns the bytes to send the client for each,
often none (a ping, a block's end) and sometimes several events. Nothing is held
back beyond what the target format needs: an OpenAI stream's usage comes in its
last chunk, so the Messages `message_delta` that carries it is sent at `[DONE]`.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.sse import DONE
from gateway.translate.chat_chunks import ChatChunks
from gateway.translate.chat_messages import (
    chat_usage,
    finish_reason,
    messages_usage,
    stop_reason,
)
from gateway.translate.payload import PayloadFed

JSON = dict[str, Any]



class MessagesToChatStream(ChatChunks):
    """Anthropic Messages events in, chat completion chunks out (an OpenAI client of an
    Anthropic model). The usage chunk is sent only when the client asked for it."""

    def __init__(self, *, include_usage: bool, model: str | None = None,
                 created: int | None = None) -> None:
        super().__init__(include_usage=include_usage, model=model, created=created)
        self._tools: dict[int, int] = {}  # Messages block index -> chat tool call index
        self._start_usage: Any = None
        self._usage: JSON = {}

    def feed_payload(self, payload: JSON | bytes | None) -> bytes:
        """One event as read (`event_payload`)."""
        if not isinstance(payload, dict) or self.done:
            return b""
        kind = payload.get("type")
        if kind == "content_block_delta":
            return self._delta(payload)
        if kind == "message_start":
            message = payload.get("message")
            message = message if isinstance(message, dict) else {}
            self.ident = str(message.get("id", ""))
            self.model = self.model or message.get("model")
            self._start_usage = message.get("usage")
            return self._chunk({"role": "assistant", "content": ""})
        if kind == "content_block_start":
            return self._block_start(payload)
        if kind == "message_delta":
            delta = payload.get("delta")
            usage = payload.get("usage")
            if isinstance(usage, dict):
                self._usage.update({k: v for k, v in usage.items() if v is not None})
            reason = finish_reason(delta.get("stop_reason") if isinstance(delta, dict) else None)
            return self._chunk({}, reason or "stop")
        if kind == "message_stop":
            return self.close()
        if kind == "error":
            error = payload.get("error")
            error = error if isinstance(error, dict) else {}
            code = error.get("type", "api_error")
            return self._fail(error.get("message", ""), code, code)
        return b""  # ping, content_block_stop

    def close(self) -> bytes:
        """The end of the chat stream: the usage chunk if asked for, then `[DONE]`."""
        if self.done:
            return b""
        usage = dict(self._start_usage) if isinstance(self._start_usage, dict) else {}
        usage.update(self._usage)
        return self._close(chat_usage(usage))

    def _block_start(self, payload: JSON) -> bytes:
        block = payload.get("content_block")
        index = payload.get("index")
        if not isinstance(block, dict) or not isinstance(index, int):
            return b""
        if block.get("type") == "text":
            text = block.get("text")
            return self._chunk({"content": text}) if isinstance(text, str) and text else b""
        if block.get("type") != "tool_use":
            return b""  # thinking and server tool blocks have no place in chat
        position = self._tools[index] = len(self._tools)
        call = {"index": position, "id": block.get("id"), "type": "function",
                "function": {"name": block.get("name"), "arguments": ""}}
        return self._chunk({"tool_calls": [call]})

    def _delta(self, payload: JSON) -> bytes:
        delta = payload.get("delta")
        if not isinstance(delta, dict):
            return b""
        kind = delta.get("type")
        if kind == "text_delta":
            return self._chunk({"content": delta.get("text", "")})
        if kind == "input_json_delta":
            position = self._tools.get(payload.get("index", -1))
            if position is None:
                return b""
            call = {"index": position, "function": {"arguments": delta.get("partial_json", "")}}
            return self._chunk({"tool_calls": [call]})
        return b""  # thinking, signature and citations deltas


def messages_event(kind: str, payload: JSON) -> bytes:
    """One Messages SSE event: its name on the `event:` line and as the data's `type`."""
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **payload}) + b"\n\n"


class ChatToMessagesStream(PayloadFed):
    """Chat completion chunks in, Anthropic Messages events out (a Messages client of an
    OpenAI-format model). The upstream must be asked for usage (`include_usage`)."""

    def __init__(self, *, model: str | None = None) -> None:
        self.model = model
        self.done = False
        self._started = False
        self._block = -1  # index of the open content block, -1 when none is open
        self._block_kind = ""
        self._tools: dict[int, int] = {}  # chat tool call index -> Messages block index
        self._blocks = 0
        self._stop: str | None = None
        self._usage: Any = None

    def feed_payload(self, payload: JSON | bytes | None) -> bytes:
        """One chunk as read (`event_payload`), or as a `ChatChunks` hands it over."""
        if self.done or payload is None:
            return b""
        if not isinstance(payload, dict):
            return self.close() if payload == DONE else b""
        if "error" in payload and not payload.get("choices"):
            return self._error(payload.get("error"))
        out = b"" if self._started else self._start(payload)
        if payload.get("usage"):
            self._usage = payload["usage"]
        choices = payload.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            out += self._choice(choices[0])
        return out

    def close(self) -> bytes:
        """The end of the Messages stream: the open block's stop, `message_delta` with the
        stop reason and usage, `message_stop`."""
        if self.done:
            return b""
        self.done = True
        out = b"" if self._started else self._start({})
        out += self._stop_block()
        usage = messages_usage(self._usage)
        out += messages_event("message_delta", {
            "delta": {"stop_reason": self._stop or "end_turn", "stop_sequence": None},
            "usage": usage})
        return out + messages_event("message_stop", {})

    def _start(self, payload: JSON) -> bytes:
        self._started = True
        self.model = self.model or payload.get("model")
        message: JSON = {"id": payload.get("id") or "msg_gateway", "type": "message",
                   "role": "assistant", "model": self.model, "content": [],
                   "stop_reason": None, "stop_sequence": None,
                   "usage": {"input_tokens": 0, "output_tokens": 0}}
        return messages_event("message_start", {"message": message})

    def _choice(self, choice: JSON) -> bytes:
        out = b""
        delta = choice.get("delta")
        if isinstance(delta, dict):
            text = delta.get("content")
            if isinstance(text, str) and text:
                if self._block_kind != "text":
                    out += self._open({"type": "text", "text": ""}, "text")
                out += messages_event("content_block_delta", {
                    "index": self._block, "delta": {"type": "text_delta", "text": text}})
            for call in delta.get("tool_calls") or ():
                if isinstance(call, dict):
                    out += self._tool_call(call)
        reason = stop_reason(choice.get("finish_reason"))
        if reason is not None:
            self._stop = reason
            out += self._stop_block()
        return out

    def _tool_call(self, call: JSON) -> bytes:
        out = b""
        position = call.get("index", 0)
        function = call.get("function")
        function = function if isinstance(function, dict) else {}
        if position not in self._tools:
            block: JSON = {"type": "tool_use", "id": call.get("id"), "name": function.get("name"),
                     "input": {}}
            out += self._open(block, "tool_use")
            self._tools[position] = self._block
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            out += messages_event("content_block_delta", {
                "index": self._tools[position],
                "delta": {"type": "input_json_delta", "partial_json": arguments}})
        return out

    def _open(self, block: JSON, kind: str) -> bytes:
        out = self._stop_block()
        self._block = self._blocks
        self._blocks += 1
        self._block_kind = kind
        return out + messages_event("content_block_start",
                                    {"index": self._block, "content_block": block})

    def _stop_block(self) -> bytes:
        if self._block < 0:
            return b""
        index, self._block, self._block_kind = self._block, -1, ""
        return messages_event("content_block_stop", {"index": index})

    def _error(self, error: Any) -> bytes:
        self.done = True
        error = error if isinstance(error, dict) else {}
        message = error.get("message")
        body = {"error": {"type": "api_error",
                          "message": message if isinstance(message, str) else ""}}
        return messages_event("error", body)

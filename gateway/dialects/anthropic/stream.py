"""Reads a Messages stream event by event, as it is relayed: usage, response
attributes, the stop reason, an `error` event and the end (`message_stop`).

Anthropic names each event (`event: content_block_delta`) and repeats the name as
the data's `type`. Only `message_start`, `message_delta` and `error` carry what the
gateway needs, so content deltas, the bulk of a stream, are recognised by their name
and not parsed (unless content capture asks for their text).
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from gateway.dialects.anthropic.answer import merged_usage, response_attributes
from gateway.sse import event_data
from gateway.telemetry import names as n
from gateway.usage import Usage

# What one event was, for the relay's timing and its end of stream.
FIRST: Final = "first"  # message_start: the answer has begun
CHUNK: Final = "chunk"  # a content delta: output arriving
DONE: Final = "done"  # message_stop: the stream is complete
ERROR: Final = "error"  # an `error` event: the upstream failed mid-stream
MALFORMED: Final = "malformed"  # an event whose JSON does not parse
OTHER: Final = "other"  # block start/stop, message_delta, ping, comments

MESSAGE_START: Final = b"message_start"
MESSAGE_DELTA: Final = b"message_delta"
MESSAGE_STOP: Final = b"message_stop"
BLOCK_START: Final = b"content_block_start"
BLOCK_DELTA: Final = b"content_block_delta"
ERROR_EVENT: Final = b"error"


def event_name(event: bytes) -> bytes | None:
    """The name of one SSE event (its `event:` line), or None when it has none."""
    if event.startswith(b"event:"):
        end = event.find(b"\n")
        name = event[6:end] if end >= 0 else event[6:]
        return name.strip()
    for line in event.splitlines():
        if line.startswith(b"event:"):
            return line[6:].strip()
    return None


class MessagesStreamWatcher:
    """Feed it each whole event (as `sse.SSESplitter` yields them) in order."""

    __slots__ = ("_blocks", "_delta_usage", "_start_usage", "capture", "chunks", "error",
                 "finished", "parsed", "parsed_event", "response_attributes", "response_model",
                 "stop_reason")

    def __init__(self, *, capture: bool = False) -> None:
        self.capture = capture
        self.chunks = 0  # content deltas seen: the output estimate when usage never came
        self.finished = False
        self.error: tuple[str, str] | None = None  # (type, message) of an `error` event
        self.stop_reason: str | None = None
        self.response_model: str | None = None
        self.response_attributes: dict[str, Any] = {}
        # Content capture: each block by index, as content_block_start opened it, with
        # its deltas appended (text, thinking, and a tool call's input as JSON text).
        self._blocks: dict[int, dict[str, Any]] = {}
        self._start_usage: Any = None
        self._delta_usage: Any = None
        # The last event parsed and its JSON object, unchanged (dialects.base.SharesParse).
        self.parsed_event = b""
        self.parsed: dict[str, Any] | None = None

    @property
    def usage(self) -> Usage | None:
        """The usage reported so far: message_start's, updated by message_delta's."""
        return merged_usage(self._start_usage, self._delta_usage)

    def usage_or_estimate(self, prompt_estimate: int) -> Usage:
        """The reported usage, else an estimate from the prompt and the deltas seen (a
        client that disconnected before message_delta is still charged for its output)."""
        usage = self.usage
        if usage is None:
            return Usage(input=prompt_estimate, output=self.chunks, estimated=True)
        if self._delta_usage is None and self.chunks > usage.output:
            # message_start's output_tokens is a placeholder (1 or so): the deltas say more.
            return Usage(usage.input, self.chunks, usage.cache_read, usage.cache_creation,
                         usage.reasoning, True, usage.cache_creation_1h)
        return usage

    def feed(self, event: bytes) -> str:
        name = event_name(event)
        if name == BLOCK_DELTA:
            self.chunks += 1
            if self.capture:
                self._capture(event)
            return CHUNK
        if name == BLOCK_START and self.capture:
            self._capture(event)
            return OTHER
        if name in (MESSAGE_START, MESSAGE_DELTA, MESSAGE_STOP, ERROR_EVENT) or name is None:
            data = event_data(event)
            if data is None:
                return OTHER
            try:
                payload = orjson.loads(data)
            except orjson.JSONDecodeError:
                return MALFORMED
            if not isinstance(payload, dict):
                return OTHER
            self.parsed_event = event
            self.parsed = payload
            return self._read(payload)
        return OTHER

    def _read(self, payload: dict[str, Any]) -> str:
        kind = payload.get("type")
        if kind == "message_start":
            message = payload.get("message")
            if isinstance(message, dict):
                self._start_usage = message.get("usage")
                self.response_attributes = response_attributes(message)
                model = message.get("model")
                self.response_model = model if isinstance(model, str) else None
            return FIRST
        if kind == "message_delta":
            self._delta_usage = payload.get("usage")
            delta = payload.get("delta")
            reason = delta.get("stop_reason") if isinstance(delta, dict) else None
            if isinstance(reason, str):
                self.stop_reason = reason
                self.response_attributes[n.GEN_AI_RESPONSE_FINISH_REASONS] = [reason]
            return OTHER
        if kind == "message_stop":
            self.finished = True
            return DONE
        if kind == "error":
            error = payload.get("error")
            error = error if isinstance(error, dict) else {}
            kind_ = error.get("type")
            message = error.get("message")
            self.error = (kind_ if isinstance(kind_, str) else "api_error",
                          message if isinstance(message, str) else "")
            return ERROR
        if kind == "content_block_delta":  # an event without its `event:` line
            self.chunks += 1
            return CHUNK
        return OTHER

    def _capture(self, event: bytes) -> None:
        data = event_data(event)
        try:
            payload = orjson.loads(data) if data is not None else None
        except orjson.JSONDecodeError:
            return
        if not isinstance(payload, dict):
            return
        self.parsed_event = event
        self.parsed = payload
        if not isinstance(payload.get("index"), int):
            return
        index: int = payload["index"]
        block = payload.get("content_block")
        if isinstance(block, dict):  # content_block_start
            self._blocks[index] = dict(block)
            return
        delta = payload.get("delta")
        if not isinstance(delta, dict):
            return
        opened = self._blocks.setdefault(index, {"type": "text", "text": ""})
        for field, key in _DELTA_FIELDS:
            piece = delta.get(field)
            if isinstance(piece, str):
                opened[key] = str(opened.get(key) or "") + piece

    def captured_blocks(self) -> list[dict[str, Any]]:
        """The content blocks captured so far, in index order, as a JSON answer has them
        (a tool call's streamed input parsed, or kept as text when it is cut short)."""
        blocks = []
        for index in sorted(self._blocks):
            block = self._blocks[index]
            partial = block.pop(_PARTIAL, None)
            if partial is not None:
                try:
                    block["input"] = orjson.loads(partial)
                except orjson.JSONDecodeError:
                    block["input"] = partial
            blocks.append(block)
        return blocks


_PARTIAL: Final = "_partial_json"
# Delta field -> the block key it extends (text_delta, thinking_delta, input_json_delta).
_DELTA_FIELDS: Final = (("text", "text"), ("thinking", "thinking"), ("partial_json", _PARTIAL))

"""How a stream translator writes chat completion chunks, whatever it reads (Messages
events, Responses events, Gemini chunks): one delta a chunk, then the usage chunk (when
the client asked for it) and `[DONE]`, or an error chunk that ends the stream."""

from __future__ import annotations

import time
from typing import Any

import orjson

JSON = dict[str, Any]
DONE_EVENT = b"data: [DONE]\n\n"


class ChatChunks:
    """The chat side of a translator into chat completions; its subclass fills in `ident`
    and `model` from the upstream's first event (unless renamed) and calls `_chunk`,
    `_close` and `_fail`."""

    def __init__(self, *, include_usage: bool, model: str | None = None,
                 created: int | None = None) -> None:
        self.include_usage = include_usage
        self.model = model
        self.created = int(time.time()) if created is None else created
        self.ident = ""
        self.done = False

    def _base(self, choices: list[JSON]) -> JSON:
        return {"id": self.ident, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model, "system_fingerprint": None, "choices": choices}

    def _chunk(self, delta: JSON, finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return b"data: " + orjson.dumps(self._base([choice])) + b"\n\n"

    def _close(self, usage: JSON | None) -> bytes:
        """The end: the usage chunk when asked for (and known), then `[DONE]`."""
        self.done = True
        if not self.include_usage or usage is None:
            return DONE_EVENT
        chunk = self._base([])
        chunk["usage"] = usage
        return b"data: " + orjson.dumps(chunk) + b"\n\n" + DONE_EVENT

    def _fail(self, message: Any, kind: Any, code: Any) -> bytes:
        """An error chunk in OpenAI's shape, which the SDK raises; the stream ends."""
        self.done = True
        body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
        return b"data: " + orjson.dumps(body) + b"\n\n"

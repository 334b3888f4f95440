"""How a stream translator writes chat completion chunks, whatever it reads (Messages
events, Responses events, Gemini chunks): one delta a chunk, then the usage chunk (when
the client asked for it) and `[DONE]`, or an error chunk that ends the stream."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from gateway.sse import DONE
from gateway.translate.payload import PayloadFed

JSON = dict[str, Any]
DONE_EVENT = b"data: [DONE]\n\n"


class ChatChunks(PayloadFed):
    """The chat side of a translator into chat completions; its subclass fills in `ident`
    and `model` from the upstream's first event (unless renamed) and calls `_chunk`,
    `_close` and `_fail`. With a `sink` (a translator out of chat, `feed_payload`), each
    chunk goes to it as the object it is, never written out and read back, and what it
    makes of the chunks is returned instead."""

    def __init__(self, *, include_usage: bool, model: str | None = None,
                 created: int | None = None) -> None:
        self.include_usage = include_usage
        self.model = model
        self.created = int(time.time()) if created is None else created
        self.ident = ""
        self.done = False
        self.sink: Callable[[JSON | bytes | None], bytes] | None = None

    def _base(self, choices: list[JSON]) -> JSON:
        return {"id": self.ident, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model, "system_fingerprint": None, "choices": choices}

    def _emit(self, payload: JSON) -> bytes:
        if self.sink is not None:
            return self.sink(payload)
        return b"data: " + orjson.dumps(payload) + b"\n\n"

    def _chunk(self, delta: JSON, finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return self._emit(self._base([choice]))

    def _close(self, usage: JSON | None) -> bytes:
        """The end: the usage chunk when asked for (and known), then `[DONE]`."""
        self.done = True
        out = b""
        if self.include_usage and usage is not None:
            chunk = self._base([])
            chunk["usage"] = usage
            out = self._emit(chunk)
        return out + (DONE_EVENT if self.sink is None else self.sink(DONE))

    def _fail(self, message: Any, kind: Any, code: Any) -> bytes:
        """An error chunk in OpenAI's shape, which the SDK raises; the stream ends."""
        self.done = True
        return self._emit({"error": {"message": message, "type": kind, "param": None,
                                     "code": code}})

"""Streams between OpenAI chat completions and Gemini, event by event, never buffered
whole: `GeminiToChatStream` (an OpenAI client of a Gemini model) and
`ChatToGeminiStream` (a Gemini client of an OpenAI-format model).

A Gemini stream has no end marker: the chunk with a finish reason ends it, with the final
`usageMetadata`. A chat stream ends with `[DONE]`, its usage in a chunk of its own
(asked for with `stream_options.include_usage`), after the finish reason.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.dialects.gemini.errors import error_bytes
from gateway.translate.chat_chunks import ChatChunks
from gateway.translate.chat_gemini import (
    call_id,
    candidate_output,
    chat_usage,
    finish_reason,
    gemini_finish,
    usage_metadata,
)
from gateway.translate.chat_messages import tool_input
from gateway.translate.payload import PayloadFed

JSON = dict[str, Any]


class GeminiToChatStream(ChatChunks):
    """Gemini chunks in, chat completion chunks out. The usage chunk is sent only when the
    client asked for it."""

    def __init__(self, *, include_usage: bool, model: str | None = None,
                 created: int | None = None) -> None:
        super().__init__(include_usage=include_usage, model=model, created=created)
        self._started = False
        self._calls = 0

    def feed_payload(self, payload: JSON | bytes | None) -> bytes:
        """One chunk as read (`event_payload`)."""
        if not isinstance(payload, dict) or self.done:
            return b""
        error = payload.get("error")
        if isinstance(error, dict):
            return self._fail(error.get("message", ""), "upstream_error",
                               error.get("status", "INTERNAL"))
        out: list[bytes] = []
        if not self._started:
            self._started = True
            self.ident = "chatcmpl-" + str(payload.get("responseId", ""))
            self.model = self.model or payload.get("modelVersion")
            out.append(self._chunk({"role": "assistant", "content": ""}))
        candidates = payload.get("candidates")
        candidate = candidates[0] if isinstance(candidates, list) and candidates else {}
        if isinstance(candidate, dict):
            text, calls = candidate_output(candidate)
            if text:
                out.append(self._chunk({"content": text}))
            for call in calls:
                out.append(self._chunk({"tool_calls": [{
                    "index": self._calls, "id": call_id(), "type": "function",
                    "function": {"name": call.get("name", ""),
                                 "arguments": orjson.dumps(call.get("args") or {}).decode()}}]}))
                self._calls += 1
            reason = finish_reason(candidate.get("finishReason"), self._calls > 0)
            if reason is not None:
                out.append(self._chunk({}, reason))
                out.append(self._close(chat_usage(payload.get("usageMetadata"))))
        feedback = payload.get("promptFeedback")
        if not self.done and isinstance(feedback, dict) and feedback.get("blockReason"):
            out.append(self._chunk({}, "content_filter"))
            out.append(self._close(chat_usage(payload.get("usageMetadata"))))
        return b"".join(out)


class ChatToGeminiStream(PayloadFed):
    """Chat completion chunks in, Gemini chunks out: text as it arrives, function calls
    whole once their arguments are complete, and the finish reason with the usage in the
    last chunk (held until the usage chunk or `[DONE]`)."""

    def __init__(self, *, model: str | None = None) -> None:
        self.model = model
        self.done = False
        self.ident = ""
        self._calls: dict[int, JSON] = {}
        self._finish: str | None = None
        self._usage: Any = None

    def feed_payload(self, payload: JSON | bytes | None) -> bytes:
        """One chunk as read (`event_payload`), or as a `ChatChunks` hands it over."""
        if self.done or payload is None:
            return b""
        if not isinstance(payload, dict):  # [DONE]
            return self._close() if self._finish is not None else b""
        error = payload.get("error")
        if isinstance(error, dict) and not payload.get("choices"):
            self.done = True
            code = error.get("code")
            status = code if isinstance(code, int) else 500
            return b"data: " + error_bytes(status, str(error.get("message", ""))) + b"\n\n"
        self.ident = self.ident or str(payload.get("id", ""))
        self.model = self.model or payload.get("model")
        if payload.get("usage") is not None:
            self._usage = payload["usage"]
        out = b""
        for choice in payload.get("choices") or ():
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                out += self._choice(choice)
        if self._finish is not None and self._usage is not None:
            out += self._close()
        return out

    def _choice(self, choice: JSON) -> bytes:
        delta = choice.get("delta")
        delta = delta if isinstance(delta, dict) else {}
        out = b""
        text = delta.get("content")
        if isinstance(text, str) and text:
            out = self._chunk([{"text": text}])
        for call in delta.get("tool_calls") or ():
            if not isinstance(call, dict):
                continue
            held = self._calls.setdefault(int(call.get("index", 0)), {"name": "", "arguments": ""})
            function = call.get("function")
            if isinstance(function, dict):
                held["name"] += str(function.get("name") or "")
                held["arguments"] += str(function.get("arguments") or "")
        if isinstance(choice.get("finish_reason"), str):
            self._finish = gemini_finish(choice["finish_reason"])
        return out

    def _close(self) -> bytes:
        """The last chunk: held function calls, the finish reason and the usage."""
        self.done = True
        parts: list[JSON] = [{"functionCall": {"name": c["name"], "args": _args(c["arguments"])}}
                             for _, c in sorted(self._calls.items())]
        return self._chunk(parts or [{"text": ""}], self._finish or "STOP",
                           usage_metadata(self._usage))

    def _chunk(self, parts: list[JSON], finish: str | None = None,
               metadata: JSON | None = None) -> bytes:
        candidate: JSON = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if finish is not None:
            candidate["finishReason"] = finish
        chunk: JSON = {"candidates": [candidate], "modelVersion": self.model or "",
                       "responseId": self.ident}
        if metadata is not None:
            chunk["usageMetadata"] = metadata
        return b"data: " + orjson.dumps(chunk) + b"\r\n\r\n"


def _args(arguments: str) -> Any:
    args = tool_input(arguments)
    return args if isinstance(args, dict) else {}

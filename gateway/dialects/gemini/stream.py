"""Reads a Gemini stream (`streamGenerateContent?alt=sse`) chunk by chunk as it is relayed.

Each event is `data: <GenerateContentResponse>`; every chunk carries `usageMetadata`
with the counts so far and the last one the final counts, next to a candidate's
`finishReason`. There is no end marker: the finish reason (or a prompt blocked before
any candidate) ends the stream. A chunk `{"error": {...}}` is an error mid-stream.

Per chunk, the common case is not parsed: a mid-stream chunk with one text part and
nothing else to read (no finish reason, error, blocked prompt or thought part; the
usage's thinking tokens are read with the rest of it), when neither the model is renamed
nor the content captured, is recognised in its raw bytes, its text measured in place and
its bytes kept as the latest `usageMetadata` to parse only when the usage is asked for.
The first chunk (the response model, the id) and the last (the finish reason) are always
parsed.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.dialects.base import ChunkTimer, StreamEnd
from gateway.dialects.gemini import errors as wire_errors
from gateway.dialects.gemini.answer import (
    finish_reasons,
    response_attributes,
    response_model,
    texts,
    usage_from,
)
from gateway.sse import event_data
from gateway.telemetry import content
from gateway.telemetry.vocabulary import error_code
from gateway.usage import Usage


class GeminiWatcher:
    """Relays a Gemini stream: each chunk forwarded as it came (its `modelVersion` renamed
    when asked), read for usage, timing, the finish reason and errors."""

    def __init__(self, served: str | None, timer: ChunkTimer | None, capture: bool) -> None:
        self._served = served
        self._timer = timer
        self._capture = capture
        self._metadata: Any = None
        self._metadata_event = b""  # a later chunk's raw bytes holding usageMetadata, unparsed
        self._texts: dict[int, str] = {}
        self._output_chars = 0
        self._seen_first = False
        self._fast = served is None and not capture  # plain chunks need no parse
        # The last chunk parsed and its JSON object, unchanged (dialects.base.SharesParse).
        self.parsed_event = b""
        self.parsed: dict[str, Any] | None = None
        self.finish_reasons: list[str] = []
        self.done = False
        self.failure: StreamEnd | None = None
        self.response_model: str | None = None
        self.response_attributes: dict[str, Any] = {}

    @property
    def usage(self) -> Usage | None:
        """The last counts reported; a stream cut short is charged at least the output it
        delivered (estimated from its text when the counts lag behind)."""
        if self._metadata_event:
            self._metadata = _metadata_in(self._metadata_event, self._metadata)
            self._metadata_event = b""
        usage = usage_from(self._metadata)
        if usage is None or self.done:
            return usage
        delivered = self.output_tokens()
        if delivered > usage.output - usage.reasoning:
            return Usage(input=usage.input, output=usage.reasoning + delivered,
                         cache_read=usage.cache_read, reasoning=usage.reasoning)
        return usage

    def output_tokens(self) -> int:
        return (self._output_chars + 3) // 4

    def output_messages(self) -> str | None:
        if not self._texts:
            return None
        reason = self.finish_reasons[0] if self.finish_reasons else ""
        return content.output_messages(self._texts, dict.fromkeys(self._texts, reason))

    def feed(self, events: list[bytes]) -> bytes:
        parts: list[bytes] = []
        for event in events:
            if self.done:
                break
            if self._fast and self._seen_first and self._plain_chunk(event):
                parts.append(event + b"\n\n")
                continue
            data = event_data(event)
            if data is None:  # a comment or keep-alive: pass on
                parts.append(event + b"\n\n")
                continue
            try:
                payload = orjson.loads(data)
            except orjson.JSONDecodeError:
                payload = None
            if not isinstance(payload, dict):
                self.failure = StreamEnd("malformed", "malformed_sse",
                                         "the upstream sent a malformed event")
                parts.append(wire_errors.stream_error_event(502, self.failure.message))
                self.done = True
                break
            parts.append(self._chunk(event, payload))
        return b"".join(parts)

    def _plain_chunk(self, event: bytes) -> bool:
        """Whether `event` is a plain mid-stream chunk (see the module's docstring): if so,
        it is counted, timed and its usage kept for later, unparsed. Its one text part is
        the first of its parts, and is measured in place when it has no escapes. A thought
        part is told by its key `"thought":` (a key: a quote within a text is escaped), not
        by the usage's `thoughtsTokenCount` or a part's `thoughtSignature`, whose text the
        parsed path counts as output too."""
        if not (event.startswith(b'data: {"') and event.endswith(b"}")) or b"\n" in event:
            return False
        text = event.find(b'"parts":[{"text":"')
        if (text < 0 or event.find(b'"text":') != text + 10 or event.find(b'"text":', text + 17) >= 0
                or event.find(b'"finishReason"') >= 0 or event.find(b'"error"') >= 0
                or event.find(b'"promptFeedback"') >= 0 or event.find(b'"thought":') >= 0):
            return False
        start = text + 18
        end = event.find(b'"', start)
        if end < 0 or event.find(b"\\", start, end) >= 0:
            return False  # an escape in the text: the parsed path measures it
        value = event[start:end]
        self._output_chars += len(value) if value.isascii() else len(value.decode("utf-8", "replace"))
        if event.find(b'"usageMetadata"') >= 0:
            self._metadata_event = event
        if self._timer is not None:
            self._timer.chunk()
        return True

    def _chunk(self, event: bytes, payload: dict[str, Any]) -> bytes:
        self.parsed_event = event
        self.parsed = payload  # changed below only when renamed (never in a translation)
        error = wire_errors.read_error(payload)
        if error is not None:
            self.failure = StreamEnd("upstream_error", error_code(error[1]),
                                     "the upstream reported an error mid-stream")
            self.done = True
            return event + b"\n\n"
        metadata = payload.get("usageMetadata")
        if metadata is not None:
            self._metadata = metadata
            self._metadata_event = b""
        timer = self._timer
        if not self._seen_first:
            self._seen_first = True
            if timer is not None:
                timer.first_chunk()
            self.response_model = response_model(payload)
        elif timer is not None:
            timer.chunk()
        for index, text in texts(payload).items():
            self._output_chars += len(text)
            if self._capture:
                self._texts[index] = self._texts.get(index, "") + text
        reasons = finish_reasons(payload)
        attributes = response_attributes(payload)
        if reasons:
            self.finish_reasons = reasons
        self.response_attributes.update(attributes)
        feedback = payload.get("promptFeedback")
        if reasons or (isinstance(feedback, dict) and feedback.get("blockReason")):
            self.done = True
        if self._served is not None and "modelVersion" in payload:
            payload["modelVersion"] = self._served
            return b"data: " + orjson.dumps(payload) + b"\n\n"
        return event + b"\n\n"


def _metadata_in(event: bytes, before: Any) -> Any:
    """The `usageMetadata` of a plain chunk kept unparsed (`before` if it is not JSON)."""
    try:
        payload = orjson.loads(event[6:])
    except orjson.JSONDecodeError:
        return before
    return payload.get("usageMetadata") if isinstance(payload, dict) else before


def event_error(data: bytes) -> str | None:
    """The message of an error chunk's data, else None (cheap for ordinary chunks)."""
    if b'"error"' not in data:
        return None
    try:
        found = wire_errors.read_error(orjson.loads(data))
    except orjson.JSONDecodeError:
        return None
    return None if found is None else f"{found[1]}: {found[2]}"

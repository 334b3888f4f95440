"""Server-sent events framing: split a byte stream into events, read their data.

Pure and incremental: `SSESplitter.feed(chunk)` returns the complete events in
the bytes seen so far, so the relay forwards each event as soon as it is whole.
"""

from __future__ import annotations

import re

_BOUNDARY = re.compile(rb"\r\n\r\n|\n\n|\r\r")
DONE = b"[DONE]"


class SSESplitter:
    """Accumulates bytes and yields whole events (each without its blank line)."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\r" not in buffer:  # the usual LF-only framing: one C-speed split
            *whole, self._buffer = buffer.split(b"\n\n")
            return [event for event in whole if event]
        events: list[bytes] = []
        start = 0
        while True:
            match = _BOUNDARY.search(buffer, start)
            if match is None:
                break
            event = buffer[start : match.start()]
            if event:
                events.append(event)
            start = match.end()
        self._buffer = buffer[start:]
        return events

    @property
    def pending(self) -> bytes:
        """Bytes of an event that has not been terminated yet."""
        return self._buffer


def event_data(event: bytes) -> bytes | None:
    """The joined `data:` lines of one event, or None if it has no data (comments)."""
    if event.startswith(b"data: ") and b"\n" not in event:
        return event[6:]
    parts: list[bytes] = []
    for line in event.splitlines():
        if line.startswith(b"data:"):
            value = line[5:]
            parts.append(value[1:] if value.startswith(b" ") else value)
    if not parts:
        return None
    return b"\n".join(parts)


def encode_event(data: bytes) -> bytes:
    """Frame one data payload as an SSE event."""
    return b"data: " + data + b"\n\n"

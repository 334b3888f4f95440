"""Server-sent events framing: split a byte stream into events, read their data.

Pure and incremental: `SSESplitter.feed(chunk)` returns the complete events in
the bytes seen so far, so the relay forwards each event as soon as it is whole.
Linear in the bytes fed: an event arriving in many chunks is kept as a list of
parts and only the new bytes are searched for its end, and an event longer than
`max_event` bytes raises `EventTooLarge` instead of growing without bound.
"""

from __future__ import annotations

import re

_BOUNDARY = re.compile(rb"\r\n\r\n|\n\n|\r\r")
DONE = b"[DONE]"
NO_LIMIT = 1 << 62


class EventTooLarge(Exception):  # not ValueError: a compiled module subclasses Exception only
    """An event (or the bytes before its end) went past the splitter's limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"an event was larger than {limit} bytes")
        self.limit = limit


class SSESplitter:
    """Accumulates bytes and yields whole events (each without its blank line)."""

    __slots__ = ("_buffer", "_max_event", "_parts", "_size")

    def __init__(self, max_event: int = NO_LIMIT) -> None:
        self._buffer = b""  # the unterminated start of an event (its first part)
        self._parts: list[bytes] = []  # more parts of it, joined once its end arrives
        self._size = 0  # len(_buffer) + the parts' lengths
        self._max_event = max_event

    def feed(self, chunk: bytes) -> list[bytes]:
        if self._buffer:
            if not self._ends_in(chunk):  # still inside one event: keep the part, search no more
                self._parts.append(chunk)
                self._size += len(chunk)
                if self._size > self._max_event:
                    self._overflow()
                return []
            buffer = b"".join((self._buffer, *self._parts, chunk))
            self._parts.clear()
        else:
            buffer = chunk
        if b"\r" not in buffer:  # the usual LF-only framing: one C-speed split
            *whole, rest = buffer.split(b"\n\n")
            events = [event for event in whole if event]
        elif b"\n\n" not in buffer and b"\r\r" not in buffer:  # CRLF only (Google's): the same
            *whole, rest = buffer.split(b"\r\n\r\n")
            events = [event for event in whole if event]
        else:
            events, rest = _split(buffer)
        self._buffer = rest
        self._size = len(rest)
        if self._size > self._max_event or len(chunk) > self._max_event:
            self._check(events)
        return events

    def _ends_in(self, chunk: bytes) -> bool:
        """Whether an event boundary ends in `chunk` (it may begin in the 3 bytes before)."""
        if b"\n\n" in chunk or b"\r\r" in chunk or b"\r\n\r\n" in chunk:
            return True
        window = self._tail() + chunk[:3]
        return b"\n\n" in window or b"\r\r" in window or b"\r\n\r\n" in window

    def _tail(self) -> bytes:
        last = self._parts[-1] if self._parts else self._buffer
        if len(last) >= 3 or not self._parts:
            return last[-3:]
        return (b"".join((self._buffer, *self._parts)))[-3:]

    def _check(self, events: list[bytes]) -> None:
        if self._size > self._max_event or any(len(e) > self._max_event for e in events):
            self._overflow()

    def _overflow(self) -> None:
        self._buffer, self._parts, self._size = b"", [], 0  # free it now
        raise EventTooLarge(self._max_event)

    @property
    def pending(self) -> bytes:
        """Bytes of an event that has not been terminated yet."""
        return b"".join((self._buffer, *self._parts))


def _split(buffer: bytes) -> tuple[list[bytes], bytes]:
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
    return events, buffer[start:]


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

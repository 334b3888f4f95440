"""SSE framing: events are found whole however the bytes are split."""

import random
import re

import pytest

from gateway.sse import SSESplitter, event_data


def test_events_split_across_reads_come_out_whole() -> None:
    """An event split over several reads is emitted once, when complete."""
    splitter = SSESplitter()
    assert splitter.feed(b'data: {"a"') == []
    assert splitter.feed(b": 1}\n") == []
    assert splitter.feed(b"\ndata: [DONE]\n\n") == [b'data: {"a": 1}', b"data: [DONE]"]


def test_crlf_boundaries_are_understood() -> None:
    """CRLF-framed events are split like LF-framed ones."""
    assert SSESplitter().feed(b"data: x\r\n\r\ndata: y\r\n\r\n") == [b"data: x", b"data: y"]


def test_event_data_joins_lines_and_ignores_comments() -> None:
    """Multi-line data is joined; comments and event names are not data."""
    assert event_data(b"event: message\ndata: a\ndata: b") == b"a\nb"
    assert event_data(b": keep-alive") is None
    assert event_data(b"data:x") == b"x"


def _reference_events(stream: bytes) -> tuple[list[bytes], bytes]:
    """Every event of a whole stream by the spec's three line-ending boundaries, and the rest."""
    events, start = [], 0
    while (match := re.compile(rb"\r\n\r\n|\n\n|\r\r").search(stream, start)) is not None:
        if match.start() > start:
            events.append(stream[start:match.start()])
        start = match.end()
    return events, stream[start:]


@pytest.mark.parametrize("seed", range(40))
def test_any_split_of_any_framing_gives_the_reference_events(seed: int) -> None:
    """LF-only and CRLF-only streams (each split with a fast path) and streams with mixed
    framing give the same events as a reference splitter, however the bytes are cut into
    reads."""
    rng = random.Random(seed)
    pieces = [b"data: {\"x\": %d}" % i for i in range(rng.randint(1, 12))] + [b": ping", b"data: [DONE]"]
    endings = ([b"\n\n"], [b"\r\n\r\n"], [b"\n\n", b"\r\n\r\n", b"\r\r", b"\n\n\n"])[seed % 3]
    if seed % 3 == 1:
        pieces.insert(0, b"event: named\r\ndata: two\r\ndata: lines")
    stream = b"".join(piece + rng.choice(endings) for piece in pieces) + b"data: partial"
    splitter, got, at = SSESplitter(), [], 0
    while at < len(stream):
        step = rng.randint(1, 40)
        got += splitter.feed(stream[at:at + step])
        at += step
    expected, rest = _reference_events(stream)
    assert got == expected
    assert splitter.pending == rest

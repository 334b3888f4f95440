"""SSE framing: events are found whole however the bytes are split."""

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

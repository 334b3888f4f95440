"""The per-event cost tool: it times each part on a stream's real bytes, prints one row per
dialect, and takes the streams from the benchmark's own upstream."""

from __future__ import annotations

import pytest

from bench import dialects, events


def _chat_stream(words: list[str]) -> bytes:
    head = b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1",'
    chunks = [head + b'"choices":[{"index":0,"delta":{"content":"%s"},"finish_reason":null}]}'
              % word.encode() for word in words]
    chunks.append(head + b'"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}')
    return b"\n\n".join([*chunks, b"data: [DONE]"]) + b"\n\n"


def test_each_part_of_a_stream_is_timed_and_tabled() -> None:
    """A chat stream's events are counted and each part gets a CPU time, per stream and per
    event in the table."""
    costs = events.measure("chat", _chat_stream(["a", "b", "c"]), repeat=3, rounds=1)
    assert costs.events == 5
    assert costs.split > 0  # the others are differences of two timings: noise may tip them below 0
    row = events.table([costs]).splitlines()[-1]
    assert row.startswith("| chat | 5 | ") and row.count("(") == 4


@pytest.mark.integration
def test_streams_come_from_the_benchmark_upstream() -> None:
    """Each dialect's stream is fetched whole from bench/upstream.py, its end included."""
    streams = events.fetch(("chat", "responses", "gemini"), completion_tokens=3)
    for name, stream in streams.items():
        assert dialects.ALL[name].stream_end in stream

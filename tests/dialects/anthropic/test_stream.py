"""The Messages stream watcher reads usage, the stop reason, errors and the end from the
named events as they are relayed, whatever the TCP chunking."""

from __future__ import annotations

import anthropic
import orjson
import pytest
from pydantic import TypeAdapter

from gateway.dialects.anthropic import stream as s
from gateway.dialects.anthropic.stream import MessagesStreamWatcher, event_name
from gateway.sse import SSESplitter
from gateway.telemetry import names as n
from gateway.usage import Usage
from tests.fakes import anthropic_wire as wire

MODEL = "claude-sonnet-4-5-20250929"


def _events(**kwargs: object) -> list[bytes]:
    usage = kwargs.pop("usage", wire.Usage(12, 30, cache_write_5m=1000, cache_write_1h=200,
                                           cache_read=500))
    content = kwargs.pop("content", [wire.text_block("Hello there, this is a streamed answer")])
    return wire.stream_events(ident="msg_01x", model=MODEL, content=content,  # type: ignore[arg-type]
                              stop_reason=str(kwargs.pop("stop_reason", "end_turn")),
                              usage=usage, **kwargs)  # type: ignore[arg-type]


def _watch(raw: bytes, pieces: int = 1, capture: bool = False) -> tuple[MessagesStreamWatcher, list[str]]:
    watcher = MessagesStreamWatcher(capture=capture)
    splitter = SSESplitter()
    kinds = []
    size = max(1, len(raw) // pieces)
    for start in range(0, len(raw), size):
        for event in splitter.feed(raw[start:start + size]):
            kinds.append(watcher.feed(event))
    return watcher, kinds


def test_every_event_is_one_the_sdk_parses() -> None:
    """The events fed here are real ones: the SDK's event union validates each of them."""
    content = [wire.thinking_block("hmm", "sig"), wire.text_block("ok"),
               wire.tool_use_block("toolu_01", "Bash", {"command": "ls"})]
    adapter = TypeAdapter(anthropic.types.RawMessageStreamEvent)
    for name, data in wire.split_stream(b"".join(_events(content=content))):
        assert data["type"] == name
        if name != "ping":
            assert adapter.validate_python(data).type == name


@pytest.mark.parametrize("pieces", [1, 7, 97, 10_000])
def test_usage_and_stop_reason_whatever_the_chunking(pieces: int) -> None:
    """message_start's input usage and message_delta's output merge, however the bytes split."""
    watcher, kinds = _watch(b"".join(_events()), pieces)
    assert watcher.usage == Usage(input=1712, output=30, cache_read=500, cache_creation=1200,
                                  cache_creation_1h=200)
    assert kinds[0] == s.FIRST and kinds[-1] == s.DONE and watcher.finished
    assert watcher.stop_reason == "end_turn" and watcher.response_model == MODEL
    assert watcher.response_attributes == {n.GEN_AI_RESPONSE_ID: "msg_01x",
                                           n.GEN_AI_RESPONSE_FINISH_REASONS: ["end_turn"]}
    assert kinds.count(s.CHUNK) == watcher.chunks == 4


def test_every_delta_type_counts_as_a_chunk() -> None:
    """thinking, signature, tool input and text deltas are all output chunks."""
    content = [wire.thinking_block("hmm " * 5, "sig"), wire.text_block("ok"),
               wire.tool_use_block("toolu_01", "Bash", {"command": "ls -la"})]
    watcher, kinds = _watch(b"".join(_events(content=content, stop_reason="tool_use")))
    assert watcher.chunks == 2 + 1 + 1 + 3  # thinking x2 + signature, text, json "" + 2 pieces
    assert watcher.stop_reason == "tool_use"
    assert kinds.count(s.OTHER) >= 8  # block starts/stops, ping, message_delta


def test_full_cumulative_delta_usage_is_read() -> None:
    """A message_delta that repeats the input counts (as newer API versions do) is read too."""
    watcher, _ = _watch(b"".join(_events(full_delta_usage=True)))
    assert watcher.usage == Usage(input=1712, output=30, cache_read=500, cache_creation=1200,
                                  cache_creation_1h=200)


def test_error_event_is_reported() -> None:
    """An `error` event mid-stream is reported with its type and message."""
    error = wire.event("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}})
    events = _events()
    watcher, kinds = _watch(b"".join([*events[:3], error]))
    assert kinds[-1] == s.ERROR and watcher.error == ("overloaded_error", "Overloaded")
    assert not watcher.finished


def test_malformed_json_is_reported() -> None:
    """A message_delta whose JSON does not parse is reported as malformed."""
    assert MessagesStreamWatcher().feed(b"event: message_delta\ndata: {\"type\": ") == s.MALFORMED


def test_disconnect_before_message_delta_is_still_charged() -> None:
    """Without message_delta, the output is estimated from the deltas seen, never zero."""
    events = _events(content=[wire.text_block("x" * 120)])
    watcher, _ = _watch(b"".join(events[:8]))
    usage = watcher.usage_or_estimate(99)
    assert usage.output == watcher.chunks > 1 and usage.estimated and usage.input == 1712
    nothing = MessagesStreamWatcher().usage_or_estimate(99)
    assert nothing == Usage(input=99, output=0, estimated=True)


def test_capture_assembles_each_block() -> None:
    """With content capture on, each content block is assembled from its start and deltas
    as a JSON answer has it: thinking, text, and a tool call's input parsed."""
    content = [wire.thinking_block("Let me think", "sig"), wire.text_block("Checking the weather"),
               wire.tool_use_block("toolu_01", "get_weather", {"location": "Paris"})]
    watcher, _ = _watch(b"".join(_events(content=content, stop_reason="tool_use")), pieces=7,
                        capture=True)
    blocks = watcher.captured_blocks()
    assert [b["type"] for b in blocks] == ["thinking", "text", "tool_use"]
    assert blocks[0]["thinking"] == "Let me think"
    assert blocks[1]["text"] == "Checking the weather"
    assert (blocks[2]["id"], blocks[2]["name"], blocks[2]["input"]) == (
        "toolu_01", "get_weather", {"location": "Paris"})
    uncaptured, _ = _watch(b"".join(_events(content=content)))
    assert uncaptured.captured_blocks() == []


def test_events_without_event_lines_are_read_by_their_type() -> None:
    """A proxy that dropped the `event:` lines still yields usage and the end."""
    stripped = [b"\n".join(line for line in e.split(b"\n") if not line.startswith(b"event:"))
                for e in _events()]
    watcher, kinds = _watch(b"".join(stripped))
    assert watcher.usage is not None and watcher.usage.output == 30 and kinds[-1] == s.DONE


@pytest.mark.parametrize(("event", "name"), [
    (b"event: ping\ndata: {}", b"ping"),
    (b"event:message_stop\ndata: {}", b"message_stop"),
    (b"id: 1\nevent: error\ndata: {}", b"error"),
    (b"data: {}", None),
    (b": comment", None),
])
def test_event_name(event: bytes, name: bytes | None) -> None:
    """The event name is read from its `event:` line wherever it stands."""
    assert event_name(event) == name


def test_ping_and_comments_are_other() -> None:
    """Pings and comments change nothing."""
    watcher = MessagesStreamWatcher()
    assert watcher.feed(wire.event("ping", {}).strip()) == s.OTHER
    assert watcher.feed(b": keep-alive") == s.OTHER
    assert watcher.feed(b"event: message_start\ndata: " + orjson.dumps([1])) == s.OTHER
    assert watcher.usage is None

"""A translated stream parses each upstream event once: the translator takes the JSON
object of the events the upstream's watcher parsed (`SharesParse`) and parses only the
others, and what the client gets and what is charged are byte for byte what they were
when the translator parsed every event itself."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from gateway.dialects import openai_chat
from gateway.dialects.anthropic.messages import AnthropicMessages
from gateway.dialects.base import ClientRequest, Dialect, StreamWatcher
from gateway.dialects.gemini.generate import GeminiStream
from gateway.dialects.openai_chat import OpenAIChat
from gateway.dialects.openai_responses.responses import NAME as RESPONSES
from gateway.dialects.openai_responses.responses import OpenAIResponses
from gateway.dialects.registry import ANTHROPIC_NATIVE, GEMINI_NATIVE, OPENAI_CHAT_ONLY
from gateway.translate.dialects import translation
from tests.fakes import anthropic_wire as awire
from tests.fakes import openai_wire as owire

CHAT = b'{"model": "m", "stream": true, "stream_options": {"include_usage": true}, ' \
       b'"messages": [{"role": "user", "content": "hi"}]}'
MESSAGES = b'{"model": "m", "max_tokens": 64, "stream": true, ' \
           b'"messages": [{"role": "user", "content": "hi"}]}'
RESPONSES_REQUEST = b'{"model": "m", "stream": true, "input": "hi"}'
GEMINI = b'{"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}'


class _Timer:
    def first_chunk(self) -> None:
        """Nothing to time here."""

    def chunk(self) -> None:
        """Nothing to time here."""


def _messages_events() -> list[bytes]:
    return [e.strip() for e in awire.stream_events(
        ident="msg_01", model="claude", stop_reason="end_turn", usage=awire.Usage(30, 9),
        content=[awire.text_block("Hello from a long enough Claude answer")])]


def _chat_events() -> list[bytes]:
    header = owire.ChunkHeader("chatcmpl-1", "gpt-4.1", 1700000000, "fp_1",
                               include_usage=True, obfuscate=False)
    chunks = owire.stream_chunks(header, ["Hello", " from", " chat"], "stop",
                                 owire.Usage(21, 3))
    return [b"data: " + orjson.dumps(c) for c in chunks] + [b"data: [DONE]"]


def _gemini_events() -> list[bytes]:
    def chunk(text: str, finish: str | None, candidates: int) -> bytes:
        candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"},
                                     "index": 0}
        if finish:
            candidate["finishReason"] = finish
        return b"data: " + orjson.dumps({
            "candidates": [candidate], "modelVersion": "gemini-2.5-flash", "responseId": "r-1",
            "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": candidates,
                              "thoughtsTokenCount": 5}})
    return [chunk("Hello", None, 1), chunk(" from", None, 2), chunk(" Gemini", "STOP", 3)]


def _responses_events() -> list[bytes]:
    response = {"id": "resp_1", "object": "response", "created_at": 1700000000,
                "model": "gpt-5", "status": "in_progress", "output": [], "usage": None}
    message = {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
               "content": [{"type": "output_text", "text": "Hello there", "annotations": []}]}
    done = {**response, "status": "completed", "output": [message],
            "usage": {"input_tokens": 15, "output_tokens": 4, "total_tokens": 19,
                      "input_tokens_details": {"cached_tokens": 5},
                      "output_tokens_details": {"reasoning_tokens": 2}}}
    events: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"response": response}),
        ("response.output_item.added", {"output_index": 0, "item": {**message, "content": []}}),
        ("response.output_text.delta", {"item_id": "msg_1", "output_index": 0,
                                        "content_index": 0, "delta": "Hello"}),
        ("response.output_text.delta", {"item_id": "msg_1", "output_index": 0,
                                        "content_index": 0, "delta": " there"}),
        ("response.completed", {"response": done})]
    return [b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(
        {"type": kind, "sequence_number": i, **payload}) for i, (kind, payload) in enumerate(events)]


# client dialect, its request, the upstream's dialects, the upstream's events
CASES: list[tuple[Dialect, bytes, frozenset[str], Callable[[], list[bytes]]]] = [
    (OpenAIChat(), CHAT, ANTHROPIC_NATIVE, _messages_events),
    (OpenAIChat(), CHAT, GEMINI_NATIVE, _gemini_events),
    (OpenAIChat(), CHAT, frozenset({RESPONSES}), _responses_events),
    (OpenAIResponses(), RESPONSES_REQUEST, OPENAI_CHAT_ONLY, _chat_events),
    (AnthropicMessages(), MESSAGES, OPENAI_CHAT_ONLY, _chat_events),
    (GeminiStream(), GEMINI, ANTHROPIC_NATIVE, _messages_events),  # two steps, through chat
]


class _Unshared:
    """An upstream watcher that shares no parse, so the translator parses every event
    itself: the stream as it was before the parse was shared."""

    parsed_event = b""
    parsed = None

    def __init__(self, inner: StreamWatcher) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def feed(self, events: list[bytes]) -> bytes:
        return self._inner.feed(events)


def _request(client: Dialect, raw: bytes) -> ClientRequest:
    parse_routed = getattr(client, "parse_routed", None)
    if parse_routed is not None:
        return parse_routed(raw, {"model": "m"}, {"alt": "sse"})  # type: ignore[no-any-return]
    return client.parse(raw)


def _watch(client: Dialect, raw: bytes, upstream: frozenset[str], capture: bool,
           shared: bool) -> StreamWatcher:
    via = translation(client, upstream)
    assert via is not None
    watcher = via.watch(_request(client, raw), "m", False, _Timer(), capture)
    if not shared:
        watcher._reader = _Unshared(watcher._reader)  # type: ignore[attr-defined]
    return watcher


def _steady(out: bytes) -> bytes:
    """The client's bytes but the clock's and chance's: translators stamp `created` and
    the Responses events number their items with random ids."""
    return re.sub(rb"_[0-9a-f]{32}", b"_id", re.sub(rb'"created(_at)?":\d+', b'"created":0', out))


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many times orjson.loads ran (in this process's interpreted modules)."""
    count = [0]
    loads = orjson.loads

    def counting(data: Any) -> Any:
        count[0] += 1
        return loads(data)

    monkeypatch.setattr(orjson, "loads", counting)
    yield count


@pytest.mark.parametrize("capture", [False, True])
@pytest.mark.parametrize(("client", "raw", "upstream", "events"), CASES,
                         ids=[f"{c.name}>{sorted(u)[0]}" for c, _, u, _ in CASES])
def test_a_shared_parse_changes_no_byte(client: Dialect, raw: bytes, upstream: frozenset[str],
                                        events: Callable[[], list[bytes]], capture: bool) -> None:
    """Every translation's client bytes, usage, response model and attributes and
    captured output are the same whether the translator parses each event or takes the
    watcher's parse, event by event, with content capture off and on."""
    shared = _watch(client, raw, upstream, capture, shared=True)
    alone = _watch(client, raw, upstream, capture, shared=False)
    for event in events():
        assert _steady(shared.feed([event])) == _steady(alone.feed([event]))
    assert shared.done and alone.done
    assert shared.usage == alone.usage and shared.usage is not None
    assert (shared.response_model, shared.response_attributes) == (
        alone.response_model, alone.response_attributes)
    assert shared.output_messages() == alone.output_messages()
    assert (shared.output_messages() is not None) is capture


@pytest.mark.parametrize("capture", [False, True])
@pytest.mark.parametrize(("client", "raw", "upstream", "events"), CASES,
                         ids=[f"{c.name}>{sorted(u)[0]}" for c, _, u, _ in CASES])
def test_each_event_is_parsed_once(client: Dialect, raw: bytes, upstream: frozenset[str],
                                   events: Callable[[], list[bytes]], capture: bool,
                                   parses: list[int]) -> None:
    """A translated stream parses each upstream event at most once (the watcher reads
    most of them in their raw bytes); the translator parsing each itself parsed more."""
    if _compiled():
        pytest.skip("the count replaces orjson.loads for interpreted modules only")
    upstream_events = events()
    shared = _watch(client, raw, upstream, capture, shared=True)
    parses[0] = 0
    for event in upstream_events:
        shared.feed([event])
    once = parses[0]
    alone = _watch(client, raw, upstream, capture, shared=False)
    parses[0] = 0
    for event in upstream_events:
        alone.feed([event])
    assert once == len(upstream_events) < parses[0]


def _compiled() -> bool:
    return not (openai_chat.__file__ or "").endswith(".py")

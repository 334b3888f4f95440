"""Gemini's wire knowledge, pure: usage from usageMetadata, Google's error shape, request
validation (proto field names included) and the stream watcher over real chunk bytes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.dialects.gemini import errors as wire_errors
from gateway.dialects.gemini.answer import usage_from
from gateway.dialects.gemini.generate import (
    GeminiBatchEmbed,
    GeminiGenerate,
    GeminiStream,
    upstream_route,
)
from gateway.dialects.gemini.stream import GeminiWatcher, event_error
from gateway.errors import BudgetExceeded, InvalidRequest, ModelNotFound, UpstreamStatus
from gateway.usage import Usage

HELLO = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}


@pytest.mark.parametrize(("metadata", "usage"), [
    ({"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15},
     Usage(input=10, output=5)),
    ({"promptTokenCount": 1000, "cachedContentTokenCount": 400, "candidatesTokenCount": 50,
      "thoughtsTokenCount": 120, "toolUsePromptTokenCount": 30},
     Usage(input=1030, output=170, cache_read=400, reasoning=120)),
    ({"promptTokenCount": 7}, Usage(input=7)),
    ({"promptTokenCount": True, "candidatesTokenCount": -3}, Usage()),
])
def test_usage_metadata_reads_every_kind_of_token(metadata: dict[str, Any], usage: Usage) -> None:
    """Prompt plus tool-use prompt is input (cached included), thoughts are output and
    reasoning, and nonsense counts read as zero."""
    assert usage_from(metadata) == usage


def test_usage_absent_is_none() -> None:
    """No usageMetadata: None, so the path estimates."""
    assert usage_from(None) is None


@pytest.mark.parametrize(("error", "code", "status"), [
    (InvalidRequest("bad"), 400, "INVALID_ARGUMENT"),
    (ModelNotFound("nope"), 404, "NOT_FOUND"),
    (BudgetExceeded("over"), 429, "RESOURCE_EXHAUSTED"),
])
def test_gateway_errors_take_googles_shape(error: Any, code: int, status: str) -> None:
    """Each gateway error becomes {"error": {"code", "message", "status"}}."""
    body = orjson.loads(wire_errors.from_gateway(error))
    assert body == {"error": {"code": code, "message": error.message, "status": status}}


def test_upstream_errors_keep_googles_body_and_reshape_others() -> None:
    """A Google body passes as it came; an OpenAI one is rebuilt with its message."""
    google = wire_errors.error_bytes(503, "overloaded")
    assert wire_errors.upstream_error(503, google) == google
    openai_body = orjson.dumps({"error": {"message": "slow down", "type": "requests",
                                          "code": "rate_limit_exceeded"}})
    reshaped = orjson.loads(wire_errors.from_gateway(UpstreamStatus(429, openai_body)))
    assert reshaped["error"] == {"code": 429, "message": "slow down",
                                 "status": "RESOURCE_EXHAUSTED"}


def test_the_model_comes_from_the_route_and_proto_names_are_read() -> None:
    """parse_routed takes the model from the URL and reads max_output_tokens given by its
    proto name, bounded by the gateway's limit."""
    body = {**HELLO, "generation_config": {"max_output_tokens": 64,
                                           "thinking_config": {"thinking_budget": 0}}}
    request = GeminiGenerate().parse_routed(orjson.dumps(body), {"model": "gemini-2.5-flash"}, {})
    assert request.model == "gemini-2.5-flash" and request.max_tokens == 64
    assert request.body["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 0}
    assert not request.stream


@pytest.mark.parametrize(("body", "query", "message"), [
    ({}, {"alt": "sse"}, "contents is not specified"),
    ({"contents": [{"role": "user"}]}, {"alt": "sse"}, "parts"),
    ({**HELLO, "generationConfig": {"maxOutputTokens": 0}}, {"alt": "sse"}, "positive"),
    (HELLO, {}, "alt=sse"),
])
def test_bad_requests_are_refused(body: dict[str, Any], query: dict[str, str],
                                  message: str) -> None:
    """Missing contents, empty parts, a bad maxOutputTokens or a stream without alt=sse are
    400s that say why."""
    with pytest.raises(InvalidRequest, match=message):
        GeminiStream().parse_routed(orjson.dumps(body), {"model": "m"}, query)


def test_upstream_route_quotes_the_model() -> None:
    """The upstream path carries the upstream model id as one path segment."""
    assert upstream_route(GeminiStream.upstream_path, "tuned/x y") == \
        "/v1beta/models/tuned%2Fx%20y:streamGenerateContent?alt=sse"


def test_batch_embed_requests_name_the_upstreams_model() -> None:
    """A batch's requests name the model of the URL (the upstream's id), as the API
    requires, when the gateway's model name is an alias."""
    batch = GeminiBatchEmbed()
    raw = orjson.dumps({"requests": [{"model": "models/alias", "content": {"parts": [
        {"text": "a"}]}}, {"content": {"parts": [{"text": "b"}]}}]})
    request = batch.parse_routed(raw, {"model": "alias"}, {})
    body, _ = batch.upstream_body(request, "gemini-embedding-001")
    assert [r.get("model") for r in body["requests"]] == ["models/gemini-embedding-001", None]
    assert request.body["requests"][0]["model"] == "models/alias"
    assert batch.upstream_body(request, "alias")[0] is request.body


class _Timer:
    def __init__(self) -> None:
        self.first = 0
        self.chunks = 0

    def first_chunk(self) -> None:
        self.first += 1

    def chunk(self) -> None:
        self.chunks += 1


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload)


def _text_chunk(text: str, finish: str | None = None, *, flags: dict[str, Any] | None = None,
                **metadata: int) -> bytes:
    """A chunk of one text part (with the part's `flags` after its text)."""
    candidate: dict[str, Any] = {"content": {"parts": [{"text": text, **(flags or {})}],
                                             "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return _event({"candidates": [candidate], "usageMetadata": metadata,
                   "modelVersion": "gemini-2.5-flash-001", "responseId": "r1"})


def test_watcher_reads_a_whole_stream() -> None:
    """Chunks are forwarded (renamed), timed, and the finish reason ends the stream with the
    last chunk's usage."""
    timer = _Timer()
    watcher = GeminiWatcher("gemini-2.5-flash", timer, capture=True)
    out = watcher.feed([_text_chunk("Hello", promptTokenCount=5),
                        _text_chunk(" world", "STOP", promptTokenCount=5,
                                    candidatesTokenCount=2, thoughtsTokenCount=8)])
    assert watcher.done and watcher.failure is None
    assert out.count(b'"modelVersion":"gemini-2.5-flash"') == 2
    assert (timer.first, timer.chunks) == (1, 1)
    assert watcher.usage == Usage(input=5, output=10, reasoning=8)
    assert watcher.response_model == "gemini-2.5-flash-001"
    assert watcher.response_attributes["gen_ai.response.finish_reasons"] == ["STOP"]
    assert "Hello world" in (watcher.output_messages() or "")


def test_watcher_charges_a_stream_cut_short_for_what_it_delivered() -> None:
    """Without the final counts, the output is at least what the text delivered."""
    watcher = GeminiWatcher(None, None, capture=False)
    watcher.feed([_text_chunk("x" * 40, promptTokenCount=300)])
    assert not watcher.done
    assert watcher.usage == Usage(input=300, output=10)


def _plain_and_parsed(events: list[bytes]) -> tuple[GeminiWatcher, GeminiWatcher]:
    """The same events through a watcher that may skip parsing plain chunks and through
    one that parses every chunk (capture on, its only other difference)."""
    plain, parsed = GeminiWatcher(None, _Timer(), False), GeminiWatcher(None, _Timer(), True)
    assert plain.feed(events) == parsed.feed(events)
    return plain, parsed


@pytest.mark.parametrize("texts", [
    ["Hello", " wor", "ld"],
    ["Hé", "llo ✓", " 日本"],  # non-ASCII: measured in characters, as parsed
    ["a", 'say \\"hi\\"\\n', "b"],  # escapes: parsed
    ["", "x", "y"],
])
def test_plain_chunks_read_unparsed_give_what_parsing_gives(texts: list[str]) -> None:
    """Mid-stream chunks taken from their raw bytes give the same forwarded bytes, timings,
    delivered output and usage as parsing each, cut short or finished."""
    events = [_text_chunk(text, promptTokenCount=7, candidatesTokenCount=i + 1)
              for i, text in enumerate(texts)]
    plain, parsed = _plain_and_parsed(events)
    assert plain._timer.chunks == parsed._timer.chunks == len(texts) - 1  # type: ignore[union-attr]
    assert plain.output_tokens() == parsed.output_tokens()
    assert plain.usage == parsed.usage  # cut short: the last counts, raised to what was delivered
    last = _text_chunk("!", "STOP", promptTokenCount=7, candidatesTokenCount=9)
    assert plain.feed([last]) == parsed.feed([last])
    assert plain.done and plain.usage == parsed.usage == Usage(input=7, output=9)
    assert plain.response_attributes == parsed.response_attributes


def test_chunks_with_more_to_read_are_parsed() -> None:
    """A thought, a second text part or a blocked prompt mid-stream is read as parsed."""
    thought = _event({"candidates": [{"content": {"parts": [
        {"text": "hmm", "thought": True}, {"text": "Hi"}]}, "index": 0}],
        "usageMetadata": {"promptTokenCount": 3, "thoughtsTokenCount": 4}})
    blocked = _event({"promptFeedback": {"blockReason": "SAFETY"},
                      "usageMetadata": {"promptTokenCount": 3}})
    plain, parsed = _plain_and_parsed([_text_chunk("a"), thought, blocked])
    assert plain.output_tokens() == parsed.output_tokens() == 1
    assert plain.done and plain.usage == parsed.usage == Usage(input=3)


def test_thinking_counts_leave_a_chunk_unparsed_and_a_thought_part_does_not() -> None:
    """A text chunk whose usage counts thinking tokens (or whose part has a thought
    signature) is read unparsed, one with a thought part is parsed, and either way the
    forwarded bytes, delivered output and usage are what parsing every chunk gives."""
    first = _text_chunk("Hi", promptTokenCount=3, thoughtsTokenCount=40)
    counted = _text_chunk(" there", promptTokenCount=3, candidatesTokenCount=2,
                          thoughtsTokenCount=48)
    signed = _text_chunk(" you", flags={"thoughtSignature": "c2lnbmF0dXJl"},
                         promptTokenCount=3, candidatesTokenCount=3, thoughtsTokenCount=48)
    thought = _text_chunk("weighing it up", flags={"thought": True},
                          promptTokenCount=3, candidatesTokenCount=3, thoughtsTokenCount=60)
    plain, parsed = _plain_and_parsed([first, counted, signed])
    assert plain.parsed_event == first and parsed.parsed_event == signed  # two left unparsed
    assert plain.output_tokens() == parsed.output_tokens() == 3
    assert plain.usage == parsed.usage == Usage(input=3, output=51, reasoning=48)
    assert plain.feed([thought]) == parsed.feed([thought])
    assert plain.parsed_event == thought  # its text is a thought, not output
    assert plain.output_tokens() == parsed.output_tokens() == 3
    assert plain.usage == parsed.usage == Usage(input=3, output=63, reasoning=60)


def test_watcher_stops_at_an_error_chunk_and_a_malformed_one() -> None:
    """An error chunk ends the stream as an upstream error; bad JSON as malformed, with a
    Google error chunk for the client."""
    watcher = GeminiWatcher(None, None, capture=False)
    error = wire_errors.error_bytes(500, "boom")
    watcher.feed([b"data: " + error])
    assert watcher.failure is not None and watcher.failure.error_type == "INTERNAL"
    assert event_error(error) == "INTERNAL: boom"
    broken = GeminiWatcher(None, None, capture=False)
    out = broken.feed([b"data: {nope"])
    assert broken.failure is not None and broken.failure.end == "malformed"
    assert orjson.loads(out.removeprefix(b"data: "))["error"]["code"] == 502


def test_a_field_given_by_both_names_is_read_once() -> None:
    """`generationConfig` and `generation_config` together: the JSON name wins, the proto one
    is dropped, so the upstream reads the limit the gateway checked; a proto-named limit
    past the gateway's bound is refused like a JSON-named one."""
    body = {**HELLO, "generationConfig": {"maxOutputTokens": 10},
            "generation_config": {"max_output_tokens": 900_000_000}}
    request = GeminiGenerate().parse_routed(orjson.dumps(body), {"model": "m"}, {})
    assert request.max_tokens == 10
    sent, raw = request.dialect.upstream_body(request, "m")
    assert raw is None and sent == {**HELLO, "generationConfig": {"maxOutputTokens": 10}}
    with pytest.raises(InvalidRequest, match="at most"):
        GeminiGenerate().parse_routed(orjson.dumps(
            {**HELLO, "generation_config": {"max_output_tokens": 900_000_000}}), {"model": "m"}, {})

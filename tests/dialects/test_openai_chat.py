"""The chat completions dialect on its own, without sockets: parsing, the upstream
rewrite, reading a JSON answer and a stream event by event."""

from __future__ import annotations

import orjson
import pytest

from gateway import errors
from gateway.dialects.openai_chat import OpenAIChat
from gateway.dialects.openai_embeddings import OpenAIEmbeddings

CHAT = OpenAIChat()
MESSAGES = [{"role": "user", "content": "hello there"}]


class Ticks:
    """Counts the watcher's chunk timing calls."""

    def __init__(self) -> None:
        self.first = 0
        self.chunks = 0

    def first_chunk(self) -> None:
        self.first += 1

    def chunk(self) -> None:
        self.chunks += 1


def _raw(**body: object) -> bytes:
    return orjson.dumps({"model": "gpt-4.1", "messages": MESSAGES, **body})


def _chunk(content: str | None, finish: str | None = None, usage: object = None) -> bytes:
    delta = {} if content is None else {"content": content}
    choices = [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return b"data: " + orjson.dumps({"id": "c1", "model": "gpt-4.1-up", "choices": choices,
                                     "usage": usage})


def test_parse_reads_the_canonical_call() -> None:
    """Model, stream, max output tokens and the prompt estimate come from the body."""
    request = CHAT.parse(_raw(stream=True, max_completion_tokens=50))
    assert (request.model, request.stream, request.max_tokens) == ("gpt-4.1", True, 50)
    assert request.operation == "chat" and request.dialect is CHAT
    assert request.prompt_tokens == 4 + 3 + 3  # one message, its text, the reply priming


@pytest.mark.parametrize(("raw", "param"), [
    (b"", None), (b"[1]", None), (orjson.dumps({"messages": MESSAGES}), "model"),
    (orjson.dumps({"model": "m"}), "messages"), (_raw(stream="yes"), "stream")])
def test_parse_refuses_bad_bodies(raw: bytes, param: str | None) -> None:
    """Bad bodies are a 400 naming the parameter at fault."""
    with pytest.raises(errors.InvalidRequest) as caught:
        CHAT.parse(raw)
    assert caught.value.param == param


def test_upstream_body_is_what_the_gateway_read_never_the_clients_bytes() -> None:
    """Same model id and no stream: the parsed body goes upstream as is (re-serialised),
    not the client's bytes, so a key given twice reads the same upstream as here."""
    request = CHAT.parse(_raw())
    assert CHAT.upstream_body(request, "gpt-4.1") == (request.body, None)


def test_upstream_body_renames_and_asks_a_stream_for_usage() -> None:
    """Another upstream id, or a stream, rewrites a copy of the body."""
    request = CHAT.parse(_raw(stream=True))
    body, raw = CHAT.upstream_body(request, "gpt-4.1-up")
    assert raw is None and body["model"] == "gpt-4.1-up"
    assert body["stream_options"] == {"include_usage": True}
    assert "stream_options" not in request.body


def test_read_answer_renames_and_reads_usage() -> None:
    """A JSON answer's usage and finish reasons are read; renamed, its model is the gateway's."""
    payload = {"id": "x", "model": "gpt-4.1-up", "usage": {"prompt_tokens": 7,
               "completion_tokens": 2}, "choices": [{"finish_reason": "stop",
                                                     "message": {"content": "hi"}}]}
    reading = CHAT.read_answer(CHAT.parse(_raw()), payload, "gpt-4.1", True, False)
    assert reading.usage is not None and (reading.usage.input, reading.usage.output) == (7, 2)
    assert reading.response_model == "gpt-4.1-up"
    assert reading.body is not None and orjson.loads(reading.body)["model"] == "gpt-4.1"
    assert reading.attributes["gen_ai.response.finish_reasons"] == ["stop"]


def test_watcher_strips_usage_the_client_did_not_ask_for() -> None:
    """Without include_usage: null usage keys and the usage-only chunk are dropped, the
    usage itself is still read, and [DONE] ends the stream."""
    ticks = Ticks()
    watcher = CHAT.watch(CHAT.parse(_raw(stream=True)), "gpt-4.1", False, ticks, False)
    out = watcher.feed([_chunk("a"), _chunk("b"), _chunk(None, "stop"),
                        _chunk(None, usage={"prompt_tokens": 3, "completion_tokens": 2}),
                        b"data: [DONE]", _chunk("late")])
    assert b'"usage"' not in out and out.endswith(b"data: [DONE]\n\n") and b"late" not in out
    assert watcher.done and watcher.failure is None
    assert watcher.usage is not None and watcher.usage.output == 2
    assert (ticks.first, ticks.chunks, watcher.output_tokens()) == (1, 2, 2)


def test_watcher_reads_chunks_after_the_first_from_past_their_shared_prefix() -> None:
    """Chunks starting with the first chunk's bytes up to its choices are searched from
    there on: null usage cut, content counted (empty content not), and a finish reason
    or a usage object after the prefix still read."""
    head = b'data: {"id":"chatcmpl-9xYz","object":"chat.completion.chunk","created":1,"choices":[{'

    def chunk(delta: bytes, finish: bytes = b"null", tail: bytes = b',"usage":null') -> bytes:
        return head + b'"index":0,"delta":{' + delta + b'},"finish_reason":' + finish + b"}]" \
            + tail + b"}"

    ticks = Ticks()
    watcher = CHAT.watch(CHAT.parse(_raw(stream=True)), "gpt-4.1", False, ticks, False)
    out = watcher.feed([chunk(b'"role":"assistant","content":""'), chunk(b'"content":"a"'),
                        chunk(b'"content":""'), chunk(b'"content":"b"', tail=b"")])
    assert out.count(head) == 4 and b'"usage"' not in out
    assert (ticks.first, ticks.chunks, watcher.output_tokens()) == (1, 3, 2)
    out = watcher.feed([chunk(b"", finish=b'"stop"'),
                        chunk(b"", tail=b',"usage":{"prompt_tokens":3,"completion_tokens":2}')])
    assert watcher.finish_reasons == {0: "stop"}
    assert watcher.usage is not None and watcher.usage.output == 2


def test_watcher_ends_on_an_error_event_and_on_malformed_data() -> None:
    """An error chunk is forwarded and ends the stream; a malformed one becomes an error event."""
    watcher = CHAT.watch(CHAT.parse(_raw(stream=True)), "gpt-4.1", False, Ticks(), False)
    event = b'data: {"error": {"message": "boom", "code": "overloaded"}}'
    assert watcher.feed([event]) == event + b"\n\n"
    assert watcher.failure is not None and watcher.failure.error_type == "overloaded"
    watcher = CHAT.watch(CHAT.parse(_raw(stream=True)), "gpt-4.1", False, Ticks(), False)
    out = watcher.feed([b"data: {not json"])
    assert watcher.failure is not None and watcher.failure.end == "malformed"
    assert orjson.loads(out[len(b"data: "):])["error"]["code"] == "malformed_sse"


def test_event_error_detects_only_error_events() -> None:
    """An error event's message is found; a chunk with choices is not an error."""
    assert CHAT.event_error(b'{"error": {"message": "no capacity"}}') == "no capacity"
    assert CHAT.event_error(b'{"choices": [{"delta": {}}], "error": null}') is None


def test_upstream_error_passes_openai_shapes_and_wraps_others() -> None:
    """An OpenAI-shaped error body passes as is; anything else is wrapped in that shape."""
    shaped = b'{"error": {"message": "slow down", "type": "requests"}}'
    assert CHAT.upstream_error(429, shaped) == shaped
    wrapped = orjson.loads(CHAT.upstream_error(502, b"<html>bad gateway</html>"))
    assert wrapped["error"]["message"] == "upstream answered 502: <html>bad gateway</html>"


def test_embeddings_parse_and_attributes() -> None:
    """Embeddings need an input; their encoding format becomes a span attribute."""
    dialect = OpenAIEmbeddings()
    request = dialect.parse(orjson.dumps({"model": "e", "input": ["a"],
                                          "encoding_format": "base64"}))
    assert not request.stream and request.operation == "embeddings"
    assert dialect.request_attributes(request, True) == {
        "gen_ai.request.encoding_formats": ("base64",)}
    with pytest.raises(errors.InvalidRequest):
        dialect.parse(orjson.dumps({"model": "e", "input": []}))

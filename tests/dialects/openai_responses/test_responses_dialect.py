"""The Responses dialect without sockets: request checks, usage and finish reasons of a
`response` object, and the stream watcher reading typed events (usage from the final
response, the model renamed, failures, the owners remembered)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.dialects.openai_responses import wire
from gateway.dialects.openai_responses.responses import OpenAIResponses
from gateway.errors import InvalidRequest
from gateway.usage import Usage


class Timer:
    def __init__(self) -> None:
        self.first = 0
        self.chunks = 0

    def first_chunk(self) -> None:
        self.first += 1

    def chunk(self) -> None:
        self.chunks += 1


def _event(kind: str, **payload: Any) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **payload})


RESPONSE = {"id": "resp_1", "object": "response", "model": "gpt-4.1-2025-04-14",
            "status": "completed", "output": [], "service_tier": "default",
            "usage": {"input_tokens": 100, "input_tokens_details": {"cached_tokens": 40,
                                                                    "cache_write_tokens": 10},
                      "output_tokens": 30, "output_tokens_details": {"reasoning_tokens": 20},
                      "total_tokens": 130}}
STREAM = [
    _event("response.created", sequence_number=0,
           response={**RESPONSE, "status": "in_progress", "usage": None}),
    _event("response.output_item.added", sequence_number=1, output_index=0,
           item={"id": "msg_1", "type": "message", "role": "assistant", "content": []}),
    _event("response.output_text.delta", sequence_number=2, item_id="msg_1", output_index=0,
           content_index=0, delta="Hel"),
    _event("response.output_text.delta", sequence_number=3, item_id="msg_1", output_index=0,
           content_index=0, delta="lo"),
    _event("response.completed", sequence_number=4, response=RESPONSE),
]


def test_usage_counts_cache_reads_writes_and_reasoning() -> None:
    """input_tokens includes the cache's reads and writes, output_tokens the reasoning."""
    assert wire.usage_from(RESPONSE["usage"]) == Usage(input=100, output=30, cache_read=40,
                                                       cache_creation=10, reasoning=20)
    assert wire.usage_from(None) is None


@pytest.mark.parametrize(("response", "reason"), [
    ({"status": "completed", "output": []}, "stop"),
    ({"status": "completed", "output": [{"type": "function_call"}]}, "tool_calls"),
    ({"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}, "length"),
    ({"status": "incomplete", "incomplete_details": {"reason": "content_filter"}},
     "content_filter"),
    ({"status": "failed"}, "error"),
])
def test_finish_reasons(response: dict[str, Any], reason: str) -> None:
    """A response's status (and its output) as one finish reason."""
    assert wire.finish_reason(response) == reason


@pytest.mark.parametrize(("body", "param"), [
    ({"input": "hi"}, "model"),
    ({"model": "m", "input": 3}, "input"),
    ({"model": "m", "stream": "yes"}, "stream"),
    ({"model": "m", "max_output_tokens": 0}, "max_output_tokens"),
])
def test_bad_requests_are_400s_naming_the_parameter(body: dict[str, Any], param: str) -> None:
    """What the API itself would refuse is refused before any upstream is asked."""
    with pytest.raises(InvalidRequest) as info:
        OpenAIResponses().parse(orjson.dumps(body))
    assert info.value.param == param


def test_the_request_is_passed_on_untouched_but_the_model() -> None:
    """Every field reaches the upstream; only the model id changes."""
    body = {"model": "gpt-4.1", "input": [{"type": "function_call_output", "call_id": "c",
                                           "output": "x"}], "tools": [{"type": "web_search"}],
            "previous_response_id": "resp_0", "store": True, "metadata": {"k": "v"}}
    dialect = OpenAIResponses()
    request = dialect.parse(orjson.dumps(body))
    sent, _ = dialect.upstream_body(request, "gpt-4.1-2025-04-14")
    assert sent == {**body, "model": "gpt-4.1-2025-04-14"}


def test_the_watcher_relays_each_event_and_reads_the_final_usage() -> None:
    """Each event forwarded byte for byte (no rename), deltas timed, the usage and finish
    reason read from response.completed, which ends the stream; the owner remembered."""
    remembered: list[tuple[str, str]] = []
    dialect = OpenAIResponses(remember=lambda ident, model: remembered.append((ident, model)))
    request = dialect.parse(b'{"model": "gpt-4.1", "input": "hi", "stream": true}')
    timer = Timer()
    watcher = dialect.watch(request, "gpt-4.1", False, timer, False)
    out = watcher.feed(STREAM)
    assert out == b"".join(e + b"\n\n" for e in STREAM)
    assert watcher.done and watcher.failure is None
    assert watcher.usage == wire.usage_from(RESPONSE["usage"])
    assert (timer.first, timer.chunks) == (1, 1)
    assert watcher.response_attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert watcher.response_model == "gpt-4.1-2025-04-14"
    assert remembered == [("resp_1", "gpt-4.1")]


def test_a_renamed_model_is_rewritten_in_the_events_that_carry_the_response() -> None:
    """With a rename, response.created and response.completed carry the gateway's name;
    the deltas pass unchanged. store false: nothing is remembered."""
    remembered: list[tuple[str, str]] = []
    dialect = OpenAIResponses(remember=lambda ident, model: remembered.append((ident, model)))
    request = dialect.parse(b'{"model": "gpt-4.1", "input": "hi", "store": false}')
    out = dialect.watch(request, "gpt-4.1", True, Timer(), True).feed(STREAM)
    events = [e for e in out.split(b"\n\n") if e]
    assert orjson.loads(events[0].split(b"data: ", 1)[1])["response"]["model"] == "gpt-4.1"
    assert orjson.loads(events[-1].split(b"data: ", 1)[1])["response"]["model"] == "gpt-4.1"
    assert events[2] == STREAM[2] and remembered == []


def test_failures_end_the_stream() -> None:
    """response.failed and error events end the stream as upstream errors; a broken event
    ends it as malformed with an error event for the client."""
    dialect = OpenAIResponses()
    request = dialect.parse(b'{"model": "m", "input": "hi"}')
    failed = _event("response.failed", sequence_number=3,
                    response={**RESPONSE, "status": "failed", "usage": None,
                              "error": {"code": "server_error", "message": "boom"}})
    watcher = dialect.watch(request, "m", False, Timer(), False)
    watcher.feed([STREAM[0], failed])
    assert watcher.done and watcher.failure is not None
    assert watcher.failure.end == "upstream_error"
    broken = dialect.watch(request, "m", False, Timer(), False)
    out = broken.feed([STREAM[0], b"event: response.completed\ndata: {not json"])
    assert broken.failure is not None and broken.failure.end == "malformed"
    assert b"event: error" in out and b'"sequence_number":1' in out
    assert dialect.event_error(failed.split(b"data: ", 1)[1]) == "boom"
    assert dialect.event_error(STREAM[2].split(b"data: ", 1)[1]) is None


def test_the_preamble_is_no_first_token() -> None:
    """The first-token deadline waits past created, in_progress and the first item."""
    dialect = OpenAIResponses()
    assert [dialect.first_token(e) for e in STREAM] == [False, False, True, True, True]


def test_captured_input_reads_instructions_and_text_parts() -> None:
    """With content capture on, instructions are the system instructions and input_text
    parts are text in gen_ai.input.messages."""
    dialect = OpenAIResponses()
    request = dialect.parse(orjson.dumps({
        "model": "m", "instructions": "Be brief.",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "hello"}]}]}))
    attrs = dialect.request_attributes(request, True)
    assert "Be brief." in attrs["gen_ai.system_instructions"]
    messages = orjson.loads(attrs["gen_ai.input.messages"])
    assert messages[-1]["parts"] == [{"type": "text", "content": "hello"}]
    assert attrs["openai.api.type"] == "responses"


def test_the_gateways_error_event_is_numbered_after_the_last_event_relayed() -> None:
    """After deltas (which the watcher does not parse), the watcher's own error event takes
    the number after the last relayed event's; before any event it is 0."""
    dialect = OpenAIResponses()
    request = dialect.parse(b'{"model": "m", "input": "hi", "stream": true}')
    watcher = dialect.watch(request, "m", False, Timer(), False)
    assert b'"sequence_number":0' in watcher.stream_error("cut", "timeout")
    watcher.feed(STREAM[:2])
    watcher.feed(STREAM[2:4])
    event = watcher.stream_error("the upstream stream failed", "timeout")
    payload = orjson.loads(event.split(b"data: ", 1)[1])
    assert payload == {"type": "error", "code": "timeout", "param": None,
                       "message": "the upstream stream failed", "sequence_number": 4}

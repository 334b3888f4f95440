"""The fake upstream speaks api.openai.com's wire format: the official SDK accepts it as real."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import orjson
import pytest
from openai import AsyncOpenAI

from tests.fakes import openai_wire as wire
from tests.fakes.openai_upstream import Behaviour, RunningUpstream, UpstreamState, running_upstream

pytestmark = pytest.mark.integration  # sockets or processes: the slow tier

KEY = "sk-test-0123456789abcdef"
MESSAGES: list[Any] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Say hello to the gateway"},
]
AUTH = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}


@pytest.fixture
async def up() -> AsyncIterator[RunningUpstream]:
    async with running_upstream(api_key=KEY) as upstream:
        yield upstream


@pytest.fixture
async def client(up: RunningUpstream) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(base_url=up.base_url, api_key=KEY, max_retries=0) as sdk:
        yield sdk


async def _raw_post(up: RunningUpstream, path: str, body: Any) -> tuple[int, Any, bytes]:
    """POST with aiohttp so tests can see the exact bytes and headers on the wire."""
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    async with (
        aiohttp.ClientSession() as session,
        session.post(up.base_url + path, data=data, headers=AUTH) as resp,
    ):
        return resp.status, resp.headers, await resp.read()


def _sse_payloads(raw: bytes) -> list[bytes]:
    events = raw.split(b"\n\n")
    assert events[-1] == b""
    assert all(e.startswith(b"data: ") for e in events[:-1])
    return [e[len(b"data: ") :] for e in events[:-1]]


# --- chat completions -----------------------------------------------------


async def test_chat_completion_parses_with_exact_usage(client: AsyncOpenAI) -> None:
    """A plain chat call returns a chat.completion with content and usage derived from prompt."""
    completion = await client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4.1"
    assert completion.service_tier == "default"
    assert (completion.system_fingerprint or "").startswith("fp_")
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content == "This is a fake reply to: Say hello to the gateway"
    assert choice.message.refusal is None
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == wire.count_prompt_tokens(MESSAGES) == 16
    assert completion.usage.completion_tokens == 11
    assert completion.usage.total_tokens == 27


async def test_chat_completion_has_the_real_apis_headers(client: AsyncOpenAI) -> None:
    """The JSON answer carries content-type, x-request-id, openai-processing-ms and rate limits."""
    raw = await client.chat.completions.with_raw_response.create(model="gpt-4.1", messages=MESSAGES)
    assert raw.headers["content-type"] == "application/json"
    assert raw.headers["x-request-id"].startswith("req_")
    assert int(raw.headers["openai-processing-ms"]) >= 0
    assert raw.headers["x-ratelimit-remaining-requests"] == "9999"
    assert raw.request_id == raw.headers["x-request-id"]


async def test_configured_usage_details_are_reported(up: RunningUpstream) -> None:
    """Configured prompt, completion, cached and reasoning tokens come back verbatim."""
    up.state.behaviour = Behaviour(
        prompt_tokens=1000, completion_tokens=50, cached_tokens=400, reasoning_tokens=20
    )
    status, _, body = await _raw_post(up, "/chat/completions", {"model": "o3", "messages": MESSAGES})
    assert status == 200
    usage = orjson.loads(body)["usage"]
    assert usage == {
        "prompt_tokens": 1000,
        "completion_tokens": 50,
        "total_tokens": 1050,
        "prompt_tokens_details": {"cached_tokens": 400, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 20,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
    content = orjson.loads(body)["choices"][0]["message"]["content"]
    assert len(content.split()) == 30


async def test_requests_are_recorded_with_headers_and_body(up: RunningUpstream, client: AsyncOpenAI) -> None:
    """Each request is kept with lower-cased headers and parsed body, unknown fields included."""
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    await client.chat.completions.create(
        model="gpt-4.1",
        messages=MESSAGES,
        extra_headers={"traceparent": traceparent},
        extra_body={"vendor_field": {"x": 1}},
    )
    recorded = up.state.last_request
    assert recorded.path == "/v1/chat/completions"
    assert recorded.headers["traceparent"] == traceparent
    assert recorded.headers["authorization"] == f"Bearer {KEY}"
    assert recorded.body["vendor_field"] == {"x": 1}
    assert recorded.body["messages"] == MESSAGES
    assert up.state.in_flight == 0


async def test_response_model_overrides_the_echo(up: RunningUpstream) -> None:
    """response_model makes the upstream report a dated snapshot instead of echoing the request."""
    up.state.behaviour = Behaviour(response_model="gpt-4.1-2025-04-14")
    _, _, body = await _raw_post(up, "/chat/completions", {"model": "gpt-4.1", "messages": []})
    assert orjson.loads(body)["model"] == "gpt-4.1-2025-04-14"


# --- streaming ------------------------------------------------------------


async def test_stream_without_usage_yields_role_content_and_finish_chunks(
    client: AsyncOpenAI,
) -> None:
    """A stream opens with the role chunk, has one delta per word and ends with finish_reason."""
    stream = await client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True)
    chunks = [chunk async for chunk in stream]
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].choices[0].delta.content == ""
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == "This is a fake reply to: Say hello to the gateway"
    assert len(chunks) == 1 + 11 + 1
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].choices[0].delta.content is None
    assert all(c.usage is None for c in chunks)


async def test_stream_with_include_usage_ends_with_usage_only_chunk(client: AsyncOpenAI) -> None:
    """With include_usage the last chunk has no choices and the usage."""
    stream = await client.chat.completions.create(
        model="gpt-4.1",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 16
    assert chunks[-1].usage.completion_tokens == 11
    assert chunks[-2].choices[0].finish_reason == "stop"


async def test_stream_wire_bytes_match_openai(up: RunningUpstream) -> None:
    """On the wire: text/event-stream, `data: {json}` events, usage null before the last, [DONE]."""
    up.state.behaviour = Behaviour(completion_tokens=6, chunks=3)
    body = {
        "model": "gpt-4.1",
        "messages": MESSAGES,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    status, headers, raw = await _raw_post(up, "/chat/completions", body)
    assert status == 200
    assert headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert headers["Transfer-Encoding"] == "chunked"
    payloads = _sse_payloads(raw)
    assert payloads[-1] == b"[DONE]"
    chunks = [orjson.loads(p) for p in payloads[:-1]]
    assert len(chunks) == 1 + 3 + 1 + 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert all("usage" in c and c["usage"] is None for c in chunks[:-1])
    assert chunks[-2]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["total_tokens"] == 16 + 6


async def test_stream_without_include_usage_has_no_usage_key(up: RunningUpstream) -> None:
    """Without include_usage the chunks carry no usage field at all, as api.openai.com does."""
    body = {"model": "gpt-4.1", "messages": MESSAGES, "stream": True}
    _, _, raw = await _raw_post(up, "/chat/completions", body)
    chunks = [orjson.loads(p) for p in _sse_payloads(raw)[:-1]]
    assert all("usage" not in c for c in chunks)


# --- embeddings and models ------------------------------------------------


async def test_embeddings_decode_from_base64_by_sdk_default(client: AsyncOpenAI) -> None:
    """The SDK asks for base64 by default and decodes it to the same floats as the float format."""
    result = await client.embeddings.create(
        model="text-embedding-3-small", input=["one two", "three"], dimensions=8
    )
    assert [d.index for d in result.data] == [0, 1]
    assert len(result.data[0].embedding) == 8
    expected = wire.embedding_vector("one two", 8)
    assert result.data[0].embedding == pytest.approx(expected, abs=1e-6)
    assert result.usage.prompt_tokens == 3
    assert result.usage.total_tokens == 3


async def test_embeddings_float_format_on_the_wire(up: RunningUpstream) -> None:
    """encoding_format=float returns plain JSON arrays in an `object: list` envelope."""
    body = {"model": "text-embedding-3-small", "input": "hi", "encoding_format": "float"}
    status, _, raw = await _raw_post(up, "/embeddings", body)
    payload = orjson.loads(raw)
    assert status == 200
    assert payload["object"] == "list"
    assert payload["data"][0]["object"] == "embedding"
    assert len(payload["data"][0]["embedding"]) == 1536
    assert isinstance(payload["data"][0]["embedding"][0], float)


async def test_models_list(client: AsyncOpenAI) -> None:
    """GET /v1/models lists the catalogue in OpenAI's list shape."""
    models = [m.id async for m in client.models.list()]
    assert "gpt-4.1" in models
    assert "text-embedding-3-small" in models


# --- errors ---------------------------------------------------------------


async def test_wrong_key_raises_authentication_error(up: RunningUpstream) -> None:
    """A key that does not match the configured one is a 401 invalid_api_key, masked."""
    async with AsyncOpenAI(base_url=up.base_url, api_key="sk-wrong-999999", max_retries=0) as c:
        with pytest.raises(openai.AuthenticationError) as caught:
            await c.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    assert caught.value.code == "invalid_api_key"
    assert "sk-wrong-999999" not in str(caught.value)


async def test_unknown_model_raises_not_found(client: AsyncOpenAI) -> None:
    """A model outside the catalogue is a 404 model_not_found."""
    with pytest.raises(openai.NotFoundError) as caught:
        await client.chat.completions.create(model="gpt-9", messages=MESSAGES)
    assert caught.value.code == "model_not_found"
    assert caught.value.type == "invalid_request_error"


async def test_body_not_json_is_invalid_request(up: RunningUpstream) -> None:
    """A body that is not JSON is a 400 invalid_request_error in OpenAI's error shape."""
    status, _, raw = await _raw_post(up, "/chat/completions", b"{nope")
    assert status == 400
    error = orjson.loads(raw)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"


async def test_missing_messages_raises_bad_request(client: AsyncOpenAI) -> None:
    """A body without messages is a 400 naming the missing parameter."""
    with pytest.raises(openai.BadRequestError) as caught:
        await client.post("/chat/completions", body={"model": "gpt-4.1"}, cast_to=object)
    assert caught.value.param == "messages"


@pytest.mark.parametrize(
    ("status", "exception"),
    [
        (400, openai.BadRequestError),
        (403, openai.PermissionDeniedError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
async def test_injected_status_raises_the_sdks_class(
    up: RunningUpstream, client: AsyncOpenAI, status: int, exception: type[openai.APIStatusError]
) -> None:
    """An injected error status reaches the SDK as its own exception class with OpenAI's body."""
    up.state.behaviour = Behaviour.error(status)
    with pytest.raises(exception) as caught:
        await client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    assert caught.value.status_code == status
    assert isinstance(caught.value.body, dict)
    assert set(caught.value.body) == {"message", "type", "param", "code"}


async def test_rate_limit_carries_retry_after(up: RunningUpstream, client: AsyncOpenAI) -> None:
    """A 429 with retry_after has the Retry-After header and code rate_limit_exceeded."""
    up.state.behaviour = Behaviour.error(429, retry_after=2)
    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.code == "rate_limit_exceeded"


async def test_unknown_url_is_a_json_404(up: RunningUpstream) -> None:
    """Any other path or method gets OpenAI's `Invalid URL` 404 in the error shape."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(up.base_url + "/chat/completions", headers=AUTH) as resp,
    ):
        payload = await resp.json()
    assert resp.status == 404
    assert payload["error"]["message"] == "Invalid URL (GET /v1/chat/completions)"


# --- behaviour selection --------------------------------------------------


async def test_per_model_behaviour_fails_only_that_model(up: RunningUpstream, client: AsyncOpenAI) -> None:
    """per_model lets a primary model fail while a fallback model stays healthy."""
    up.state.per_model["gpt-4.1"] = Behaviour.error(503)
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    ok = await client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES)
    assert ok.model == "gpt-4.1-mini"


async def test_queue_scripts_the_next_answers(up: RunningUpstream, client: AsyncOpenAI) -> None:
    """Queued behaviours answer the next requests in order, then the default resumes."""
    up.state.queue.extend([Behaviour.error(500), Behaviour(content="second")])
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    second = await client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    third = await client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    assert second.choices[0].message.content == "second"
    assert third.choices[0].message.content != "second"


# --- faults ---------------------------------------------------------------


async def test_latency_delays_the_headers(up: RunningUpstream, client: AsyncOpenAI) -> None:
    """latency_s holds the answer back by at least that long."""
    up.state.behaviour = Behaviour(latency_s=0.05)
    started = time.perf_counter()
    await client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    assert time.perf_counter() - started >= 0.05


async def test_stall_sends_headers_before_the_body(up: RunningUpstream) -> None:
    """stall_s flushes the headers, then holds the body back."""
    up.state.behaviour = Behaviour(stall_s=0.2)
    body = orjson.dumps({"model": "gpt-4.1", "messages": MESSAGES})
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        async with session.post(up.base_url + "/chat/completions", data=body, headers=AUTH) as resp:
            headers_at = time.perf_counter() - started
            await resp.read()
            body_at = time.perf_counter() - started
    assert headers_at < 0.15
    assert body_at >= 0.2


async def test_trickle_and_first_chunk_delay_space_the_events(up: RunningUpstream) -> None:
    """first_chunk_delay_s and chunk_delay_s space out the SSE events as they arrive."""
    up.state.behaviour = Behaviour(completion_tokens=3, first_chunk_delay_s=0.2, chunk_delay_s=0.02)
    body = orjson.dumps({"model": "gpt-4.1", "messages": MESSAGES, "stream": True})
    arrivals: list[float] = []
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        async with session.post(up.base_url + "/chat/completions", data=body, headers=AUTH) as resp:
            async for _ in resp.content:
                arrivals.append(time.perf_counter() - started)
    assert arrivals[0] < 0.15
    assert arrivals[2] >= 0.2  # line 0: role event, line 1: its blank separator


async def test_reset_mid_stream_is_a_connection_error(up: RunningUpstream, client: AsyncOpenAI) -> None:
    """reset_after_events aborts the connection and the SDK reports a connection error."""
    up.state.behaviour = Behaviour(reset_after_events=3)
    stream = await client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True)
    received = 0
    with pytest.raises(openai.APIConnectionError):
        async for _ in stream:
            received += 1
    assert received <= 3


async def test_close_without_done_ends_the_body_cleanly(up: RunningUpstream) -> None:
    """close_after_events ends a well-formed chunked body after K events with no [DONE]."""
    up.state.behaviour = Behaviour(close_after_events=2)
    body = {"model": "gpt-4.1", "messages": MESSAGES, "stream": True}
    status, _, raw = await _raw_post(up, "/chat/completions", body)
    assert status == 200
    payloads = _sse_payloads(raw)
    assert len(payloads) == 2
    assert b"[DONE]" not in raw


async def test_garbage_event_breaks_json_parsing(up: RunningUpstream, client: AsyncOpenAI) -> None:
    """garbage_at_event inserts an SSE event whose data is not JSON."""
    up.state.behaviour = Behaviour(garbage_at_event=1)
    stream = await client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True)
    with pytest.raises(ValueError):
        async for _ in stream:
            pass


async def test_error_event_raises_api_error(up: RunningUpstream, client: AsyncOpenAI) -> None:
    """error_event_at sends OpenAI's in-stream error event, which the SDK raises as APIError."""
    up.state.behaviour = Behaviour(error_event_at=2)
    stream = await client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError):
        async for _ in stream:
            pass


async def test_fragmented_events_still_parse(up: RunningUpstream, client: AsyncOpenAI) -> None:
    """fragment_events splits each event over two writes without changing the content."""
    up.state.behaviour = Behaviour(fragment_events=True, completion_tokens=4)
    stream = await client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert len(text.split()) == 4


async def test_malformed_json_body(up: RunningUpstream) -> None:
    """malformed_json answers 200 application/json with a body that does not parse."""
    up.state.behaviour = Behaviour(malformed_json=True)
    status, headers, raw = await _raw_post(
        up, "/chat/completions", {"model": "gpt-4.1", "messages": MESSAGES}
    )
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(raw)


async def test_client_disconnect_is_counted_and_nothing_stays_in_flight(
    up: RunningUpstream,
) -> None:
    """A client leaving a trickling stream cancels the handler, counted as a disconnect."""
    up.state.behaviour = Behaviour(chunk_delay_s=0.05, completion_tokens=50)
    body = orjson.dumps({"model": "gpt-4.1", "messages": MESSAGES, "stream": True})
    async with (
        aiohttp.ClientSession() as session,
        session.post(up.base_url + "/chat/completions", data=body, headers=AUTH) as resp,
    ):
        await resp.content.readline()
        assert up.state.in_flight == 1
    for _ in range(100):
        if up.state.in_flight == 0:
            break
        await asyncio.sleep(0.01)
    assert up.state.in_flight == 0
    assert up.state.client_disconnects == 1
    assert up.open_connections == 0


async def test_state_can_be_passed_in() -> None:
    """A prepared UpstreamState is served as-is, so a test can keep a handle on it."""
    state = UpstreamState(models=None, record=False)
    async with (
        running_upstream(state=state) as up,
        AsyncOpenAI(base_url=up.base_url, api_key="any", max_retries=0) as c,
    ):
        await c.chat.completions.create(model="anything-goes", messages=MESSAGES)
    assert state.total_requests == 1
    assert state.requests == []

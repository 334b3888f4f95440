"""Fault injection: each upstream fault ends in the fallback's answer or a clear
OpenAI-shaped error, with the right spans and metrics, and nothing left open."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from opentelemetry.trace import StatusCode

from gateway.telemetry import names as n
from tests.fakes.openai_upstream import Behaviour, RunningUpstream
from tests.resilience.rig import MESSAGES, Rig, load_chain, rig
from tests.support.telemetry import attrs

pytestmark = pytest.mark.integration  # sockets or processes: the slow tier

FALLBACK_TEXT = "fallback answer"


def _fast_backup(up: RunningUpstream, **primary: Any) -> None:
    up.state.per_model["gpt-4.1"] = Behaviour(**primary)
    up.state.per_model["gpt-4.1-mini"] = Behaviour(content=FALLBACK_TEXT)


async def _chat(r: Rig, model: str = "primary") -> tuple[str, str]:
    """A non-streamed call: (content, x-gateway-model)."""
    raw = await r.sdk.chat.completions.with_raw_response.create(model=model, messages=MESSAGES)
    completion = raw.parse()
    return completion.choices[0].message.content or "", raw.headers["x-gateway-model"]


async def _stream(r: Rig, model: str = "primary") -> str:
    stream = await r.sdk.chat.completions.create(model=model, messages=MESSAGES, stream=True)
    return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])


async def _assert_fell_back(r: Rig, reason: str, error_type: str) -> None:
    first, second = await r.client_spans()
    assert attrs(first)[n.GEN_AI_REQUEST_MODEL] == "primary"
    assert attrs(first)[n.ERROR_TYPE] == error_type
    assert first.status.status_code is StatusCode.ERROR
    assert attrs(first)[n.GATEWAY_ATTEMPT] == 1
    assert attrs(second)[n.GEN_AI_REQUEST_MODEL] == "backup"
    assert n.ERROR_TYPE not in attrs(second)
    assert attrs(second)[n.GATEWAY_ATTEMPT] == 2
    assert attrs(second)[n.GATEWAY_FALLBACK_REASON] == reason
    server = attrs(await r.server_span())
    assert server[n.GATEWAY_MODEL_SERVED] == "backup"
    assert server[n.GATEWAY_MODEL_REQUESTED] == "primary"
    assert server[n.GATEWAY_FALLBACK_REASON] == reason
    assert r.counter(n.M_FALLBACKS, from_model="primary", to_model="backup", reason=reason) == 1


async def test_stall_before_first_byte_falls_back(upstream: RunningUpstream) -> None:
    """A JSON answer whose body stalls past first_token_timeout_s is replaced by the fallback's."""
    _fast_backup(upstream, stall_s=3)
    config = load_chain(upstream.base_url, models={"primary": {"first_token_timeout_s": 0.3}})
    async with rig(upstream, config) as r:
        content, served = await _chat(r)
        assert (content, served) == (FALLBACK_TEXT, "backup")
        await _assert_fell_back(r, "first_token_timeout", "timeout")


async def test_stall_before_first_chunk_falls_back(upstream: RunningUpstream) -> None:
    """A stream with no first event within first_token_timeout_s falls back before commit."""
    _fast_backup(upstream, stall_s=3)
    config = load_chain(upstream.base_url, models={"primary": {"first_token_timeout_s": 0.3}})
    async with rig(upstream, config) as r:
        assert await _stream(r) == FALLBACK_TEXT
        await _assert_fell_back(r, "first_token_timeout", "timeout")


async def test_reset_before_first_event_falls_back(upstream: RunningUpstream) -> None:
    """A connection reset before any event is a connection error: the fallback answers."""
    _fast_backup(upstream, reset_after_events=0)
    async with rig(upstream) as r:
        assert await _stream(r) == FALLBACK_TEXT
        await _assert_fell_back(r, "connection_error", "connection_error")


async def test_reset_mid_stream_ends_with_sse_error(upstream: RunningUpstream) -> None:
    """A reset after commit is not replaced: the SDK raises the SSE error event mid-stream."""
    _fast_backup(upstream, content="one two three four five", reset_after_events=3)
    async with rig(upstream) as r:
        stream = await r.sdk.chat.completions.create(model="primary", messages=MESSAGES,
                                                     stream=True)
        received: list[str] = []
        with pytest.raises(openai.APIError, match="upstream stream failed"):
            async for chunk in stream:
                received.append(chunk.choices[0].delta.content or "")
        assert "".join(received).split() == ["one", "two"]
        (span,) = await r.client_spans()
        assert attrs(span)[n.ERROR_TYPE] == "connection_reset"
        assert attrs(span)[n.GATEWAY_STREAM_END] == "upstream_reset"
        assert r.counter(n.M_FALLBACKS) == 0
        assert r.upstream_models() == ["gpt-4.1"]


@pytest.mark.parametrize("status", [500, 503])
async def test_5xx_retried_then_falls_back(upstream: RunningUpstream, status: int) -> None:
    """A 5xx is retried once with backoff, then the chain moves on to the fallback."""
    _fast_backup(upstream, status=status)
    config = load_chain(upstream.base_url, resilience={
        "retry": {"max_attempts": 2, "initial_backoff_s": 0.05}})
    async with rig(upstream, config) as r:
        assert await _chat(r) == (FALLBACK_TEXT, "backup")
        assert r.upstream_models() == ["gpt-4.1", "gpt-4.1", "gpt-4.1-mini"]
        spans = await r.client_spans()
        assert [attrs(s).get(n.ERROR_TYPE) for s in spans] == [str(status), str(status), None]
        assert [attrs(s)[n.GATEWAY_ATTEMPT] for s in spans] == [1, 2, 3]
        assert r.counter(n.M_RETRIES, **{n.GEN_AI_REQUEST_MODEL: "primary",
                                         n.LABEL_REASON: "status_5xx"}) == 1
        assert r.counter(n.M_FALLBACKS, reason="status_5xx") == 1


async def test_5xx_without_fallback_is_an_openai_error(upstream: RunningUpstream) -> None:
    """With no fallback left, the upstream's 503 reaches the client as an OpenAI error."""
    _fast_backup(upstream)
    upstream.state.per_model["gpt-4o"] = Behaviour(status=503)
    async with rig(upstream) as r:
        with pytest.raises(openai.InternalServerError) as caught:
            await _chat(r, "solo")
        assert caught.value.status_code == 503
        assert isinstance(caught.value.body, dict) and "message" in caught.value.body
        (span,) = await r.client_spans()
        assert attrs(span)[n.ERROR_TYPE] == "503"
        assert attrs(await r.server_span())[n.ERROR_TYPE] == "503"


async def test_429_retry_after_is_honoured(upstream: RunningUpstream) -> None:
    """A 429 with a short Retry-After is retried after at least that long, on the same model."""
    upstream.state.queue.append(Behaviour(status=429, retry_after=0.4))
    config = load_chain(upstream.base_url, resilience={
        "retry": {"max_attempts": 2, "initial_backoff_s": 0.01}})
    async with rig(upstream, config) as r:
        content, served = await _chat(r)
        assert served == "primary" and content
        first, second = upstream.state.requests
        assert second.received_at - first.received_at >= 0.4
        assert r.counter(n.M_RETRIES, **{n.LABEL_REASON: "status_429"}) == 1
        assert r.counter(n.M_FALLBACKS) == 0


async def test_429_long_retry_after_falls_back_at_once(upstream: RunningUpstream) -> None:
    """A Retry-After longer than max_retry_after_s is not waited for: the fallback answers."""
    _fast_backup(upstream, status=429, retry_after=30)
    config = load_chain(upstream.base_url, resilience={"retry": {"max_attempts": 3}})
    async with rig(upstream, config) as r:
        assert await _chat(r) == (FALLBACK_TEXT, "backup")
        assert r.upstream_models() == ["gpt-4.1", "gpt-4.1-mini"]
        await _assert_fell_back(r, "status_429", "429")


async def test_429_without_fallback_keeps_retry_after(upstream: RunningUpstream) -> None:
    """The last model's 429 reaches the client as RateLimitError with the upstream's Retry-After."""
    upstream.state.per_model["gpt-4o"] = Behaviour(status=429, retry_after=30)
    async with rig(upstream) as r:
        with pytest.raises(openai.RateLimitError) as caught:
            await _chat(r, "solo")
        assert caught.value.response.headers["retry-after"] == "30"


async def test_malformed_json_falls_back(upstream: RunningUpstream) -> None:
    """A truncated JSON body is a bad response: the fallback answers."""
    _fast_backup(upstream, malformed_json=True)
    async with rig(upstream) as r:
        assert await _chat(r) == (FALLBACK_TEXT, "backup")
        await _assert_fell_back(r, "bad_response", "bad_response")


async def test_malformed_sse_mid_stream_ends_with_sse_error(upstream: RunningUpstream) -> None:
    """A garbage event after commit ends the stream with an error the SDK raises."""
    _fast_backup(upstream, content="one two three", garbage_at_event=2)
    async with rig(upstream) as r:
        with pytest.raises(openai.APIError, match="malformed event"):
            await _stream(r)
        (span,) = await r.client_spans()
        assert attrs(span)[n.ERROR_TYPE] == "malformed_sse"
        assert span.status.status_code is StatusCode.ERROR


async def test_trickle_after_first_chunk_is_relayed_to_the_end(upstream: RunningUpstream) -> None:
    """A slow but live stream is committed at its first event and relayed whole, past the
    first-token timeout, without a fallback."""
    _fast_backup(upstream, content="a b c d e f", chunk_delay_s=0.1, fragment_events=True)
    config = load_chain(upstream.base_url, models={"primary": {"first_token_timeout_s": 0.3}})
    async with rig(upstream, config) as r:
        assert await _stream(r) == "a b c d e f"
        (span,) = await r.client_spans()
        assert n.ERROR_TYPE not in attrs(span)
        assert attrs(span)[n.GATEWAY_STREAM_END] == "done"
        assert r.counter(n.M_FALLBACKS) == 0


async def test_close_without_done_ends_with_sse_error(upstream: RunningUpstream) -> None:
    """A stream closed without [DONE] ends with an `incomplete_stream` error the SDK raises."""
    _fast_backup(upstream, content="one two three", close_after_events=2)
    async with rig(upstream) as r:
        with pytest.raises(openai.APIError, match="before it was complete"):
            await _stream(r)
        (span,) = await r.client_spans()
        assert attrs(span)[n.ERROR_TYPE] == "incomplete_stream"
        assert attrs(span)[n.GATEWAY_STREAM_END] == "upstream_incomplete"


async def test_client_disconnect_mid_stream_closes_upstream(upstream: RunningUpstream) -> None:
    """A client leaving mid-stream ends the CLIENT span as client_disconnect and closes the
    upstream connection."""
    words = " ".join(f"w{i}" for i in range(40))
    _fast_backup(upstream, content=words, chunk_delay_s=0.05)
    async with rig(upstream) as r:
        stream = await r.sdk.chat.completions.create(model="primary", messages=MESSAGES,
                                                     stream=True)
        seen = 0
        async for _chunk in stream:
            seen += 1
            if seen == 3:
                break
        await stream.close()
        await r.upstream_settled()
        (span,) = await r.client_spans()
        assert attrs(span)[n.ERROR_TYPE] == n.ERROR_CLIENT_DISCONNECT
        assert upstream.state.client_disconnects == 1


async def test_error_event_before_first_token_falls_back(upstream: RunningUpstream) -> None:
    """An in-stream error as the very first event is caught before commit: the fallback answers."""
    _fast_backup(upstream, error_event_at=0)
    async with rig(upstream) as r:
        assert await _stream(r) == FALLBACK_TEXT
        await _assert_fell_back(r, "bad_response", "bad_response")


async def test_error_event_mid_stream_reaches_the_client(upstream: RunningUpstream) -> None:
    """The upstream's own error event after commit is relayed; the SDK raises it."""
    _fast_backup(upstream, content="one two three", error_event_at=2)
    async with rig(upstream) as r:
        with pytest.raises(openai.APIError):
            await _stream(r)
        (span,) = await r.client_spans()
        assert span.status.status_code is StatusCode.ERROR
        assert attrs(span)[n.GATEWAY_STREAM_END] == "upstream_error"


async def test_first_token_rule_passes_a_fast_json_answer(upstream: RunningUpstream) -> None:
    """With the first-token rule on, a prompt JSON answer is read and served as usual."""
    _fast_backup(upstream, content="primary answer")
    config = load_chain(upstream.base_url, models={"primary": {"first_token_timeout_s": 2}})
    async with rig(upstream, config) as r:
        for _ in range(3):
            assert await _chat(r) == ("primary answer", "primary")
        assert r.counter(n.M_FALLBACKS) == 0

"""The chain's logic on the fast tier: fallbacks for each reason, retries and
Retry-After, circuit breakers, budgets, the request and first-token deadlines and
committed streams, through the real path against in-memory upstreams on a fake
clock (no sockets, no real waiting: a 5 s rule takes milliseconds)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway import errors
from gateway.call import Call
from gateway.config import ModelConfig
from gateway.hooks import BaseHook
from gateway.telemetry import names as n
from gateway.testing import FakeClock, MemoryRequest, Reply
from tests.support.inmemory import (
    UPSTREAM_KEY,
    PathRig,
    Upstream,
    after,
    broken_stream,
    ok,
    raises,
    status,
    upstream_ids,
)
from tests.support.telemetry import attrs

PRIMARY = {n.GEN_AI_REQUEST_MODEL: "primary", n.GEN_AI_PROVIDER_NAME: "openai"}


def _rig(clock: FakeClock, up: Upstream, **kwargs: Any) -> PathRig:
    return PathRig(clock, up, **kwargs)


def _fell_back(rig: PathRig, reason: str, error_type: str) -> None:
    """The first attempt failed with `error_type`, the backup served, `reason` recorded."""
    first, second = rig.client_spans()
    assert attrs(first)[n.ERROR_TYPE] == error_type
    assert attrs(second)[n.GEN_AI_REQUEST_MODEL] == "backup"
    assert attrs(second)[n.GATEWAY_FALLBACK_REASON] == reason
    (server,) = rig.server_spans()
    assert attrs(server)[n.GATEWAY_FALLBACK_REASON] == reason
    assert attrs(server)[n.GATEWAY_MODEL_SERVED] == "backup"
    assert rig.counter(n.M_FALLBACKS, from_model="primary", to_model="backup", reason=reason) == 1
    assert rig.unclosed() == 0


# --- fallbacks, one per reason ---------------------------------------------------------


async def test_connection_error_falls_back() -> None:
    """A connection that fails before any answer moves the call to the fallback."""
    async with FakeClock() as clock:
        up = Upstream({"gpt-4.1": raises(ConnectionRefusedError("refused"))})
        rig = _rig(clock, up)
        out = await rig.chat()
        assert (out.status, out.served, out.text()) == (200, "backup", "hello from upstream")
        _fell_back(rig, "connection_error", "connection_error")


async def test_attempt_timeout_falls_back_as_timeout() -> None:
    """An upstream silent past attempt_timeout_s is abandoned at that moment (reason timeout)."""
    async with FakeClock() as clock:
        up = Upstream({"gpt-4.1": after(clock, 60, ok())})
        rig = _rig(clock, up, models={"primary": {"attempt_timeout_s": 2}})
        started = clock.time()
        out = await rig.chat()
        assert out.served == "backup"
        assert up.times[1] - started == pytest.approx(2)
        _fell_back(rig, "timeout", "timeout")


@pytest.mark.parametrize("stream", [False, True])
async def test_slow_primary_degrades_to_fallback_at_5s(stream: bool) -> None:
    """The 5 s rule: a primary answering after 6 s is abandoned at 5 s (not retried) for a
    fallback answering in 50 ms; both attempts are CLIENT spans under the SERVER span."""
    async with FakeClock() as clock:
        up = Upstream({"gpt-4.1": after(clock, 6, ok("too late")),
                       "gpt-4.1-mini": after(clock, 0.05, ok("quick answer"))})
        rig = _rig(clock, up, models={"primary": {"first_token_timeout_s": 5}},
                   resilience={"retry": {"max_attempts": 3}})
        started = clock.time()
        out = await rig.chat(stream=stream)
        assert out.text() == "quick answer"
        assert clock.time() - started == pytest.approx(5.05)
        assert upstream_ids(up.seen) == ["primary", "backup"]
        (server,) = rig.server_spans()
        slow, fast = rig.client_spans()
        for span in (slow, fast):
            assert span.parent is not None and span.parent.span_id == server.context.span_id
        assert attrs(slow)[n.ERROR_TYPE] == "timeout"
        assert attrs(fast)[n.GATEWAY_FALLBACK_REASON] == "first_token_timeout"
        assert attrs(server)[n.GATEWAY_MODEL_SERVED] == "backup"
        assert rig.unclosed() == 0


async def test_first_token_rule_spares_the_last_model() -> None:
    """With no fallback left, a slow model is waited for past first_token_timeout_s."""
    async with FakeClock() as clock:
        up = Upstream({"gpt-4o": after(clock, 6, ok("worth the wait"))})
        rig = _rig(clock, up, models={"solo": {"first_token_timeout_s": 5}})
        out = await rig.chat("solo")
        assert (out.status, out.text()) == (200, "worth the wait")
        assert clock.time() - up.times[0] == pytest.approx(6)


async def test_trickling_stream_is_committed_at_its_first_event() -> None:
    """A stream whose first event beats the first-token rule is relayed to its end, however
    slowly the rest arrives."""
    async def trickle(request: MemoryRequest) -> Reply:
        events = ok("a b c d")(request)
        assert isinstance(events, Reply) and isinstance(events.body, list)
        chunks = list(events.body)

        async def slowly() -> Any:
            for index, chunk in enumerate(chunks):
                if index:
                    await clock.sleep(3)
                yield chunk
        return Reply(200, slowly())

    async with FakeClock() as clock:
        rig = _rig(clock, Upstream({"gpt-4.1": trickle}),
                   models={"primary": {"first_token_timeout_s": 2}})
        out = await rig.chat(stream=True)
        assert (out.served, out.text()) == ("primary", "a b c d")
        assert attrs(rig.client_spans()[0])[n.GATEWAY_STREAM_END] == "done"
        assert rig.counter(n.M_FALLBACKS) == 0


@pytest.mark.parametrize("code", [500, 503])
async def test_5xx_is_retried_with_backoff_then_falls_back(code: int) -> None:
    """A 5xx is retried after the backoff pause, then the chain moves on (status_5xx)."""
    async with FakeClock() as clock:
        up = Upstream({"gpt-4.1": status(code)})
        rig = _rig(clock, up, resilience={"retry": {"max_attempts": 2, "initial_backoff_s": 0.5,
                                                    "jitter": 0}})
        out = await rig.chat()
        assert out.served == "backup"
        assert upstream_ids(up.seen) == ["primary", "primary", "backup"]
        assert up.times[1] - up.times[0] == pytest.approx(0.5)
        spans = rig.client_spans()
        assert [attrs(s).get(n.ERROR_TYPE) for s in spans] == [str(code), str(code), None]
        assert [attrs(s)[n.GATEWAY_ATTEMPT] for s in spans] == [1, 2, 3]
        assert rig.counter(n.M_RETRIES, reason="status_5xx", **PRIMARY) == 1
        assert rig.counter(n.M_FALLBACKS, reason="status_5xx") == 1


async def test_408_falls_back_without_a_retry_by_default() -> None:
    """A 408 moves to the fallback (status_4xx) but is retried only when retry.on lists it."""
    async with FakeClock() as clock:
        up = Upstream({"gpt-4.1": status(408)})
        rig = _rig(clock, up, resilience={"retry": {"max_attempts": 3}})
        assert (await rig.chat()).served == "backup"
        assert upstream_ids(up.seen) == ["primary", "backup"]
        _fell_back(rig, "status_4xx", "408")


async def test_client_error_is_the_answer() -> None:
    """A 400 is the request's own fault: it reaches the client and nothing else is tried."""
    async with FakeClock() as clock:
        up = Upstream({"gpt-4.1": status(400)})
        rig = _rig(clock, up)
        out = await rig.chat()
        assert out.status == 400 and out.json()["error"]["type"] == "invalid_request_error"
        assert upstream_ids(up.seen) == ["primary"]


def _not_json(request: MemoryRequest) -> Reply:
    return Reply(200, b'{"id": "chatcmpl-1", "choices": [')


def _json_for_a_stream(request: MemoryRequest) -> Reply:
    return Reply(200, b'{"id": "chatcmpl-1"}')


def _empty_stream(request: MemoryRequest) -> Reply:
    return Reply(200, [b": keep-alive\n\n"])


def _error_first(request: MemoryRequest) -> Reply:
    return Reply(200, [b'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n'])


@pytest.mark.parametrize(("behave", "stream"), [
    (_not_json, False), (_json_for_a_stream, True), (_empty_stream, True), (_error_first, True),
], ids=["truncated-json", "json-for-a-stream", "no-data-event", "error-event-first"])
async def test_bad_response_falls_back(behave: Any, stream: bool) -> None:
    """A body that is not JSON, a stream that is not one, a stream without data and an error
    as the first event are bad responses: the fallback answers before anything is sent."""
    async with FakeClock() as clock:
        rig = _rig(clock, Upstream({"gpt-4.1": behave}))
        out = await rig.chat(stream=stream)
        assert (out.status, out.served, out.text()) == (200, "backup", "hello from upstream")
        _fell_back(rig, "bad_response", "bad_response")


def _two_providers() -> dict[str, Any]:
    """`primary` on provider `off`, whose key variable is unset; the rest on `up`."""
    def provider(key_var: str) -> dict[str, Any]:
        return {"kind": "openai", "base_url": "http://upstream.invalid/v1",
                "api_key": "${" + key_var + "}", "provider_name": "openai"}
    return {"extra": {"providers": {"up": provider("UPSTREAM_KEY"), "off": provider("OFF_KEY")}},
            "models": {"primary": {"provider": "off"}}}


async def test_unconfigured_provider_falls_back() -> None:
    """A model whose provider has no API key is skipped for the next (provider_not_configured)."""
    async with FakeClock() as clock:
        up = Upstream()
        rig = _rig(clock, up, **_two_providers())
        assert (await rig.chat()).served == "backup"
        assert upstream_ids(up.seen) == ["backup"]
        _fell_back(rig, "provider_not_configured", "provider_not_configured")


async def test_provider_without_the_dialect_is_passed_over() -> None:
    """A provider that does not speak the call's dialect is passed over for the next model,
    and the last model's refusal is a 501."""
    async with FakeClock() as clock:
        up = Upstream()
        rig = _rig(clock, up, **_two_providers(), environ={"UPSTREAM_KEY": UPSTREAM_KEY,
                                                           "OFF_KEY": "sk-off"})
        rig.providers["off"].dialects = frozenset()
        assert (await rig.chat()).served == "backup"
        assert rig.counter(n.M_FALLBACKS, reason="dialect_not_supported") == 1
        rig.providers["up"].dialects = frozenset()
        assert (await rig.chat("solo")).status == 501
        assert upstream_ids(up.seen) == ["backup"]


# --- retries and Retry-After -----------------------------------------------------------


@pytest.mark.parametrize("header", [{"retry_after": "7"}, {"retry_after_ms": "7000"}])
async def test_retry_after_is_honoured(header: dict[str, str]) -> None:
    """A 429's Retry-After (seconds or milliseconds) is waited out before retrying the same
    model, instead of the shorter backoff."""
    async with FakeClock() as clock:
        up = Upstream(queue=[status(429, **header)])
        rig = _rig(clock, up, resilience={"retry": {"max_attempts": 2,
                                                    "initial_backoff_s": 0.01}})
        out = await rig.chat()
        assert (out.status, out.served) == (200, "primary")
        assert up.times[1] - up.times[0] == pytest.approx(7)
        assert rig.counter(n.M_RETRIES, reason="status_429") == 1
        assert rig.counter(n.M_FALLBACKS) == 0


async def test_retry_after_past_the_deadline_falls_back_at_once() -> None:
    """A Retry-After that would outlast the request's deadline is not waited: the fallback
    is called at once."""
    async with FakeClock() as clock:
        up = Upstream({"gpt-4.1": status(429, retry_after="8")})
        rig = _rig(clock, up, models={"primary": {"request_timeout_s": 5}},
                   resilience={"retry": {"max_attempts": 3}})
        assert (await rig.chat()).served == "backup"
        assert up.times[1] == up.times[0]
        _fell_back(rig, "status_429", "429")


async def test_retry_after_over_the_cap_falls_back_at_once() -> None:
    """A Retry-After longer than max_retry_after_s is not waited for."""
    async with FakeClock() as clock:
        up = Upstream({"gpt-4.1": status(429, retry_after="30")})
        rig = _rig(clock, up, resilience={"retry": {"max_attempts": 3}})
        assert (await rig.chat()).served == "backup"
        assert upstream_ids(up.seen) == ["primary", "backup"]
        assert up.times[1] == up.times[0]


async def test_last_models_429_keeps_its_retry_after() -> None:
    """The last model's 429 reaches the client with the upstream's Retry-After."""
    async with FakeClock() as clock:
        rig = _rig(clock, Upstream({"gpt-4o": status(429, retry_after="30")}))
        out = await rig.chat("solo")
        assert out.status == 429 and out.headers["retry-after"] == "30"


async def test_retries_stop_at_the_deadline_and_fall_back() -> None:
    """Backoff pauses are taken only while they fit in the request's deadline; then the
    fallback answers, within the deadline."""
    async with FakeClock() as clock:
        up = Upstream({"gpt-4.1": status(503)})
        rig = _rig(clock, up, models={"primary": {
            "request_timeout_s": 1.0,
            "retry": {"max_attempts": 10, "initial_backoff_s": 0.3, "jitter": 0}}})
        started = clock.time()
        assert (await rig.chat()).served == "backup"
        # pauses of 0.3 and 0.6 s fit; the next, 1.2 s, would not
        assert [round(t - started, 6) for t in up.times] == [0, 0.3, 0.9, 0.9]
        assert upstream_ids(up.seen) == ["primary", "primary", "primary", "backup"]


# --- circuit breakers ------------------------------------------------------------------


async def test_breaker_opens_skips_probes_and_closes() -> None:
    """Consecutive failures open the circuit (gauge 2); calls skip to the fallback
    (circuit_open) without reaching the model; after the cooldown one probe passes
    (gauge 1) while the others still skip, and its success closes the circuit (gauge 0)."""
    reached, gate = asyncio.Event(), asyncio.Event()

    async def gated(request: MemoryRequest) -> Reply:
        reached.set()
        await gate.wait()
        answer = ok("probe answer")(request)
        assert isinstance(answer, Reply)
        return answer

    async with FakeClock() as clock:
        up = Upstream({"gpt-4.1": status(500)})
        rig = _rig(clock, up, models={"primary": {"circuit_breaker": {
            "failure_threshold": 2, "cooldown_s": 30}}})
        assert [(await rig.chat()).served for _ in range(2)] == ["backup", "backup"]
        assert rig.gauge(n.M_CIRCUIT_STATE, **PRIMARY) == 2
        assert (await rig.chat()).served == "backup"
        assert upstream_ids(up.seen).count("primary") == 2, "an open circuit reached primary"
        assert rig.counter(n.M_FALLBACKS, reason="circuit_open") == 1

        await clock.advance(29)
        assert (await rig.chat()).served == "backup", "still cooling down"
        await clock.advance(1)
        up.by_model["gpt-4.1"] = gated
        probe = asyncio.create_task(rig.chat())
        await reached.wait()
        assert rig.gauge(n.M_CIRCUIT_STATE, **PRIMARY) == 1
        assert (await rig.chat()).served == "backup", "half-open lets only the probe through"
        gate.set()
        assert (await probe).served == "primary"
        assert rig.gauge(n.M_CIRCUIT_STATE, **PRIMARY) == 0
        assert (await rig.chat()).served == "primary"


async def test_failed_probe_opens_the_circuit_again() -> None:
    """A probe that fails opens the circuit for another full cooldown."""
    async with FakeClock() as clock:
        up = Upstream({"gpt-4.1": status(500)})
        rig = _rig(clock, up, models={"primary": {"circuit_breaker": {
            "failure_threshold": 1, "cooldown_s": 10}}})
        await rig.chat()
        await clock.advance(10)
        await rig.chat()  # the probe, failing
        assert rig.gauge(n.M_CIRCUIT_STATE, **PRIMARY) == 2
        await clock.advance(9)
        await rig.chat()
        assert upstream_ids(up.seen).count("primary") == 2
        await clock.advance(1)
        up.by_model["gpt-4.1"] = ok()
        assert (await rig.chat()).served == "primary"
        assert rig.gauge(n.M_CIRCUIT_STATE, **PRIMARY) == 0


async def test_breaker_opened_by_retries_falls_back_for_the_failure() -> None:
    """When a model's own retries open its circuit, the call falls back at once with the
    failure's reason rather than circuit_open."""
    async with FakeClock() as clock:
        up = Upstream({"gpt-4.1": status(500)})
        rig = _rig(clock, up, models={"primary": {
            "retry": {"max_attempts": 5, "initial_backoff_s": 1},
            "circuit_breaker": {"failure_threshold": 2}}})
        assert (await rig.chat()).served == "backup"
        assert upstream_ids(up.seen) == ["primary", "primary", "backup"]
        assert rig.counter(n.M_FALLBACKS, reason="status_5xx") == 1
        assert rig.gauge(n.M_CIRCUIT_STATE, **PRIMARY) == 2


# --- budgets ---------------------------------------------------------------------------


class OverBudget(BaseHook):
    """A spend hook whose budget refuses the named models."""

    def __init__(self, *models: str) -> None:
        self.models = set(models)
        self.asked: list[str] = []

    async def on_attempt(self, call: Call, model: ModelConfig) -> None:
        self.asked.append(model.name)
        if model.name in self.models:
            raise errors.BudgetExceeded(f"budget 'team-a' is exhausted for model '{model.name}'")


async def test_budget_refusal_degrades_when_configured() -> None:
    """With on_budget_exceeded: fallback, a refused model is skipped without a call (budget)."""
    async with FakeClock() as clock:
        up, hook = Upstream(), OverBudget("primary")
        rig = _rig(clock, up, hooks=[hook], models={"primary": {"on_budget_exceeded": "fallback"}})
        assert (await rig.chat()).served == "backup"
        assert upstream_ids(up.seen) == ["backup"] and hook.asked == ["primary", "backup"]
        (span,) = rig.client_spans()
        assert attrs(span)[n.GATEWAY_FALLBACK_REASON] == "budget"
        assert rig.counter(n.M_FALLBACKS, from_model="primary", to_model="backup",
                           reason="budget") == 1


async def test_budget_refusal_stands_by_default() -> None:
    """Without on_budget_exceeded: fallback, the budget's 429 is the answer."""
    async with FakeClock() as clock:
        up = Upstream()
        rig = _rig(clock, up, hooks=[OverBudget("primary")])
        out = await rig.chat()
        assert out.status == 429 and out.json()["error"]["code"] == "budget_exceeded"
        assert up.seen == []


async def test_fallback_over_budget_is_refused() -> None:
    """A fallback is checked against the budgets too: an over-budget fallback is not called."""
    async with FakeClock() as clock:
        up, hook = Upstream({"gpt-4.1": status(500)}), OverBudget("backup")
        rig = _rig(clock, up, hooks=[hook])
        assert (await rig.chat()).status == 429
        assert hook.asked == ["primary", "backup"] and upstream_ids(up.seen) == ["primary"]


# --- the request deadline --------------------------------------------------------------


async def test_request_deadline_bounds_every_attempt() -> None:
    """Stalled models cannot keep a call past request_timeout_s: 504 request_timeout then,
    and nothing else is tried."""
    async with FakeClock() as clock:
        up = Upstream({"gpt-4.1": after(clock, 60, ok()), "gpt-4.1-mini": after(clock, 60, ok())})
        rig = _rig(clock, up, models={"primary": {"request_timeout_s": 8, "attempt_timeout_s": 5}})
        started = clock.time()
        out = await rig.chat()
        assert clock.time() - started == pytest.approx(8)
        assert out.status == 504 and out.json()["error"]["code"] == "request_timeout"
        assert [attrs(s)[n.ERROR_TYPE] for s in rig.client_spans()] == ["timeout", "timeout"]
        assert rig.counter(n.M_FALLBACKS, reason="timeout") == 1
        assert rig.unclosed() == 0


# --- after commit ----------------------------------------------------------------------


async def test_stream_broken_after_commit_is_not_retried() -> None:
    """Once the first event reached the client nothing is retried or replaced: a reset ends
    the stream with an SSE error event, and the breaker counts the failure."""
    async with FakeClock() as clock:
        up = Upstream({"gpt-4.1": broken_stream("one two three four", events=3)})
        rig = _rig(clock, up, resilience={"retry": {"max_attempts": 3}},
                   models={"primary": {"circuit_breaker": {"failure_threshold": 1}}})
        out = await rig.chat(stream=True)
        assert (out.status, out.served) == (200, "primary")
        assert out.text() == "one two"
        last = out.events()[-1]
        assert last["error"]["message"].startswith("the upstream stream failed")
        assert upstream_ids(up.seen) == ["primary"]
        (span,) = rig.client_spans()
        assert attrs(span)[n.ERROR_TYPE] == "connection_reset"
        assert attrs(span)[n.GATEWAY_STREAM_END] == "upstream_reset"
        assert rig.gauge(n.M_CIRCUIT_STATE, **PRIMARY) == 2
        assert rig.counter(n.M_FALLBACKS) == 0 and rig.counter(n.M_RETRIES) == 0
        assert rig.unclosed() == 0


# --- rate limits -----------------------------------------------------------------------


async def test_rate_limit_bucket_refills_on_the_clock() -> None:
    """Past requests_per_minute a call is refused with Retry-After; once that much time has
    passed on the clock, it fits again."""
    async with FakeClock() as clock:
        up = Upstream()
        rig = _rig(clock, up, extra={"rate_limits": {"default": {"requests_per_minute": 2}}})
        assert [(await rig.chat("solo")).status for _ in range(2)] == [200, 200]
        refused = await rig.chat("solo")
        assert refused.status == 429 and refused.headers["retry-after"] == "30"
        await clock.advance(30)
        assert (await rig.chat("solo")).status == 200
        assert len(up.seen) == 3

"""Circuit breakers, budgets and the request deadline steer the fallback chain."""

from __future__ import annotations

import asyncio
import re
import time

import openai
import pytest

from gateway import errors
from gateway.call import Call
from gateway.config import ModelConfig
from gateway.hooks import BaseHook
from gateway.telemetry import names as n
from tests.fakes.openai_upstream import Behaviour, RunningUpstream
from tests.resilience.rig import MESSAGES, Rig, load_chain, rig
from tests.support.telemetry import attrs

PRIMARY = {n.GEN_AI_REQUEST_MODEL: "primary", n.GEN_AI_PROVIDER_NAME: "openai"}


class OverBudget(BaseHook):
    """A spend hook whose budget refuses the named models."""

    def __init__(self, *models: str) -> None:
        self.models = set(models)
        self.asked: list[str] = []

    async def on_attempt(self, call: Call, model: ModelConfig) -> None:
        self.asked.append(model.name)
        if model.name in self.models:
            raise errors.BudgetExceeded(f"budget 'team-a' is exhausted for model '{model.name}'")


async def _served(r: Rig) -> str:
    raw = await r.sdk.chat.completions.with_raw_response.create(model="primary", messages=MESSAGES)
    return raw.headers["x-gateway-model"]


async def test_breaker_opens_skips_and_probes(upstream: RunningUpstream) -> None:
    """Consecutive failures open the circuit (gauge 2), requests skip to the fallback with
    reason circuit_open, and after the cooldown one probe (gauge 1) closes it again (gauge 0)."""
    upstream.state.per_model["gpt-4.1"] = Behaviour(status=500)
    config = load_chain(upstream.base_url, models={"primary": {"circuit_breaker": {
        "failure_threshold": 2, "cooldown_s": 0.5}}})
    async with rig(upstream, config) as r:
        assert [await _served(r), await _served(r)] == ["backup", "backup"]
        assert r.gauge(n.M_CIRCUIT_STATE, **PRIMARY) == 2
        assert await _served(r) == "backup"
        assert r.upstream_models().count("gpt-4.1") == 2, "an open circuit still reached primary"
        assert r.counter(n.M_FALLBACKS, reason="circuit_open") == 1
        assert attrs(r.tt.spans_named("POST")[-1])[n.GATEWAY_FALLBACK_REASON] == "circuit_open"

        upstream.state.per_model["gpt-4.1"] = Behaviour(latency_s=0.4)
        r.max_idle = 2  # the probe and the request beside it use a connection each
        await asyncio.sleep(0.6)
        probe = asyncio.create_task(_served(r))
        await asyncio.sleep(0.15)
        assert r.gauge(n.M_CIRCUIT_STATE, **PRIMARY) == 1
        assert await _served(r) == "backup", "half-open lets only the probe through"
        assert await probe == "primary"
        assert r.gauge(n.M_CIRCUIT_STATE, **PRIMARY) == 0
        assert await _served(r) == "primary"


async def test_budget_refusal_degrades_when_configured(upstream: RunningUpstream) -> None:
    """With on_budget_exceeded: fallback, a budget refusal moves to the next model (reason
    budget) without calling the refused model's upstream."""
    config = load_chain(upstream.base_url, models={"primary": {"on_budget_exceeded": "fallback"}})
    hook = OverBudget("primary")
    async with rig(upstream, config, hooks=[hook]) as r:
        assert await _served(r) == "backup"
        assert r.upstream_models() == ["gpt-4.1-mini"]
        assert hook.asked == ["primary", "backup"]
        (span,) = await r.client_spans()
        assert attrs(span)[n.GATEWAY_FALLBACK_REASON] == "budget"
        assert attrs(await r.server_span())[n.GATEWAY_FALLBACK_REASON] == "budget"
        assert r.counter(n.M_FALLBACKS, from_model="primary", to_model="backup",
                         reason="budget") == 1


async def test_budget_refusal_stands_by_default(upstream: RunningUpstream) -> None:
    """Without on_budget_exceeded: fallback, the budget's 429 is the answer."""
    async with rig(upstream, hooks=[OverBudget("primary")]) as r:
        with pytest.raises(openai.RateLimitError) as caught:
            await _served(r)
        assert isinstance(caught.value.body, dict)
        assert caught.value.body.get("code") == "budget_exceeded"
        assert r.upstream_models() == []


async def test_fallback_to_a_model_over_budget_is_refused(upstream: RunningUpstream) -> None:
    """A fallback is checked against the budgets too: an over-budget fallback is not called."""
    upstream.state.per_model["gpt-4.1"] = Behaviour(status=500)
    hook = OverBudget("backup")
    async with rig(upstream, hooks=[hook]) as r:
        with pytest.raises(openai.RateLimitError):
            await _served(r)
        assert hook.asked == ["primary", "backup"]
        assert r.upstream_models() == ["gpt-4.1"]


async def test_request_deadline_bounds_every_attempt(upstream: RunningUpstream) -> None:
    """Stalled models cannot make a request wait past request_timeout_s: 504 request_timeout."""
    upstream.state.per_model["gpt-4.1"] = Behaviour(latency_s=5)
    upstream.state.per_model["gpt-4.1-mini"] = Behaviour(latency_s=5)
    config = load_chain(upstream.base_url, models={"primary": {
        "request_timeout_s": 0.8, "attempt_timeout_s": 0.4}})
    async with rig(upstream, config) as r:
        started = time.monotonic()
        with pytest.raises(openai.APIStatusError) as caught:
            await _served(r)
        elapsed = time.monotonic() - started
        assert caught.value.status_code == 504
        assert isinstance(caught.value.body, dict)
        assert caught.value.body.get("code") == "request_timeout"
        assert 0.7 < elapsed < 1.5
        assert [attrs(s)[n.ERROR_TYPE] for s in await r.client_spans()] == ["timeout", "timeout"]
        assert r.counter(n.M_FALLBACKS, reason="timeout") == 1


async def test_retries_stop_at_the_deadline_and_fall_back(upstream: RunningUpstream) -> None:
    """Backoff that would outlast the request's deadline is not waited: the fallback answers
    within the deadline."""
    upstream.state.per_model["gpt-4.1"] = Behaviour(status=503)
    config = load_chain(upstream.base_url, models={"primary": {
        "request_timeout_s": 1.0,
        "retry": {"max_attempts": 10, "initial_backoff_s": 0.3, "jitter": 0}}})
    async with rig(upstream, config) as r:
        started = time.monotonic()
        assert await _served(r) == "backup"
        assert time.monotonic() - started < 1.0
        assert 2 <= r.upstream_models().count("gpt-4.1") <= 3


async def test_prometheus_names_match_the_docs(upstream: RunningUpstream) -> None:
    """/metrics shows gateway_fallbacks_total, gateway_retries_total, gateway_circuit_state
    and gateway_rate_limited_total with the documented labels."""
    upstream.state.per_model["gpt-4.1"] = Behaviour(status=500)
    config = load_chain(upstream.base_url, resilience={"retry": {"max_attempts": 2,
                                                                 "initial_backoff_s": 0.01}},
                        extra={"rate_limits": {"default": {"requests_per_minute": 1}}})
    async with rig(upstream, config) as r:
        assert await _served(r) == "backup"
        with pytest.raises(openai.RateLimitError):
            await _served(r)
        text = r.tt.telemetry.metrics_text().decode()
    expected = {
        "gateway_fallbacks_total": {"from_model": "primary", "to_model": "backup",
                                    "reason": "status_5xx"},
        "gateway_retries_total": {"gen_ai_request_model": "primary",
                                  "gen_ai_provider_name": "openai", "reason": "status_5xx"},
        "gateway_circuit_state": {"gen_ai_request_model": "primary",
                                  "gen_ai_provider_name": "openai"},
        "gateway_rate_limited_total": {"gateway_key_alias": "anonymous", "gateway_limit": "rpm"},
    }
    series = [_series(line) for line in text.splitlines() if line.startswith("gateway_")]
    for name, labels in expected.items():
        assert any(s_name == name and labels.items() <= s_labels.items()
                   for s_name, s_labels in series), (name, labels)


def _series(line: str) -> tuple[str, dict[str, str]]:
    name, _, rest = line.partition("{")
    return name, dict(re.findall(r'(\w+)="([^"]*)"', rest))


async def test_breaker_opened_by_retries_falls_back_for_the_failure(
        upstream: RunningUpstream) -> None:
    """When a model's own retries open its circuit, the request falls back right away,
    with the failure's reason rather than circuit_open."""
    upstream.state.per_model["gpt-4.1"] = Behaviour(status=500)
    config = load_chain(upstream.base_url, models={"primary": {
        "retry": {"max_attempts": 5, "initial_backoff_s": 0.01},
        "circuit_breaker": {"failure_threshold": 2}}})
    async with rig(upstream, config) as r:
        assert await _served(r) == "backup"
        assert r.upstream_models() == ["gpt-4.1", "gpt-4.1", "gpt-4.1-mini"]
        assert r.counter(n.M_FALLBACKS, reason="status_5xx") == 1
        assert r.gauge(n.M_CIRCUIT_STATE, **PRIMARY) == 2

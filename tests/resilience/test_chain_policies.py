"""The chain's wiring with real sockets and real time: the request deadline, a breaker
opened by retries, and the resilience metrics on /metrics. The chain's logic, with
budgets and the breaker's cooldown and probe, is tested on the fast tier
(tests/path/test_chain.py)."""

from __future__ import annotations

import re
import time

import openai
import pytest

from gateway.telemetry import names as n
from tests.fakes.openai_upstream import Behaviour, RunningUpstream
from tests.resilience.rig import MESSAGES, Rig, load_chain, rig
from tests.support.telemetry import attrs

pytestmark = pytest.mark.integration  # sockets or processes: the slow tier

PRIMARY = {n.GEN_AI_REQUEST_MODEL: "primary", n.GEN_AI_PROVIDER_NAME: "openai"}


async def _served(r: Rig) -> str:
    raw = await r.sdk.chat.completions.with_raw_response.create(model="primary", messages=MESSAGES)
    return raw.headers["x-gateway-model"]


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

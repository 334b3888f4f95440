"""Metrics: names, units, bucket boundaries and attributes, in memory and on /metrics."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from openai import AsyncOpenAI

from gateway.telemetry import names as n
from tests.fakes.openai_upstream import Behaviour, RunningUpstream
from tests.support.gateway import RunningGateway

pytestmark = pytest.mark.integration  # sockets or processes: the slow tier

MESSAGES = [{"role": "user", "content": "hello"}]


async def _calls(gw: RunningGateway, upstream: RunningUpstream) -> None:
    upstream.state.behaviour = Behaviour(content="x y z", completion_tokens=3, prompt_tokens=20)
    async with AsyncOpenAI(base_url=gw.base_url, api_key="x", max_retries=0) as sdk:
        await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
        stream = await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES,
                                                   stream=True)
        async for _ in stream:
            pass
    # The client can read the stream's last byte before the handler has finished
    # and counted the request: wait for it rather than race it (reading the tally
    # itself, as a collection would use up the exemplars under test).
    requests = gw.telemetry.telemetry.instruments.tallies.requests
    for _ in range(200):
        if sum(requests._sums.values()) >= 2:
            break
        await asyncio.sleep(0.01)


async def test_instrument_names_units_buckets(gw: RunningGateway,
                                              upstream: RunningUpstream) -> None:
    """The four gen_ai histograms use the semconv names, units and advised buckets."""
    await _calls(gw, upstream)
    metrics = gw.telemetry.metrics()
    expected = {
        n.M_OPERATION_DURATION: ("s", n.DURATION_BUCKETS),
        n.M_TOKEN_USAGE: ("{token}", n.TOKEN_BUCKETS),
        n.M_TIME_TO_FIRST_CHUNK: ("s", n.DURATION_BUCKETS),
        n.M_TIME_PER_OUTPUT_CHUNK: ("s", n.DURATION_BUCKETS),
    }
    for name, (unit, buckets) in expected.items():
        metric = metrics[name]
        assert metric.unit == unit, name
        point = next(iter(metric.data.data_points))
        assert tuple(point.explicit_bounds) == tuple(float(b) for b in buckets), name


async def test_metric_attributes(gw: RunningGateway, upstream: RunningUpstream) -> None:
    """Duration and token points carry the semconv attributes, tokens split by type."""
    await _calls(gw, upstream)
    tel = gw.telemetry
    duration = tel.points(n.M_OPERATION_DURATION)[0]
    assert dict(duration.attributes) == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4.1", "gen_ai.response.model": "gpt-4.1",
        "server.address": "127.0.0.1", "server.port": upstream.port,
    }
    types = {p.attributes["gen_ai.token.type"]: p.sum for p in tel.points(n.M_TOKEN_USAGE)}
    assert types == {"input": 40, "output": 6}
    ttfc = tel.points(n.M_TIME_TO_FIRST_CHUNK)[0]
    assert dict(ttfc.attributes) == {"gen_ai.operation.name": "chat",
                                     "gen_ai.provider.name": "openai",
                                     "gen_ai.request.model": "gpt-4.1"}
    assert tel.points(n.M_TIME_PER_OUTPUT_CHUNK)[0].count >= 2


async def test_gateway_counters(gw: RunningGateway, upstream: RunningUpstream) -> None:
    """Requests, cost and tokens counters move with model, provider, key and team labels."""
    await _calls(gw, upstream)
    tel = gw.telemetry
    # The client has its last byte a moment before the server finishes its bookkeeping.
    for _ in range(100):
        requests = tel.points(n.M_REQUESTS)
        if sum(p.value for p in requests) == 2:
            break
        await asyncio.sleep(0.01)
    assert sum(p.value for p in requests) == 2
    assert dict(requests[0].attributes)["http.response.status_code"] == 200
    cost = tel.points(n.M_COST)
    assert abs(sum(p.value for p in cost) - 2 * (20 * 2.5 + 3 * 8) / 1e6) < 1e-12
    labels = dict(cost[0].attributes)
    assert labels["gateway.key.alias"] == "anonymous" and labels["gen_ai.provider.name"] == "openai"
    tokens = {p.attributes["gen_ai.token.type"]: p.value for p in tel.points(n.M_TOKENS)}
    assert tokens == {"input": 40, "output": 6}


async def test_unknown_model_does_not_create_series(gw: RunningGateway) -> None:
    """Typo'd model names are counted under one `_unknown` label, never their own series."""
    async with aiohttp.ClientSession() as http:
        for typo in ("gpt-4.l", "gpt4.1", "GPT-4.1"):
            async with http.post(f"{gw.base_url}/chat/completions",
                                 json={"model": typo, "messages": MESSAGES}) as resp:
                assert resp.status == 404
    models = {p.attributes["gen_ai.request.model"] for p in gw.telemetry.points(n.M_REQUESTS)}
    assert models == {"_unknown"}


async def test_exemplars_link_to_trace(gw: RunningGateway, upstream: RunningUpstream) -> None:
    """Duration points carry an exemplar with the CLIENT span's trace id."""
    await _calls(gw, upstream)
    client = gw.telemetry.spans_named("chat gpt-4.1")[0]
    point = gw.telemetry.points(n.M_OPERATION_DURATION)[0]
    trace_ids = {e.trace_id for e in point.exemplars}
    assert client.context.trace_id in trace_ids or any(
        s.context.trace_id in trace_ids for s in gw.telemetry.spans_named("chat"))


async def test_prometheus_text_names(gw: RunningGateway, upstream: RunningUpstream) -> None:
    """/metrics shows the Prometheus names from TELEMETRY.md with the right suffixes."""
    await _calls(gw, upstream)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{gw.root}/metrics") as resp:
            text = await resp.text()
    for name in (
        "gen_ai_client_operation_duration_seconds_bucket",
        "gen_ai_client_token_usage_bucket",
        "gen_ai_client_operation_time_to_first_chunk_seconds_bucket",
        "gen_ai_client_operation_time_per_output_chunk_seconds_bucket",
        "gateway_requests_total",
        "gateway_cost_usd_total",
        "gateway_tokens_total",
        "gateway_overhead_seconds_bucket",
        "gateway_active_requests",
    ):
        assert f"\n{name}{{" in text, name
    assert 'le="81.92"' in text and 'le="67108864"' in text
    assert 'gen_ai_token_type="input"' in text


async def test_error_type_only_on_failures(gw: RunningGateway, upstream: RunningUpstream) -> None:
    """A success's points carry no error.type (in memory and on /metrics, where the
    exporter's empty `error_type=""` is dropped); a failure's carry it."""
    await _calls(gw, upstream)
    upstream.state.behaviour = Behaviour(status=500)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{gw.base_url}/chat/completions",
                             json={"model": "cheap", "messages": MESSAGES}) as resp:
            assert resp.status == 500
        async with http.get(f"{gw.root}/metrics") as resp:
            text = await resp.text()
    points = gw.telemetry.points(n.M_OPERATION_DURATION)
    by_model = {p.attributes["gen_ai.request.model"]: dict(p.attributes) for p in points}
    assert "error.type" not in by_model["gpt-4.1"] and by_model["cheap"]["error.type"] == "500"
    assert 'error_type=""' not in text and 'error_type="500"' in text
    success = [line for line in text.splitlines()
               if line.startswith("gen_ai_client_operation_duration_seconds_count")
               and 'gen_ai_request_model="gpt-4.1"' in line]
    assert success and not any("error_type" in line for line in success)

"""The real `python -m gateway serve` process exports over OTLP (HTTP and gRPC),
flushes on SIGTERM, keeps secrets out of everything, and survives a dead collector."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import aiohttp
import pytest
from openai import AsyncOpenAI

from tests.fakes.openai_upstream import Behaviour, RunningUpstream, running_upstream
from tests.support.gateway import upstream_config
from tests.support.otlp_receiver import Received, grpc_receiver, http_receiver
from tests.support.process import GatewayProcess, free_port, gateway_process

pytestmark = pytest.mark.integration  # sockets or processes: the slow tier

PROVIDER_KEY = "sk-provider-topsecret-1234567890"
CLIENT_KEY = "sk-client-topsecret-0987654321"
MESSAGES = [{"role": "user", "content": "hello"}]


def _env(endpoint: str, protocol: str) -> dict[str, str]:
    return {
        "UPSTREAM_KEY": PROVIDER_KEY,
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_METRIC_EXPORT_INTERVAL": "500",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "GATEWAY_LOG_LEVEL": "DEBUG",
    }


async def _traffic(proc: GatewayProcess) -> tuple[str, bytes]:
    async with AsyncOpenAI(base_url=proc.base_url, api_key=CLIENT_KEY, max_retries=0) as sdk:
        await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
        stream = await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES,
                                                   stream=True)
        async for _ in stream:
            pass
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{proc.base_url}/chat/completions",
                             headers={"authorization": f"Bearer {CLIENT_KEY}"},
                             json={"model": "nope", "messages": MESSAGES}) as resp:
            error_body = await resp.read()
        async with http.get(f"{proc.root}/metrics") as resp:
            metrics_text = await resp.text()
    return metrics_text, error_body


async def _stop(proc: GatewayProcess) -> None:
    proc.proc.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(proc.proc.wait, 30)
    assert code == 0, proc.log()


def _check_export(received: Received) -> None:
    names = {span.name for span in received.spans()}
    assert {"POST /v1/chat/completions", "chat gpt-4.1"} <= names
    metrics = {m.name: m for m in received.metric_list()}
    duration = metrics["gen_ai.client.operation.duration"]
    assert duration.unit == "s"
    points = duration.histogram.data_points
    assert list(points[0].explicit_bounds)[-1] == 81.92
    span_traces = {span.trace_id for span in received.spans()}
    exemplar_traces = {e.trace_id for m in received.metric_list()
                       if m.name == "gen_ai.client.operation.duration"
                       for p in m.histogram.data_points for e in p.exemplars}
    assert exemplar_traces and exemplar_traces <= span_traces
    assert metrics["gen_ai.client.token.usage"].unit == "{token}"
    assert "gen_ai.client.operation.time_to_first_chunk" in metrics
    assert "gateway.requests" in metrics and "gateway.cost.usd" in metrics
    assert received.resource_attributes()["service.name"] == "llm-gateway"


def _assert_no_secrets(*blobs: Any) -> None:
    for blob in blobs:
        data = blob if isinstance(blob, bytes) else str(blob).encode()
        for secret in (PROVIDER_KEY, CLIENT_KEY):
            assert secret.encode() not in data
            assert secret[-10:].encode() not in data


async def test_otlp_http_export_flushes_on_sigterm() -> None:
    """Over OTLP/HTTP, spans and metrics (with exemplars) arrive, flushed at SIGTERM."""
    async with running_upstream(api_key=PROVIDER_KEY) as up, http_receiver() as (endpoint, got):
        config = upstream_config(up.base_url)
        async with gateway_process(config, _env(endpoint, "http/protobuf")) as proc:
            metrics_text, error_body = await _traffic(proc)
            await _stop(proc)
            log = proc.log()
        _check_export(got)
        _assert_no_secrets(metrics_text, error_body, log, *got.raw)
        assert up.state.requests[0].headers["authorization"] == f"Bearer {PROVIDER_KEY}"


async def test_otlp_grpc_export() -> None:
    """Over OTLP/gRPC, spans and metrics arrive too."""
    async with running_upstream(api_key=PROVIDER_KEY) as up:
        with grpc_receiver() as (endpoint, got):
            async with gateway_process(upstream_config(up.base_url), _env(endpoint, "grpc")) as p:
                await _traffic(p)
                await _stop(p)
            _check_export(got)


async def test_unreachable_collector_does_not_fail_requests(upstream: RunningUpstream) -> None:
    """With the collector down, every request still succeeds and shutdown still completes."""
    upstream.state.api_key = None
    env = _env(f"http://127.0.0.1:{free_port()}", "http/protobuf")
    async with gateway_process(upstream_config(upstream.base_url), env) as proc:
        async with AsyncOpenAI(base_url=proc.base_url, api_key="x", max_retries=0) as sdk:
            for _ in range(5):
                result = await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
                assert result.choices
        await _stop(proc)


async def test_sdk_disabled_keeps_serving(upstream: RunningUpstream) -> None:
    """OTEL_SDK_DISABLED=true turns telemetry off without breaking requests."""
    upstream.state.api_key = None
    env = {"UPSTREAM_KEY": "k", "OTEL_SDK_DISABLED": "true"}
    upstream.state.behaviour = Behaviour(content="ok")
    async with gateway_process(upstream_config(upstream.base_url), env) as proc:
        async with AsyncOpenAI(base_url=proc.base_url, api_key="x", max_retries=0) as sdk:
            raw = await sdk.chat.completions.with_raw_response.create(
                model="gpt-4.1", messages=MESSAGES)
            assert raw.parse().choices[0].message.content == "ok"
            assert "traceresponse" not in raw.headers
            assert raw.headers["x-request-id"]
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{proc.root}/metrics") as resp:
                assert "gateway_requests_total" not in await resp.text()

"""Graceful shutdown of the real `python -m gateway serve` process on SIGTERM: new
connections are refused, a stream in flight completes (or is cut cleanly at the
shutdown deadline), and its telemetry is exported before the process exits."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI

from tests.conftest import UPSTREAM_KEY
from tests.fakes.openai_upstream import Behaviour, running_upstream
from tests.resilience.rig import MESSAGES, chain_config
from tests.support.otlp_receiver import Received, http_receiver
from tests.support.process import GatewayProcess, gateway_process

pytestmark = pytest.mark.integration  # sockets or processes: the slow tier

WORDS = " ".join(f"w{i}" for i in range(30))


def _env(endpoint: str) -> dict[str, str]:
    return {
        "UPSTREAM_KEY": UPSTREAM_KEY,
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{endpoint}/v1/traces",
        "OTEL_BSP_SCHEDULE_DELAY": "60000",  # nothing leaves before the shutdown flush
    }


def _config(base_url: str, shutdown_timeout_s: float) -> str:
    return chain_config(base_url, extra={"server": {"shutdown_timeout_s": shutdown_timeout_s}})


def _span_attrs(received: Received, name: str) -> dict[str, Any]:
    spans = [s for s in received.spans() if s.name == name]
    assert len(spans) == 1, [s.name for s in received.spans()]
    out: dict[str, Any] = {}
    for kv in spans[0].attributes:
        value = kv.value
        out[kv.key] = value.string_value or value.int_value or value.bool_value
    return out


async def _refuses_new_connections(proc: GatewayProcess) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 3
    async with aiohttp.ClientSession() as http:
        while loop.time() < deadline:
            try:
                async with http.get(f"{proc.root}/health") as resp:
                    await resp.read()
            except aiohttp.ClientConnectionError:
                return True
            await asyncio.sleep(0.05)
    return False


async def _exit_code(proc: GatewayProcess) -> int:
    return await asyncio.to_thread(proc.proc.wait, 30)


async def test_stream_in_flight_at_sigterm_completes_and_is_exported() -> None:
    """SIGTERM mid-stream: no new connections, the stream runs to [DONE], spans are flushed."""
    behaviour = Behaviour(content=WORDS, chunk_delay_s=0.05)
    async with running_upstream(api_key=UPSTREAM_KEY, per_model={"gpt-4.1": behaviour}) as up, \
            http_receiver() as (endpoint, received):
        async with gateway_process(_config(up.base_url, 20), _env(endpoint)) as proc, \
                AsyncOpenAI(base_url=proc.base_url, api_key="k", max_retries=0) as sdk:
            stream = await sdk.chat.completions.create(model="primary", messages=MESSAGES,
                                                       stream=True)
            parts: list[str] = []
            async for chunk in stream:
                parts.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
                if len(parts) == 3:
                    proc.proc.send_signal(signal.SIGTERM)
                    assert await _refuses_new_connections(proc)
            assert "".join(parts).split() == WORDS.split()
            assert await _exit_code(proc) == 0, proc.log()
        client = _span_attrs(received, "chat primary")
        assert client["gateway.stream.end"] == "done"
        assert "error.type" not in client
        server = _span_attrs(received, "POST /v1/chat/completions")
        assert server["http.response.status_code"] == 200


async def test_stream_past_the_shutdown_deadline_is_cut_cleanly() -> None:
    """A stream outliving server.shutdown_timeout_s ends with an SSE error the SDK raises,
    its span says `cancelled`, and the process still flushes telemetry and exits."""
    behaviour = Behaviour(content=WORDS, chunk_delay_s=0.3)
    async with running_upstream(api_key=UPSTREAM_KEY, per_model={"gpt-4.1": behaviour}) as up, \
            http_receiver() as (endpoint, received):
        async with gateway_process(_config(up.base_url, 1), _env(endpoint)) as proc, \
                AsyncOpenAI(base_url=proc.base_url, api_key="k", max_retries=0) as sdk:
            stream = await sdk.chat.completions.create(model="primary", messages=MESSAGES,
                                                       stream=True)
            started = 0.0
            with pytest.raises(openai.APIError, match="shutting down"):
                async for _chunk in stream:
                    if not started:
                        started = time.monotonic()
                        proc.proc.send_signal(signal.SIGTERM)
            assert 0.8 < time.monotonic() - started < 5
            assert await _exit_code(proc) == 0, proc.log()
        client = _span_attrs(received, "chat primary")
        assert client["error.type"] == "cancelled"
        assert up.state.in_flight == 0

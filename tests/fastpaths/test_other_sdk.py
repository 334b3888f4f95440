"""The gateway on a really installed OpenTelemetry SDK outside the tested range: it starts,
says so in one log line, and exports correct telemetry through the SDK's own classes.

The other SDK (the minor version below the pin, with its OTLP/HTTP exporter and
Prometheus reader) is installed by pip into a directory under the temp dir, kept
there for later runs, and put first on the gateway process's PYTHONPATH.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import aiohttp
import pytest
from openai import AsyncOpenAI

from tests.fakes.openai_upstream import running_upstream
from tests.support.gateway import upstream_config
from tests.support.otlp_receiver import http_receiver
from tests.support.process import gateway_process

pytestmark = pytest.mark.integration  # sockets or processes: the slow tier

SDK = "1.44.0"
CONTRIB = "0.65b0"
PACKAGES = (
    f"opentelemetry-api=={SDK}", f"opentelemetry-sdk=={SDK}",
    f"opentelemetry-semantic-conventions=={CONTRIB}",
    f"opentelemetry-exporter-otlp-proto-http=={SDK}",
    f"opentelemetry-exporter-otlp-proto-common=={SDK}", f"opentelemetry-proto=={SDK}",
    f"opentelemetry-exporter-prometheus=={CONTRIB}",
)
PROVIDER_KEY = "sk-provider-other-sdk-123456"
MESSAGES = [{"role": "user", "content": "hello"}]


def _other_sdk() -> Path:
    """The directory holding the other SDK, installed on first use."""
    target = Path(tempfile.gettempdir(), f"llm-gateway-test-opentelemetry-{SDK}")
    if (target / ".complete").exists():
        return target
    partial = Path(tempfile.mkdtemp(prefix=target.name + "-", dir=target.parent))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
         str(partial), *PACKAGES], capture_output=True, text=True, timeout=240)
    if result.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        pytest.skip(f"pip could not install OpenTelemetry {SDK}: {result.stderr[-500:]}")
    (partial / ".complete").touch()
    try:
        partial.rename(target)  # a concurrent run that got there first keeps its copy
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)
    return target


async def test_an_untested_sdk_falls_back_to_its_own_classes_and_exports_correctly() -> None:
    """With SDK 1.44 installed, spans with the gen_ai attributes reach an OTLP sink through
    the SDK's own exporter, metrics show on /metrics, and one log line says why."""
    other = await asyncio.to_thread(_other_sdk)
    path = os.pathsep.join(p for p in (str(other), os.environ.get("PYTHONPATH", "")) if p)
    async with running_upstream(api_key=PROVIDER_KEY) as up, http_receiver() as (endpoint, got):
        env = {"UPSTREAM_KEY": PROVIDER_KEY, "PYTHONPATH": path,
               "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{endpoint}/v1/traces",
               "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_BSP_SCHEDULE_DELAY": "100"}
        async with gateway_process(upstream_config(up.base_url), env) as proc:
            async with AsyncOpenAI(base_url=proc.base_url, api_key="x", max_retries=0) as sdk:
                answer = await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
                stream = await sdk.chat.completions.create(
                    model="gpt-4.1", messages=MESSAGES, stream=True,
                    stream_options={"include_usage": True})
                async for _ in stream:
                    pass
            async with aiohttp.ClientSession() as http, http.get(f"{proc.root}/metrics") as resp:
                metrics = await resp.text()
            proc.proc.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(proc.proc.wait, 30) == 0, proc.log()
            log = proc.log()
    fallback = [line for line in log.splitlines() if "fast paths:" in line]
    assert len(fallback) == 1, log
    assert f"opentelemetry-sdk {SDK} is outside the tested range" in fallback[0]
    assert got.trace_agents and all(
        agent == f"OTel-OTLP-Exporter-Python/{SDK}" for agent in got.trace_agents)
    clients = [s for s in got.spans() if s.name == "chat gpt-4.1"]
    assert len(clients) == 2
    for span in clients:
        attributes = {kv.key: kv.value for kv in span.attributes}
        assert attributes["gen_ai.operation.name"].string_value == "chat"
        assert attributes["gen_ai.request.model"].string_value == "gpt-4.1"
        assert attributes["gen_ai.provider.name"].string_value
        assert attributes["gen_ai.usage.input_tokens"].int_value > 0
        assert attributes["gen_ai.usage.output_tokens"].int_value > 0
    servers = [s for s in got.spans() if s.name == "POST /v1/chat/completions"]
    assert {s.trace_id for s in servers} == {s.trace_id for s in clients}
    assert answer.usage is not None
    assert 'gen_ai_client_token_usage_sum{' in metrics
    assert 'gen_ai_client_operation_duration_seconds_count{' in metrics
    assert "gateway_requests_total{" in metrics
    assert PROVIDER_KEY not in log and PROVIDER_KEY not in metrics

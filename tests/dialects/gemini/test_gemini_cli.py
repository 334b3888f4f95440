"""Gemini CLI itself (the npm package `@google/gemini-cli`, run as
`gemini -p PROMPT --output-format json`) answers through the gateway: with
GOOGLE_GEMINI_BASE_URL at the gateway, its stream reaches a fake Gemini upstream, and
the gateway's trace and spend show it.

The package is installed with npm into a cache directory once (`GEMINI_CLI_CACHE`,
default ~/.cache/llm-gateway-tests/gemini-cli); the test is skipped only when npm is
not installed or Node.js is older than the CLI needs (20).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from tests.fakes.gemini_upstream import Behaviour, RunningGemini, running_gemini
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.npm import npm_client, run_json
from tests.support.telemetry import attrs

pytestmark = pytest.mark.integration

VERSION = os.environ.get("GEMINI_CLI_VERSION", "0.61.0")
GATEWAY_KEY = "sk-gw-gemini-cli-test"
UPSTREAM_KEY = "AIzaSy-upstream-cli-test"
CONFIG = """
providers:
  google: {{kind: gemini, base_url: "{url}", api_key: "${{GEMINI_API_KEY}}"}}
models:
  gemini-2.5-flash:
    provider: google
    price_per_mtok: {{input: 0.3, output: 2.5}}
  "gemini-*":                 # any other id the CLI asks for, passed through as requested
    provider: google
    price_per_mtok: {{input: 0.3, output: 2.5}}
keys:
  - {{alias: gemini-cli, team: dev, key_env: GATEWAY_KEY}}
"""


def _gemini() -> Path:
    return npm_client("@google/gemini-cli", VERSION, "gemini", label="Gemini CLI",
                      cache_env="GEMINI_CLI_CACHE", cache_name="gemini-cli", min_node=20)


@pytest.fixture
async def upstream() -> AsyncIterator[RunningGemini]:
    async with running_gemini(Behaviour(text="Hello from Gemini, via the gateway",
                                        prompt=5000, candidates=9, thoughts=40),
                              api_key=UPSTREAM_KEY) as up:
        yield up


@pytest.fixture
async def gw(upstream: RunningGemini) -> AsyncIterator[RunningGateway]:
    env = {"GEMINI_API_KEY": UPSTREAM_KEY, "GATEWAY_KEY": GATEWAY_KEY}
    async with running_gateway(CONFIG.format(url=upstream.base_url), environ=env) as gateway:
        yield gateway


async def test_gemini_cli_answers_through_the_gateway(
        tmp_path: Path, gw: RunningGateway, upstream: RunningGemini) -> None:
    """`gemini -p` with GOOGLE_GEMINI_BASE_URL at the gateway prints the upstream's answer;
    the gateway key (x-goog-api-key) is accepted and never forwarded, and the call is
    traced and costed with its thinking tokens."""
    binary = await asyncio.to_thread(_gemini)
    settings = tmp_path / ".gemini"
    settings.mkdir()
    # The CLI picks its auth from the environment or settings; a base URL alone selects
    # a "gateway" type this version does not accept, so the API-key type is chosen here.
    (settings / "settings.json").write_text(
        orjson.dumps({"security": {"auth": {"selectedType": "gemini-api-key"}}}).decode())
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "GOOGLE_GEMINI_BASE_URL": gw.root,
        "GEMINI_API_KEY": GATEWAY_KEY,
        "GEMINI_CLI_TRUST_WORKSPACE": "true",
    }
    result = await run_json(binary, "-p", "Say hello", "--output-format", "json", "-m",
                            "gemini-2.5-flash", cwd=tmp_path, env=env)
    assert result["response"] == "Hello from Gemini, via the gateway"
    assert result["stats"]["models"]["gemini-2.5-flash"]["tokens"]["thoughts"] == 40

    calls = [r for r in upstream.state.requests if r.path.endswith(":streamGenerateContent")]
    assert calls, "Gemini CLI streamed nothing to the upstream"
    seen = calls[-1]
    assert seen.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert seen.headers["x-goog-api-key"] == UPSTREAM_KEY
    assert GATEWAY_KEY not in orjson.dumps(seen.headers).decode()

    await asyncio.sleep(0.05)
    span = attrs(gw.telemetry.spans_named("generate_content gemini-2.5-flash")[-1])
    assert span["gen_ai.provider.name"] == "gcp.gemini"
    assert span["gateway.key.alias"] == "gemini-cli"
    assert span["gen_ai.usage.output_tokens"] == 49
    assert span["gen_ai.usage.reasoning.output_tokens"] == 40
    assert span["gateway.cost.usd"] > 0 and span["gateway.stream.end"] == "done"

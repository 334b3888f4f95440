"""Claude Code itself (the npm package `@anthropic-ai/claude-code`, run as
`claude -p PROMPT --output-format json`) answers through the gateway: its Messages
stream reaches a fake Anthropic upstream, and the gateway's trace and spend show it.

The package is installed with npm into a cache directory once (`CLAUDE_CODE_CACHE`,
default ~/.cache/llm-gateway-tests/claude-code); the test is skipped only when npm is
not installed.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from tests.fakes.anthropic_upstream import Behaviour, RunningAnthropic, running_anthropic
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.npm import npm_client, run_json
from tests.support.telemetry import attrs

pytestmark = pytest.mark.integration

VERSION = os.environ.get("CLAUDE_CODE_VERSION", "2.1.197")
GATEWAY_KEY = "sk-gw-claude-code-test"
UPSTREAM_KEY = "sk-ant-api03-upstream-test"
CONFIG = """
providers:
  anthropic: {{kind: anthropic, base_url: "{url}", api_key: "${{ANTHROPIC_API_KEY}}"}}
models:
  claude-sonnet-4.5:
    provider: anthropic
    upstream_model: claude-sonnet-4-5-20250929
    price_per_mtok: {{input: 3, output: 15}}
  "claude-*":                 # Claude Code's own ids, passed through as requested
    provider: anthropic
    price_per_mtok: {{input: 3, output: 15}}
keys:
  - {{alias: claude-code, team: dev, key_env: GATEWAY_KEY}}
"""


def _claude() -> Path:
    return npm_client("@anthropic-ai/claude-code", VERSION, "claude", label="Claude Code",
                      cache_env="CLAUDE_CODE_CACHE", cache_name="claude-code")


@pytest.fixture
async def upstream() -> AsyncIterator[RunningAnthropic]:
    async with running_anthropic(Behaviour(text="Hello from Claude, via the gateway"),
                                 api_key=UPSTREAM_KEY) as up:
        yield up


@pytest.fixture
async def gw(upstream: RunningAnthropic) -> AsyncIterator[RunningGateway]:
    env = {"ANTHROPIC_API_KEY": UPSTREAM_KEY, "GATEWAY_KEY": GATEWAY_KEY}
    async with running_gateway(CONFIG.format(url=upstream.base_url), environ=env) as gateway:
        yield gateway


@pytest.mark.parametrize(("key_variable", "model"), [("ANTHROPIC_API_KEY", None),
                                                     ("ANTHROPIC_AUTH_TOKEN", "claude-sonnet-4.5")])
async def test_claude_code_answers_through_the_gateway(
        tmp_path: Path, gw: RunningGateway, upstream: RunningAnthropic, key_variable: str,
        model: str | None) -> None:
    """`claude -p` with ANTHROPIC_BASE_URL at the gateway prints the upstream's answer; the
    gateway key (x-api-key, or Bearer with an auth token) is accepted and never forwarded,
    Claude Code's beta list and `?beta=true` reach the upstream, and the call is traced and costed. Its own
    model ids reach the upstream as they are through the `claude-*` entry; a configured
    model chosen with ANTHROPIC_MODEL gets its upstream id."""
    binary = await asyncio.to_thread(_claude)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "ANTHROPIC_BASE_URL": gw.root,
        key_variable: GATEWAY_KEY,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
    if model is not None:
        env["ANTHROPIC_MODEL"] = env["ANTHROPIC_SMALL_FAST_MODEL"] = model
    result = await run_json(binary, "-p", "Say hello", "--output-format", "json",
                            cwd=tmp_path, env=env)
    assert result["is_error"] is False and result["result"] == "Hello from Claude, via the gateway"

    calls = [r for r in upstream.requests if r.path == "/v1/messages"]
    assert calls, "Claude Code sent nothing to the upstream"
    seen = calls[-1]
    if model is not None:
        assert seen.body["model"] == "claude-sonnet-4-5-20250929"
    else:
        assert seen.body["model"].startswith("claude-") and seen.body["model"] != "claude-*"
    assert seen.body["stream"] is True
    assert seen.query == "beta=true"  # Claude Code calls the SDK's beta client
    assert seen.headers["x-api-key"] == UPSTREAM_KEY and "authorization" not in seen.headers
    assert "claude-code-20250219" in seen.headers["anthropic-beta"]
    assert GATEWAY_KEY not in orjson.dumps(seen.headers).decode()

    await asyncio.sleep(0.05)
    spans = gw.telemetry.spans_named(f"chat {model or 'claude-*'}")
    assert len(spans) == len(calls)
    span = attrs(spans[-1])
    assert span["gen_ai.provider.name"] == "anthropic"
    assert span["gateway.key.alias"] == "claude-code"
    assert span["gen_ai.usage.input_tokens"] > 1000  # Claude Code's system prompt and tools
    assert span["gateway.cost.usd"] > 0 and span["gateway.stream.end"] == "done"
    server = [s for s in gw.telemetry.finished_spans() if s.name.endswith("/v1/messages")]
    assert server and spans[-1].parent is not None
    assert spans[-1].parent.span_id == server[-1].context.span_id
    # Claude Code's metadata.user_id names the end user, bounded to 128 characters
    user_id = seen.body["metadata"]["user_id"]
    end_user = attrs(server[-1])["user.id"]
    assert len(end_user) <= 128 and end_user[:60] == user_id[:60]

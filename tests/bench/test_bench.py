"""The benchmark's parts do what the numbers assume: a faithful floor proxy, right ratios."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest
import yaml
from aiohttp import web

from bench import bare_proxy, gateway_config, load, report
from tests.fakes.openai_upstream import Behaviour, RunningUpstream, running_upstream

KEY = "sk-bench"
BODY = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi there"}]}


@pytest.fixture
async def upstream() -> AsyncIterator[RunningUpstream]:
    async with running_upstream(api_key=KEY) as up:
        yield up


@pytest.fixture
async def proxy_url(upstream: RunningUpstream) -> AsyncIterator[str]:
    runner = web.AppRunner(bare_proxy.create_app(upstream.base_url, KEY), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    finally:
        await runner.cleanup()


async def test_bare_proxy_forwards_body_and_swaps_in_its_key(
    upstream: RunningUpstream, proxy_url: str
) -> None:
    """The bare proxy sends the client's body unchanged, with its own upstream key."""
    headers = {"Authorization": "Bearer sk-client"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(proxy_url + "/chat/completions", json=BODY, headers=headers) as resp,
    ):
        payload = await resp.json()
    assert resp.status == 200
    assert payload["object"] == "chat.completion"
    assert upstream.state.last_request.body == BODY
    assert upstream.state.last_request.headers["authorization"] == f"Bearer {KEY}"


async def test_bare_proxy_relays_stream_events_as_they_arrive(
    upstream: RunningUpstream, proxy_url: str
) -> None:
    """A trickling stream's first event reaches the client long before the last."""
    upstream.state.behaviour = Behaviour(completion_tokens=5, chunk_delay_s=0.05)
    body = orjson.dumps({**BODY, "stream": True})
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        async with session.post(proxy_url + "/chat/completions", data=body) as resp:
            await resp.content.readuntil(b"\n\n")
            first_at = time.perf_counter() - started
            rest = await resp.read()
    assert first_at < 0.15
    assert rest.endswith(b"data: [DONE]\n\n")


async def test_bare_proxy_passes_upstream_errors_through(upstream: RunningUpstream, proxy_url: str) -> None:
    """An upstream error status and body reach the client unchanged."""
    upstream.state.behaviour = Behaviour.error(429, retry_after=1)
    async with (
        aiohttp.ClientSession() as session,
        session.post(proxy_url + "/chat/completions", json=BODY) as resp,
    ):
        payload = await resp.json()
    assert resp.status == 429
    assert payload["error"]["code"] == "rate_limit_exceeded"


def test_gateway_config_deep_merges_extras(tmp_path: Path) -> None:
    """Extra YAML merges into the generated config without dropping the base models."""
    extra = tmp_path / "extra.yaml"
    extra.write_text("models:\n  gpt-4.1: {price_per_mtok: {input: 3}}\nkeys: {k1: {}}\n")
    config = yaml.safe_load(gateway_config.render("http://u/v1", ["gpt-4.1", "b"], extra))
    assert config["models"]["gpt-4.1"]["price_per_mtok"] == {
        "input": 3,
        "output": 8,
        "cached_input": 0.625,
    }
    assert config["models"]["b"]["provider"] == "up"
    assert config["providers"]["up"]["api_key"] == "${BENCH_UPSTREAM_KEY:-sk-bench}"
    assert config["keys"] == {"k1": {}}


def _cell(target: str, rps: float, p50: float) -> report.Cell:
    result = load.WrkResult(
        requests=int(rps * 2), duration_s=2.0, p50_ms=p50, p90_ms=p50, p99_ms=p50, errors=0, bytes=0
    )
    return report.Cell(target, "json", 32, result, 100.0)


def test_report_ratios_are_against_the_bare_proxy() -> None:
    """The table's ratio and added p50 compare each target with the bare proxy's cell."""
    runs = [
        report.TargetRun("bare", "floor", [_cell("bare", 1000, 2.0)]),
        report.TargetRun("gateway", "gw", [_cell("gateway", 700, 2.5)]),
    ]
    table = report.throughput_table(runs)
    assert "| gateway | json | 32 | 700 | 2.50 | 2.50 | 0.70 | +0.50 | 100 | 7 | 0 |" in table
    checks = report.target_checks(runs)
    assert checks == [
        "- [x] json req/s at 32 conns >= 0.50 of bare (issue 2): met",
        "- [x] json req/s at 32 conns >= 0.65 of bare (issue 6): met",
    ]


def test_lua_script_carries_body_key_and_summary(tmp_path: Path) -> None:
    """The wrk script posts the JSON body with the key and prints a parseable summary line."""
    script = load.write_lua(tmp_path / "s.lua", BODY, "sk-x").read_text()
    assert '"model":"gpt-4.1"' in script
    assert 'wrk.headers["Authorization"] = "Bearer sk-x"' in script
    assert "BENCH_JSON" in script

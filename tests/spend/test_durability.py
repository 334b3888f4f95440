"""Spend survives `kill -9` of a real gateway process and counts again after a restart;
a stream cut by the kill is charged its reserved worst case."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import openai
import pytest
from openai import AsyncOpenAI

from gateway.spend.redis_store import RedisStore
from tests.conftest import UPSTREAM_KEY
from tests.fakes.openai_upstream import Behaviour, RunningUpstream
from tests.spend.helpers import MESSAGES, ledger_rows, worst_case_usd
from tests.support.gateway import upstream_config
from tests.support.process import GatewayProcess, gateway_process

pytestmark = pytest.mark.integration  # sockets or processes: the slow tier

ENV = {"UPSTREAM_KEY": UPSTREAM_KEY}
EXACT = 9 * 2500 + 20 * 8000  # nanos: 9 prompt tokens at $2.5, 20 output at $8 per Mtok


def _config(upstream_url: str, ledger: Path, budget_usd: float | None = None) -> str:
    extra = f'storage: {{sqlite_path: "{ledger}"}}\n'
    if budget_usd is not None:
        extra += f"budgets:\n  - {{name: fuse, scope: global, limit_usd: {budget_usd}}}\n"
    return upstream_config(upstream_url, extra=extra)


def _kill9(gateway: GatewayProcess) -> None:
    gateway.proc.send_signal(signal.SIGKILL)
    gateway.proc.wait(10)


async def test_answered_calls_survive_kill_9_and_count_after_restart(
        upstream: RunningUpstream, tmp_path: Path) -> None:
    """Calls answered just before kill -9 are in the ledger, and the restarted gateway's
    budget already counts them."""
    upstream.state.behaviour = Behaviour(completion_tokens=20)
    ledger = tmp_path / "ledger.db"
    async with gateway_process(_config(upstream.base_url, ledger), ENV) as gw:
        async with AsyncOpenAI(base_url=gw.base_url, api_key="k", max_retries=0) as sdk:
            await asyncio.gather(*(sdk.chat.completions.create(
                model="gpt-4.1", messages=MESSAGES, max_tokens=20) for _ in range(5)))
            stream = await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES,
                                                       max_tokens=20, stream=True)
            [_ async for _ in stream]
            await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES, max_tokens=20)
            _kill9(gw)
    rows = ledger_rows(ledger)
    plain = [r for r in rows if not r.stream]
    [streamed] = [r for r in rows if r.stream]
    assert len(plain) == 6 and all(r.status == "ok" and r.cost_nanos == EXACT for r in plain), rows
    # Settled (a client that closes right after [DONE] may show as a disconnect), or still
    # journaled at its worst case if the kill beat the settle by a hair.
    assert streamed.status in ("ok", "client_disconnect", "pending"), rows
    assert streamed.cost_nanos >= EXACT, rows

    spent_usd = sum(r.cost_nanos for r in rows) / 1e9
    room_for_one = spent_usd + worst_case_usd(20) * 1.5
    async with gateway_process(_config(upstream.base_url, ledger, room_for_one), ENV) as gw:
        async with AsyncOpenAI(base_url=gw.base_url, api_key="k", max_retries=0) as sdk:
            await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES, max_tokens=20)
            with pytest.raises(openai.RateLimitError) as info:
                await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES,
                                                  max_tokens=20)
    assert info.value.code == "budget_exceeded"
    assert all(r.status != "pending" for r in ledger_rows(ledger))


async def test_stream_cut_by_kill_9_is_charged_its_worst_case(upstream: RunningUpstream,
                                                              tmp_path: Path) -> None:
    """A stream in flight when the gateway is killed is journaled; the next start charges
    its reserved worst case (status `unsettled`)."""
    upstream.state.behaviour = Behaviour(completion_tokens=200, chunk_delay_s=0.02)
    ledger = tmp_path / "ledger.db"
    async with gateway_process(_config(upstream.base_url, ledger), ENV) as gw:
        async with AsyncOpenAI(base_url=gw.base_url, api_key="k", max_retries=0) as sdk:
            stream = await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES,
                                                       max_tokens=500, stream=True)
            seen = 0
            async for _ in stream:
                seen += 1
                if seen == 5:
                    _kill9(gw)
                    break
    [row] = ledger_rows(ledger)
    assert row.status == "pending"
    async with gateway_process(_config(upstream.base_url, ledger), ENV):
        [row] = ledger_rows(ledger)
    assert row.status == "unsettled" and row.stream
    assert row.cost_nanos == round(worst_case_usd(500) * 1e9)


async def test_redis_hold_of_a_killed_gateway_is_charged_not_leaked(
        upstream: RunningUpstream, redis_url: str, redis_prefix: str) -> None:
    """With Redis, a killed gateway's reservation expires and is charged at its worst case."""
    upstream.state.behaviour = Behaviour(completion_tokens=200, chunk_delay_s=0.02)
    config = upstream_config(upstream.base_url, extra=f"""
storage: {{backend: redis, redis_url: "{redis_url}", redis_prefix: "{redis_prefix}"}}
spend: {{reservation_ttl_s: 1, key_refresh_s: 0.2}}
budgets:
  - {{name: fuse, scope: global, limit_usd: 1}}
""")
    async with gateway_process(config, ENV) as gw:
        async with AsyncOpenAI(base_url=gw.base_url, api_key="k", max_retries=0) as sdk:
            stream = await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES,
                                                       max_tokens=500, stream=True)
            async for _ in stream:
                _kill9(gw)
                break
    store = RedisStore(redis_url, redis_prefix)
    try:
        async with gateway_process(config, ENV):
            for _ in range(100):
                rows = [e async for e in store.entries(0, 1e12)]
                if rows:
                    break
                await asyncio.sleep(0.1)
        [row] = rows
        assert row.status == "unsettled" and row.cost_nanos == round(worst_case_usd(500) * 1e9)
        counters = [k async for k in store.client.scan_iter(f"{redis_prefix}b:*")]
        [(spent, reserved)] = await store.levels([c.decode() for c in counters])
        assert (spent, reserved) == (row.cost_nanos, 0)
    finally:
        await store.close()

"""No overspend under concurrency: 200 simultaneous requests against a budget that fits
10, on one process with SQLite and on two processes sharing a real Redis; the ledger
is the judge."""

from __future__ import annotations

import asyncio
from pathlib import Path

import openai
import pytest
from openai import AsyncOpenAI

from gateway.spend.budgets import to_nanos
from gateway.spend.redis_store import RedisStore
from tests.conftest import UPSTREAM_KEY
from tests.fakes.openai_upstream import Behaviour, RunningUpstream
from tests.spend.helpers import (
    MESSAGES,
    ledger_rows,
    spend_config,
    spend_gateway,
    worst_case_usd,
)
from tests.support.gateway import upstream_config
from tests.support.process import gateway_process

pytestmark = pytest.mark.integration  # sockets or processes: the slow tier

MAX_TOKENS = 100
FITS = 10
LIMIT_USD = round(worst_case_usd(MAX_TOKENS) * FITS, 9)
BUDGET = f"""
budgets:
  - {{name: fits-ten, scope: global, window: day, limit_usd: {LIMIT_USD}}}
"""


async def _fire(base_url: str, count: int) -> tuple[int, int, list[BaseException]]:
    """`count` simultaneous calls; (answered, refused by budget, anything else)."""
    async with AsyncOpenAI(base_url=base_url, api_key="k", max_retries=0, timeout=60) as sdk:
        async def one() -> str:
            try:
                await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES,
                                                  max_tokens=MAX_TOKENS)
            except openai.RateLimitError as exc:
                assert exc.code == "budget_exceeded"
                return "refused"
            return "ok"

        results = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    other = [r for r in results if isinstance(r, BaseException)]
    return results.count("ok"), results.count("refused"), other


async def test_200_concurrent_requests_never_overspend_on_sqlite(upstream: RunningUpstream,
                                                                 tmp_path: Path) -> None:
    """Exactly the 10 calls that fit are served; the ledger total stays within the limit."""
    upstream.state.behaviour = Behaviour(completion_tokens=MAX_TOKENS, latency_s=0.05)
    ledger = tmp_path / "l.db"
    async with spend_gateway(spend_config(upstream.base_url, ledger, BUDGET)) as (gw, _):
        ok, refused, other = await _fire(gw.base_url, 200)
    assert other == []
    assert (ok, refused) == (FITS, 200 - FITS)
    rows = ledger_rows(ledger)
    assert len(rows) == FITS and all(r.status == "ok" for r in rows)
    assert sum(r.cost_nanos for r in rows) <= to_nanos_usd(LIMIT_USD)
    assert upstream.state.total_requests == FITS


async def test_two_gateways_sharing_redis_never_overspend(upstream: RunningUpstream,
                                                          redis_url: str, redis_prefix: str
                                                          ) -> None:
    """Two gateway processes, 100 concurrent calls each, one Redis budget: 10 served in all."""
    upstream.state.behaviour = Behaviour(completion_tokens=MAX_TOKENS, latency_s=0.05)
    config = upstream_config(upstream.base_url, extra=f"""
storage: {{backend: redis, redis_url: "{redis_url}", redis_prefix: "{redis_prefix}"}}
{BUDGET}""")
    env = {"UPSTREAM_KEY": UPSTREAM_KEY}
    async with gateway_process(config, env) as one, gateway_process(config, env) as two:
        results = await asyncio.gather(_fire(one.base_url, 100), _fire(two.base_url, 100))
    assert [r[2] for r in results] == [[], []]
    served = sum(r[0] for r in results)
    assert served == FITS and sum(r[1] for r in results) == 200 - FITS
    assert all(r[1] > 0 for r in results), "each process was refused by the shared budget"
    store = RedisStore(redis_url, redis_prefix)
    try:
        rows = [e async for e in store.entries(0, 1e12)]
    finally:
        await store.close()
    assert len(rows) == FITS and all(r.status == "ok" for r in rows)
    assert sum(r.cost_nanos for r in rows) <= to_nanos_usd(LIMIT_USD)
    assert upstream.state.total_requests == FITS


def to_nanos_usd(usd: float) -> int:
    from decimal import Decimal

    return to_nanos(Decimal(str(usd)))


async def test_sqlite_workers_split_the_budget_and_never_overspend(upstream: RunningUpstream,
                                                                   tmp_path: Path) -> None:
    """`serve --workers 2` on one SQLite ledger: each worker holds half of the budget, so
    200 concurrent calls still never pass the limit."""
    upstream.state.behaviour = Behaviour(completion_tokens=MAX_TOKENS, latency_s=0.05)
    ledger = tmp_path / "l.db"
    config = spend_config(upstream.base_url, ledger, BUDGET)
    async with gateway_process(config, {"UPSTREAM_KEY": UPSTREAM_KEY},
                               args=("--workers", "2")) as gw:
        ok, refused, other = await _fire(gw.base_url, 200)
    assert other == [] and ok + refused == 200
    assert 1 <= ok <= FITS
    rows = ledger_rows(ledger)
    assert len(rows) == ok and sum(r.cost_nanos for r in rows) <= to_nanos_usd(LIMIT_USD)

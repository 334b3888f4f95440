"""The Redis store's Lua scripts against a real redis-server: atomic reserve-or-refuse
across budgets, settle with its ledger entry, recovery of expired holds, keys and claims."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest

from gateway.spend.budgets import Budget
from gateway.spend.keys import KeyRecord
from gateway.spend.ledger import UNSETTLED, LedgerEntry, Reservation
from gateway.spend.redis_store import RedisStore
from gateway.spend.windows import Window, zone

pytestmark = pytest.mark.integration  # sockets or processes: the slow tier

UTC = zone("UTC")
DAY = Window("2026-11-29", 0, 1e12)
FUSE = Budget("fuse", "global", None, "day", 1000, "block", UTC)
TEAM = Budget("team", "team", "t", "day", 10_000, "block", UTC)
ALERT = Budget("watch", "global", None, "day", 1, "alert", UTC)


@pytest.fixture
async def store(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisStore]:
    redis_store = RedisStore(redis_url, redis_prefix, reservation_ttl_s=3600)
    await redis_store.open()
    yield redis_store
    await redis_store.close()


def _res(amount: int, budgets: tuple[Budget, ...] = (FUSE, TEAM)) -> Reservation:
    entry = LedgerEntry(1.0, "r", "", "k", "t", None, "chat", "m", "m", "p", cost_nanos=amount,
                        status=UNSETTLED)
    return Reservation(budgets, tuple(DAY for _ in budgets), amount, 1.0, 1, lambda: entry)


def _counters(store: RedisStore, budgets: tuple[Budget, ...] = (FUSE, TEAM)) -> list[str]:
    return [store.counter_key(b, DAY) for b in budgets]


async def test_concurrent_reserves_never_exceed_the_limit(store: RedisStore) -> None:
    """100 concurrent holds of 30 against a limit of 1000: exactly 33 are granted."""
    results = await asyncio.gather(*(store.reserve(_res(30)) for _ in range(100)))
    granted = [r for r, _ in results if r is None]
    assert len(granted) == 33
    assert await store.levels(_counters(store)) == [(0, 990), (0, 990)]


async def test_refusal_by_one_budget_holds_nothing_on_the_others(store: RedisStore) -> None:
    """When the team budget refuses, the global budget is not touched either."""
    await store.reserve(_res(900, (FUSE,)))
    refusal, _ = await store.reserve(_res(200))
    assert refusal is not None and refusal.budget is FUSE
    assert (refusal.spent_nanos, refusal.reserved_nanos) == (0, 900)
    assert await store.levels(_counters(store)) == [(0, 900), (0, 0)]


async def test_settle_swaps_hold_for_cost_and_appends_the_entry(store: RedisStore) -> None:
    """Settle releases the hold, adds the real cost and writes the ledger entry, atomically."""
    res = _res(500)
    await store.reserve(res)
    entry = LedgerEntry(1.0, "r", "", "k", "t", None, "chat", "m", "m", "p", cost_nanos=120)
    assert await store.settle(res, _counters(store), 120, entry) == [120, 120]
    assert await store.levels(_counters(store)) == [(120, 0), (120, 0)]
    assert [e.cost_nanos async for e in store.entries(0, 10)] == [120]


async def test_entries_written_before_the_token_type_columns_read_with_defaults(
        store: RedisStore) -> None:
    """An entry an older gateway appended (no cache-write, unpriced, audio or image fields)
    reads back with zeros and priced; a new entry keeps its token types and its flag."""
    old = {"ts": 1.0, "request_id": "old", "trace_id": "", "key_alias": "k", "team": "t",
           "key_id": None, "operation": "chat", "model_requested": "m", "model_served": "m",
           "provider": "p", "input_tokens": 10, "output_tokens": 5, "cached_tokens": 0,
           "reasoning_tokens": 0, "cost_nanos": 7, "status": "ok", "estimated": False,
           "stream": False, "attempt": 1, "tags": "", "end_user": ""}
    await store.client.xadd(store.ledger_key, {"e": orjson.dumps(old)})
    res = _res(500)
    await store.reserve(res)
    new = LedgerEntry(2.0, "new", "", "k", "t", None, "chat", "m", "m", "p", input_tokens=9,
                      cost_nanos=120, cache_write_tokens=3, cache_write_1h_tokens=4,
                      unpriced=True, input_audio_tokens=5, output_audio_tokens=6,
                      input_image_tokens=7, output_image_tokens=8)
    await store.settle(res, _counters(store), 120, new)
    found = [(e.request_id, e.cache_write_tokens, e.cache_write_1h_tokens, e.unpriced)
             async for e in store.entries(0, 10)]
    assert found == [("old", 0, 0, False), ("new", 3, 4, True)]
    media = [(e.input_audio_tokens, e.output_audio_tokens, e.input_image_tokens,
              e.output_image_tokens) async for e in store.entries(0, 10)]
    assert media == [(0, 0, 0, 0), (5, 6, 7, 8)]


async def test_alert_budgets_never_refuse(store: RedisStore) -> None:
    """An alert budget's limit does not stop holds."""
    refusal, _ = await store.reserve(_res(50, (ALERT,)))
    assert refusal is None


async def test_expired_hold_is_charged_at_its_worst_case_once(redis_url: str,
                                                              redis_prefix: str) -> None:
    """A hold past its lifetime (its gateway died) is charged and logged as unsettled; a late
    settle of it then changes nothing."""
    store = RedisStore(redis_url, redis_prefix, reservation_ttl_s=0.05)
    try:
        res = _res(300)
        await store.reserve(res)
        await asyncio.sleep(0.1)
        assert await store.recover() == 1
        assert await store.levels(_counters(store)) == [(300, 0), (300, 0)]
        [entry] = [e async for e in store.entries(0, 10)]
        assert entry.status == UNSETTLED and entry.cost_nanos == 300
        assert await store.settle(res, _counters(store), 10, entry) is None
        assert await store.levels(_counters(store)) == [(300, 0), (300, 0)]
    finally:
        await store.close()


async def test_keys_and_claims(store: RedisStore) -> None:
    """Keys are created once per active alias, revoked, listed; a notice is claimed once."""
    record = KeyRecord("web", "product", "a" * 64, created_at=1.0)
    assert await store.create_key(record)
    assert not await store.create_key(KeyRecord("web", "x", "b" * 64))
    assert await store.revoke_key("web", 2.0)
    assert not await store.revoke_key("web", 3.0)
    [loaded] = await store.load_keys()
    assert loaded.alias == "web" and loaded.revoked_at == 2.0 and not loaded.active
    assert await store.create_key(KeyRecord("web", "product", "c" * 64))
    assert await store.claim("budget:fuse:d:50", 60)
    assert not await store.claim("budget:fuse:d:50", 60)

"""Ledger entries written straight into a store, for tests of the reports that read it
(spend, reconcile): SQLite through the ledger's own INSERT, Redis through `settle`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from gateway import sqlitefile
from gateway.spend import ledger_sql
from gateway.spend.ledger import COLUMNS, LedgerEntry
from gateway.spend.redis_store import RedisStore


def at(day: str, hour: int = 12) -> float:
    """Unix time of `hour`:00 UTC on `day` (YYYY-MM-DD)."""
    return datetime.strptime(day, "%Y-%m-%d").replace(hour=hour, tzinfo=UTC).timestamp()


def entry(ts: float, model: str, provider: str, input_tokens: int, cached: int, output: int,
          cost_nanos: int, *, key: str = "web", team: str = "product",
          status: str = "ok") -> LedgerEntry:
    return LedgerEntry(ts, f"req-{model}-{ts}-{input_tokens}-{key}", "0" * 32, key, team, None,
                       "chat", model, model, provider, input_tokens=input_tokens,
                       output_tokens=output, cached_tokens=cached, cost_nanos=cost_nanos,
                       status=status)


def seed_sqlite(path: Path, entries: Iterable[LedgerEntry]) -> None:
    conn = sqlitefile.connect(str(path), create=True)
    try:
        ledger_sql.init_schema(conn)
        conn.executemany(ledger_sql.INSERT,
                         [(*(getattr(e, c) for c in COLUMNS), None) for e in entries])
        conn.commit()
    finally:
        conn.close()


async def seed_redis_async(url: str, prefix: str, entries: Iterable[LedgerEntry]) -> None:
    store = RedisStore(url, prefix)
    try:
        for item in entries:
            await store.settle(None, [], item.cost_nanos, item)
    finally:
        await store.close()


def seed_redis(url: str, prefix: str, entries: Iterable[LedgerEntry]) -> None:
    """`seed_redis_async` for tests without an event loop."""
    asyncio.run(seed_redis_async(url, prefix, entries))

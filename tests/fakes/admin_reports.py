"""What the fake admin APIs bill: per UTC day and model snapshot, the tokens by type and
their prices, from which each fake builds its own wire format. Also the paging and the
small server runner both fakes share."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from aiohttp import web

MTOK = Decimal(1_000_000)


@dataclass(frozen=True)
class Billed:
    """One day's traffic of one model: tokens by type and list prices in $ per Mtok.
    `input` counts uncached input only; cache reads and writes are their own fields."""

    day: str  # YYYY-MM-DD (UTC)
    model: str  # the dated snapshot the provider bills under
    input: int = 0
    cache_read: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0
    output: int = 0
    price_input: Decimal = Decimal(0)
    price_cache_read: Decimal = Decimal(0)
    price_cache_write_5m: Decimal = Decimal(0)
    price_cache_write_1h: Decimal = Decimal(0)
    price_output: Decimal = Decimal(0)
    extra_usd: Decimal = Decimal(0)  # billed beyond the tokens: a seeded mismatch

    def cost(self, kind: str) -> Decimal:
        """The dollars of one token type: input, cache_read, cache_write_5m, cache_write_1h,
        output."""
        tokens: int = getattr(self, kind)
        price: Decimal = getattr(self, f"price_{kind}")
        return tokens * price / MTOK

    @property
    def total_usd(self) -> Decimal:
        kinds = ("input", "cache_read", "cache_write_5m", "cache_write_1h", "output")
        return sum((self.cost(k) for k in kinds), Decimal(0)) + self.extra_usd


@dataclass
class AdminState:
    key: str
    billed: Sequence[Billed] = ()
    page_cap: int = 2  # buckets per page at most, whatever `limit` asks: forces paging
    requests: list[tuple[str, dict[str, list[str]]]] = field(default_factory=list)

    def on(self, day: str) -> list[Billed]:
        return [b for b in self.billed if b.day == day]

    def pages_of(self, path: str) -> int:
        return sum(1 for p, _ in self.requests if p == path)


def days(start: datetime, end: datetime) -> list[datetime]:
    """The UTC midnights of the daily buckets covering [start, end)."""
    first = start.replace(hour=0, minute=0, second=0, microsecond=0)
    out = []
    while first < end:
        out.append(first)
        first += timedelta(days=1)
    return out


def page_slice(buckets: Sequence[datetime], limit: int, cursor: str | None, cap: int
               ) -> tuple[Sequence[datetime], str | None]:
    """This page's buckets and the next page's opaque cursor (None on the last page)."""
    offset = int(base64.urlsafe_b64decode(cursor).decode()) if cursor else 0
    size = min(limit, cap)
    chunk = buckets[offset:offset + size]
    more = offset + size < len(buckets)
    token = base64.urlsafe_b64encode(str(offset + size).encode()).decode() if more else None
    return chunk, token


def utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def query_lists(request: web.Request) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in request.query.items():
        out.setdefault(name, []).append(value)
    return out


@contextlib.asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1 on a free port; yields its root URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()

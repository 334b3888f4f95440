"""What the fake admin APIs bill: per UTC day and model snapshot, the tokens by type and
their prices, from which each fake builds its own wire format. Also what both fakes
share: the paging of daily buckets, the report handler (check, group, page), the app and
the small server runner."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
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


STATE = web.AppKey("state", AdminState)
Rows = Callable[[list[Billed]], list[dict[str, Any]]]  # one day's billing as result rows
Handler = Callable[[web.Request], Awaitable[web.Response]]


def paged(request: web.Request, start: datetime, end: datetime, limit: int,
          bucket: Callable[[datetime], dict[str, Any]], results: Rows,
          head: Mapping[str, Any] | None = None) -> web.Response:
    """One page of daily buckets (`bucket` says a day's own fields in the API's words, the
    results follow) with `has_more`/`next_page`, after the page's `head` fields."""
    state = request.app[STATE]
    buckets, token = page_slice(days(start, end), limit, request.query.get("page"),
                                state.page_cap)
    data = [{**bucket(day), "results": results(state.on(day.strftime("%Y-%m-%d")))}
            for day in buckets]
    body = {**(head or {}), "data": data, "has_more": token is not None, "next_page": token}
    return web.Response(body=orjson.dumps(body, default=float), content_type="application/json")


def report(check: Callable[[web.Request], web.Response | tuple[Any, Any, int]],
           page: Callable[..., web.Response], group: str,
           results: Callable[[bool], Rows]) -> Handler:
    """A report route: the API's checks (an error response, or the period and limit),
    then a page of results, grouped when `group_by[]` names `group` (the SDKs' array form)."""
    async def handle(request: web.Request) -> web.Response:
        checked = check(request)
        if isinstance(checked, web.Response):
            return checked
        grouped = group in request.query.getall("group_by[]", [])
        return page(request, *checked, results(grouped))
    return handle


@contextlib.asynccontextmanager
async def running_admin(state: AdminState, routes: Mapping[str, Handler]) -> AsyncIterator[str]:
    """A fake admin API serving `routes` (GET) over `state` on a free port; yields its base
    URL (ending in /v1)."""
    app = web.Application()
    app[STATE] = state
    for path, handler in routes.items():
        app.router.add_get(path, handler)
    async with serve(app) as root:
        yield root + "/v1"

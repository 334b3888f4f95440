"""One interface for budget accounting plus the durable ledger, over two stores.

`LocalBackend`: SQLite ledger + in-memory accounting (one gateway process; the
default). `RedisBackend`: everything in Redis through atomic Lua scripts (any
number of replicas share the budgets). The hook only talks to `Backend`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from gateway.spend.accounting import Level, MemoryAccountant
from gateway.spend.budgets import Budget, BudgetSet, Refusal
from gateway.spend.keys import KeyRecord
from gateway.spend.ledger import PENDING, UNSETTLED, LedgerEntry, Reservation
from gateway.spend.redis_store import RedisStore
from gateway.spend.sqlite_store import SqliteStore
from gateway.spend.windows import Window

_log = logging.getLogger(__name__)


class Backend(Protocol):
    journal_status: str  # how a journaled, never-settled attempt shows in the ledger

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def reserve(self, res: Reservation, *, durable: bool) -> Refusal | None:
        """Hold the worst case on every budget of `res` (journaled when `durable`), or refuse.
        A journal row still committing is `res.written`: the answer waits for it."""
        ...

    async def settle(self, res: Reservation | None, budgets: tuple[Budget, ...],
                     windows: tuple[Window, ...], entry: LedgerEntry | None, actual_nanos: int
                     ) -> list[Level]:
        """Release the hold, charge the real cost, record the entry durably; never raises.
        A record still committing is `res.written`: the answer waits for it."""
        ...

    def level(self, budget: Budget, window: Window) -> tuple[int, int]:
        """(spent, reserved) as last known, for gauges (no I/O)."""
        ...

    def limit(self, budget: Budget) -> int:
        """The limit this process enforces (a share of it under SQLite workers)."""
        ...

    async def sync(self, budgets: Sequence[Budget], now: float) -> None:
        """Bring levels of these budgets' current windows up to date (start, refresh)."""
        ...

    async def maintain(self) -> None:
        """Periodic housekeeping (Redis: charge expired reservations of dead gateways)."""
        ...

    async def load_keys(self) -> list[KeyRecord]: ...

    async def claim(self, claim: str, ttl_s: float, now: float) -> bool: ...


class LocalBackend:
    """SQLite ledger and in-memory accounting seeded from it."""

    journal_status = PENDING

    def __init__(self, store: SqliteStore, budgets: BudgetSet, shares: int = 1) -> None:
        self.store = store
        self.accountant = MemoryAccountant(budgets, shares)

    async def open(self) -> None:
        await self.store.open()

    async def close(self) -> None:
        await self.store.close()

    async def reserve(self, res: Reservation, *, durable: bool) -> Refusal | None:
        refusal = self.accountant.reserve(res)
        if refusal is not None or not durable:
            # Only streams are journaled: they send bytes before they settle. A plain call
            # is written once, when it settles, before its answer is sent.
            return refusal
        try:
            waiter = self.store.journal(res)
            if self.store.piped and not waiter.done():
                # In the writer's pipe before the attempt goes upstream, so a kill -9 from
                # here on cannot lose it; it commits while the upstream answers, and the
                # answer's first byte waits for it (`written`, see SpendHook).
                res.written = waiter
            else:
                await waiter
        except Exception:
            self.accountant.settle(res, res.budgets, res.windows, 0)
            raise
        return None

    async def settle(self, res: Reservation | None, budgets: tuple[Budget, ...],
                     windows: tuple[Window, ...], entry: LedgerEntry | None, actual_nanos: int
                     ) -> list[Level]:
        levels = self.accountant.settle(res, budgets, windows, actual_nanos)
        request_id = entry.request_id if entry else "?"
        if res is not None and res.journaled and res.row_id is None and res.written is not None:
            # Its journal row's acknowledgement (the row id) may still be on its way: the
            # settlement replaces (or drops) that row, so it waits for its id.
            with contextlib.suppress(Exception):
                res.row_id = await res.written
        # A journaled attempt (a stream) is already durable at its worst case, so its
        # settlement need not hold up the answer; anything else is waited for, after the
        # work the answer needs anyway (`res.written`, held by the hook), or here.
        journaled = res is not None and res.row_id is not None
        try:
            waiter = self.store.record(res, entry, wait=not journaled)
        except Exception:
            _log.exception("the spend ledger could not record request %s", request_id)
            return levels
        if res is not None:
            res.written = waiter
            if waiter is not None:
                waiter.add_done_callback(functools.partial(_report_failure, request_id))
        elif waiter is not None:
            try:
                await waiter
            except Exception:
                _log.exception("the spend ledger could not record request %s", request_id)
        return levels

    def level(self, budget: Budget, window: Window) -> tuple[int, int]:
        return self.accountant.level(budget, window)

    def limit(self, budget: Budget) -> int:
        return self.accountant.limit(budget)

    async def sync(self, budgets: Sequence[Budget], now: float) -> None:
        """Seed windows this process has not seen yet from the ledger."""
        for budget in budgets:
            window = self.accountant.budgets.window(budget, now)
            if self.accountant.is_seeded(budget, window):
                continue
            spent = await self.store.spent(budget.scope, budget.target, window.start, window.end)
            self.accountant.seed(budget, window, spent)

    async def maintain(self) -> None:
        recovered = await self.store.recover()
        if recovered:
            _log.warning("spend ledger: %d attempts of a gateway worker that died were charged "
                         "at their reserved worst case (status 'unsettled')", recovered)

    async def load_keys(self) -> list[KeyRecord]:
        return await self.store.load_keys()

    async def claim(self, claim: str, ttl_s: float, now: float) -> bool:
        return await self.store.claim(claim, now)


def _report_failure(request_id: str, done: asyncio.Future[Any]) -> None:
    """Log a ledger write that failed (the answer is still sent: its caller got it)."""
    if done.cancelled():
        return
    error = done.exception()
    if error is not None:
        _log.error("the spend ledger could not record request %s: %s", request_id, error)


class RedisBackend:
    """Budgets and ledger in Redis, shared by every replica."""

    journal_status = UNSETTLED

    def __init__(self, store: RedisStore, budgets: BudgetSet) -> None:
        self.store = store
        self.budgets = budgets
        self._levels: dict[tuple[str, str], tuple[int, int]] = {}

    async def open(self) -> None:
        await self.store.open()

    async def close(self) -> None:
        await self.store.close()

    async def reserve(self, res: Reservation, *, durable: bool) -> Refusal | None:
        refusal, levels = await self.store.reserve(res)
        if refusal is not None:
            self._levels[(refusal.budget.name, refusal.window.id)] = (
                refusal.spent_nanos, refusal.reserved_nanos)
            return refusal
        for budget, window, spent in zip(res.budgets, res.windows, levels, strict=True):
            _, reserved = self._levels.get((budget.name, window.id), (0, 0))
            self._levels[(budget.name, window.id)] = (spent, reserved)
        return None

    async def settle(self, res: Reservation | None, budgets: tuple[Budget, ...],
                     windows: tuple[Window, ...], entry: LedgerEntry | None, actual_nanos: int
                     ) -> list[Level]:
        counters = [self.store.counter_key(b, w) for b, w in zip(budgets, windows, strict=True)]
        try:
            spent = await self.store.settle(res, counters, actual_nanos, entry)
        except Exception:
            # The hold stays in Redis and expires; recovery then charges its worst case.
            _log.exception("Redis could not settle request %s", entry.request_id if entry else "?")
            return []
        if spent is None:
            return []
        levels: list[Level] = []
        for budget, window, value in zip(budgets, windows, spent, strict=True):
            _, reserved = self._levels.get((budget.name, window.id), (0, 0))
            self._levels[(budget.name, window.id)] = (value, reserved)
            levels.append((budget, window, value))
        return levels

    def level(self, budget: Budget, window: Window) -> tuple[int, int]:
        return self._levels.get((budget.name, window.id), (0, 0))

    def limit(self, budget: Budget) -> int:
        return budget.limit_nanos

    async def sync(self, budgets: Sequence[Budget], now: float) -> None:
        windows = [self.budgets.window(b, now) for b in budgets]
        counters = [self.store.counter_key(b, w) for b, w in zip(budgets, windows, strict=True)]
        for budget, window, level in zip(budgets, windows, await self.store.levels(counters),
                                         strict=True):
            self._levels[(budget.name, window.id)] = level

    async def maintain(self) -> None:
        recovered = await self.store.recover()
        if recovered:
            _log.warning("charged %d expired reservations (their gateway died) at their worst "
                         "case", recovered)

    async def load_keys(self) -> list[KeyRecord]:
        return await self.store.load_keys()

    async def claim(self, claim: str, ttl_s: float, now: float) -> bool:
        return await self.store.claim(claim, ttl_s)

"""Builds spend control from the config and runs its lifecycle.

`build_spend` wires keys, budgets, store, notifier, runaway guard and metrics
into one `SpendControl`; `create_app` registers its authenticator, its hook and
its `lifecycle` (a cleanup context: open the store, load keys, seed budgets,
start background refresh; then drain notices and close the store).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.config import GatewayConfig
from gateway.hooks import CallHook
from gateway.spend.backend import Backend, LocalBackend, RedisBackend
from gateway.spend.budgets import Budget, BudgetSet
from gateway.spend.hook import SpendHook
from gateway.spend.keys import KeyAuthenticator, KeyRecord, config_records
from gateway.spend.metrics import SpendMetrics
from gateway.spend.notify import Notifier
from gateway.spend.redis_store import RedisStore
from gateway.spend.runaway import RunawayGuard
from gateway.spend.sqlite_store import SqliteStore
from gateway.spend.windows import Clock, SystemClock
from gateway.telemetry.setup import Telemetry
from gateway.workers import ENV_COUNT as ENV_WORKER_COUNT

_log = logging.getLogger("gateway.spend")
OPEN_MODE_WARNING = ("OPEN MODE: no virtual key is configured, so anyone who can reach this "
                     "gateway can spend through it. Add `keys:` to the config or run "
                     "`llm-gateway keys create --alias NAME --team TEAM`.")


def make_backend(config: GatewayConfig, budgets: BudgetSet, workers: int = 1,
                 environ: Mapping[str, str] | None = None) -> Backend:
    storage = config.storage
    if storage.backend == "redis" and storage.redis_url:
        store = RedisStore(storage.redis_url, storage.redis_prefix,
                           reservation_ttl_s=config.spend.reservation_ttl_s)
        return RedisBackend(store, budgets)
    if workers > 1 and budgets.all():
        _log.warning("%d gateway workers share the SQLite ledger: each enforces 1/%d of every "
                     "budget. Use storage.backend: redis to share budgets exactly.", workers, workers)
    return LocalBackend(SqliteStore(storage.sqlite_path, environ), budgets, shares=workers)


def _workers(environ: Mapping[str, str]) -> int:
    raw = environ.get(ENV_WORKER_COUNT, "1")
    return int(raw) if raw.isdigit() and int(raw) > 0 else 1


@dataclass
class SpendControl:
    config: GatewayConfig
    budgets: BudgetSet
    backend: Backend
    authenticator: KeyAuthenticator
    hook: SpendHook
    notifier: Notifier
    clock: Clock
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def hooks(self) -> list[CallHook]:
        return [self.hook]

    async def lifecycle(self, app: Any) -> AsyncIterator[None]:
        """aiohttp cleanup context: start before the first request, stop after the last."""
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    async def start(self) -> None:
        await self.backend.open()
        await self.authenticator.refresh()
        await self.backend.sync(self.budgets.all(), self.clock.now())
        await self.notifier.start()
        self._tasks.append(asyncio.create_task(self._refresh_loop(), name="spend-refresh"))
        self._announce()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.notifier.stop()
        await self.backend.close()

    def _announce(self) -> None:
        if self.authenticator.open:
            _log.warning(OPEN_MODE_WARNING)
        else:
            _log.info("virtual keys: %d active", sum(r.active for r in self.authenticator.records))
        for budget in self.budgets.all():
            spent, _ = self.backend.level(budget, self.budgets.window(budget, self.clock.now()))
            limit = self.backend.limit(budget)
            _log.info("budget %s: $%s per %s, %.2f%% used, action %s", budget.name,
                      limit / 1e9, budget.window, spent * 100 / limit if limit else 100,
                      budget.action)

    async def _refresh_loop(self) -> None:
        interval = self.config.spend.key_refresh_s
        while True:
            await asyncio.sleep(interval)
            try:
                await self.authenticator.refresh()
                await self.backend.maintain()
                await self.backend.sync(self.budgets.all(), self.clock.now())
            except Exception:
                _log.exception("spend control refresh failed (will retry)")

    async def keys_changed(self, records: list[KeyRecord]) -> None:
        """Stored keys may carry budgets (`keys create --budget-usd-per-day`)."""
        timezone = self.config.spend.timezone
        by_alias = {r.alias: r.budgets(timezone) for r in records if r.source == "store" and r.active}
        self.budgets.set_key_budgets(by_alias)
        fresh = [b for group in by_alias.values() for b in group]
        if fresh:
            await self.backend.sync(fresh, self.clock.now())

    def levels(self) -> Iterable[tuple[Budget, int, int]]:
        now = self.clock.now()
        for budget in self.budgets.all():
            spent = self.backend.level(budget, self.budgets.window(budget, now))[0]
            yield budget, spent, self.backend.limit(budget)


def build_spend(config: GatewayConfig, telemetry: Telemetry, *, clock: Clock | None = None,
                backend: Backend | None = None, environ: Mapping[str, str] | None = None
                ) -> SpendControl:
    """Spend control as the config describes it."""
    spend = config.spend
    clock = clock or SystemClock()
    budgets = BudgetSet(Budget.from_config(b) for b in spend.budgets)
    store = backend or make_backend(config, budgets, _workers(environ or {}), environ)
    notifier = Notifier(spend.webhooks, clock=clock, claim=lambda c, ttl: store.claim(c, ttl, clock.now()),
                        max_attempts=spend.notify.max_attempts, backoff_s=spend.notify.backoff_s)
    runaway = RunawayGuard(spend.runaway) if spend.runaway.enabled else None
    holder: list[SpendControl] = []

    async def on_change(records: list[KeyRecord]) -> None:
        await holder[0].keys_changed(records)

    authenticator = KeyAuthenticator(config_records(spend.keys), store.load_keys, clock,
                                     on_change=on_change, configured=len(spend.keys))
    metrics = SpendMetrics(telemetry.meter, lambda: holder[0].levels())
    hook = SpendHook(config=config, budgets=budgets, backend=store, clock=clock, notifier=notifier,
                     metrics=metrics, runaway=runaway)
    control = SpendControl(config, budgets, store, authenticator, hook, notifier, clock)
    holder.append(control)
    return control

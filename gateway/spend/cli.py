"""`llm-gateway keys ...`, `llm-gateway spend` and spend control's part of `check-config`.

Commands read and write the store the config names (SQLite file or Redis), so
they work beside a running gateway: it picks up new and revoked keys by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

from gateway.admin import remote
from gateway.config import GatewayConfig
from gateway.spend import report, report_formats
from gateway.spend.budgeted import budgeted_groups, with_budgeted
from gateway.spend.budgets import Budget, fmt_usd, to_nanos
from gateway.spend.config import BudgetConfig, hash_key, valid_name
from gateway.spend.control import OPEN_MODE_WARNING
from gateway.spend.keys import KeyRecord, new_key
from gateway.spend.redis_store import RedisStore
from gateway.spend.sqlite_store import (
    connect,
    create_key,
    entries,
    init_schema,
    list_keys,
    replace_key,
    revoke_key,
)
from gateway.spend.windows import Window, local_time, window_at, zone

COMMANDS = ("keys", "spend")
T = TypeVar("T")


def add_parsers(sub: Any) -> None:
    """Add `keys` and `spend` to the top-level subcommands."""
    keys = sub.add_parser("keys", help="create, list and revoke virtual keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key and print it (once)")
    create.add_argument("--alias", required=True, help="the key's name in metrics and reports")
    create.add_argument("--team", required=True)
    create.add_argument("--budget-usd-per-day", help="a blocking daily budget for this key")
    create.add_argument("--budget-usd-per-month", help="a blocking monthly budget for this key")
    create.add_argument("--models", help="comma-separated models the key may use (default: all)")
    create.add_argument("--expires-in-days", type=float, help="the key stops working after this")
    create.add_argument("--quiet", action="store_true", help="print only the key")
    listing = keys_sub.add_parser("list", help="list keys (never the keys themselves)")
    revoke = keys_sub.add_parser("revoke", help="revoke a key created with `keys create`")
    revoke.add_argument("alias")
    rotate = keys_sub.add_parser("rotate", help="a new secret for a key (same team, budgets, "
                                                "models); the old one stops working")
    rotate.add_argument("alias")
    rotate.add_argument("--quiet", action="store_true", help="print only the new key")
    spend = sub.add_parser("spend", help="spend from the ledger, grouped, with budget use")
    spend.add_argument("--by", type=_by, default="model",
                       help="model, key, team, provider, user or tag:NAME (default: model)")
    spend.add_argument("--window", choices=("day", "month"), default="day",
                       help="the current day or month in spend.timezone (default: day)")
    spend.add_argument("--since", help="start date YYYY-MM-DD instead of the window's start")
    spend.add_argument("--until", help="last date YYYY-MM-DD, included (with --gateway)")
    spend.add_argument("--format", choices=report_formats.FORMATS, default="table",
                       help="table (default), json or csv")
    for parser in (create, listing, revoke, rotate, spend):
        parser.add_argument("--config", help="config file (default: $GATEWAY_CONFIG, else built in)")
        parser.add_argument("--gateway", metavar="URL",
                            help="talk to the gateway at URL over its admin API instead of to "
                                 "the store (admin key from $GATEWAY_ADMIN_KEY)")


def _by(text: str) -> str:
    try:
        return report.check_by(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run(args: argparse.Namespace, config: GatewayConfig) -> int:
    if args.gateway:
        return remote.run(args, os.environ)
    if args.command == "spend" and args.until:
        print("error: --until needs --gateway (the direct report runs to now)", file=sys.stderr)
        return 2
    store = Store(config)
    try:
        if args.command == "spend":
            return cmd_spend(args, config, store)
        if args.keys_command == "create":
            return cmd_create(args, config, store)
        if args.keys_command == "revoke":
            return cmd_revoke(args, config, store)
        if args.keys_command == "rotate":
            return cmd_rotate(args, config, store)
        return cmd_list(config, store)
    except (sqlite3.Error, OSError, ConnectionError) as exc:
        print(f"error: the spend store is not reachable: {exc}", file=sys.stderr)
        return 1


class Store:
    """Synchronous access to the configured store for one CLI command."""

    def __init__(self, config: GatewayConfig) -> None:
        self.storage = config.storage
        self.redis = self.storage.backend == "redis" and bool(self.storage.redis_url)

    def _redis(self, fn: Callable[[RedisStore], Awaitable[T]]) -> T:
        async def go() -> T:
            store = RedisStore(self.storage.redis_url or "", self.storage.redis_prefix)
            try:
                return await fn(store)
            finally:
                await store.close()

        return asyncio.run(go())

    def _sqlite(self, fn: Callable[[sqlite3.Connection], T], *, create: bool) -> T | None:
        path = self.storage.sqlite_path
        if not create and not Path(path).exists():
            return None
        conn = connect(path, create=create)
        try:
            init_schema(conn)
            return fn(conn)
        finally:
            conn.close()

    def keys(self) -> list[KeyRecord]:
        if self.redis:
            return self._redis(lambda s: s.load_keys())
        return self._sqlite(list_keys, create=False) or []

    def create(self, record: KeyRecord) -> bool:
        if self.redis:
            return self._redis(lambda s: s.create_key(record))
        return bool(self._sqlite(lambda c: create_key(c, record), create=True))

    def revoke(self, alias: str) -> bool:
        now = time.time()
        if self.redis:
            return self._redis(lambda s: s.revoke_key(alias, now))
        return bool(self._sqlite(lambda c: revoke_key(c, alias, now), create=False))

    def rotate(self, alias: str, make: Callable[[KeyRecord], KeyRecord]) -> KeyRecord | None:
        """Replace the active stored key `alias` by `make(current)`; None if there is none."""
        current = next((r for r in self.keys() if r.alias == alias and r.active), None)
        if current is None:
            return None
        fresh = make(current)
        now = time.time()
        if self.redis:
            async def swap(store: RedisStore) -> bool:
                return await store.revoke_key(alias, now) and await store.create_key(fresh)

            return fresh if self._redis(swap) else None
        done = self._sqlite(lambda c: replace_key(c, alias, fresh, now), create=False)
        return fresh if done else None

    def summary(self, by: str, start: float, end: float) -> report.Summary:
        if self.redis:
            async def collect(store: RedisStore) -> report.Summary:
                return report.aggregate([e async for e in store.entries(start, end)], by)

            return self._redis(collect)
        found = self._sqlite(lambda c: report.summarize_sqlite(c, by, start, end), create=False)
        return found or report.Summary([])

    def entries(self, start: float, end: float) -> list[Any]:
        if self.redis:
            async def collect(store: RedisStore) -> list[Any]:
                return [e async for e in store.entries(start, end)]

            return self._redis(collect)
        return self._sqlite(lambda c: list(entries(c, start, end)), create=False) or []


# --- keys -------------------------------------------------------------------------------


def non_negative_decimal(text: str, flag: str) -> Decimal:
    """A command-line amount (dollars, a percentage): a finite number >= 0, else the
    ValueError that names the flag."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or value < 0:
        raise ValueError(f"{flag} must be a number >= 0")
    return value


def _usd(text: str | None, flag: str) -> Decimal | None:
    return None if text is None else non_negative_decimal(text, flag)


def cmd_create(args: argparse.Namespace, config: GatewayConfig, store: Store) -> int:
    problems = []
    for value, what in ((args.alias, "alias"), (args.team, "team")):
        if not valid_name(value):
            problems.append(f"--{what} '{value}': letters, digits and _.@:/- only, at most 64")
    if args.alias in config.spend.key_aliases:
        problems.append(f"--alias '{args.alias}' is already a key in the config file")
    models: frozenset[str] | None = None
    if args.models:
        models = frozenset(m.strip() for m in args.models.split(",") if m.strip())
        unknown = sorted(models - set(config.models))
        if unknown:
            problems.append(f"--models: unknown model(s) {', '.join(unknown)}")
    try:
        day = _usd(args.budget_usd_per_day, "--budget-usd-per-day")
        month = _usd(args.budget_usd_per_month, "--budget-usd-per-month")
    except ValueError as exc:
        problems.append(str(exc))
        day = month = None
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.expires_in_days is not None and args.expires_in_days <= 0:
        print("error: --expires-in-days must be > 0", file=sys.stderr)
        return 2
    key = new_key()
    expires = None if args.expires_in_days is None else time.time() + args.expires_in_days * 86400
    record = KeyRecord(alias=args.alias, team=args.team, key_sha256=hash_key(key),
                       created_at=time.time(), allowed_models=models, budget_usd_per_day=day,
                       budget_usd_per_month=month, expires_at=expires)
    if not store.create(record):
        print(f"error: an active key with alias '{args.alias}' exists (revoke it first)",
              file=sys.stderr)
        return 1
    if args.quiet:
        print(key)
        return 0
    print(f"created key '{args.alias}' (team {args.team})")
    print(key)
    print("This is the only time the key is shown: the gateway stores only its SHA-256. "
          f"A running gateway accepts it within a second (and drops it within "
          f"{config.spend.key_refresh_s:g} s of `keys revoke`).")
    return 0


def cmd_revoke(args: argparse.Namespace, config: GatewayConfig, store: Store) -> int:
    if args.alias in config.spend.key_aliases:
        print(f"error: key '{args.alias}' is defined in the config file ({config.source}); "
              "remove it there", file=sys.stderr)
        return 1
    if not store.revoke(args.alias):
        print(f"error: no active key with alias '{args.alias}'", file=sys.stderr)
        return 1
    print(f"revoked key '{args.alias}'; a running gateway refuses it within "
          f"{config.spend.key_refresh_s:g} s")
    return 0


def cmd_rotate(args: argparse.Namespace, config: GatewayConfig, store: Store) -> int:
    if args.alias in config.spend.key_aliases:
        print(f"error: key '{args.alias}' is defined in the config file ({config.source}); "
              "change it there", file=sys.stderr)
        return 1
    key = new_key()

    def make(current: KeyRecord) -> KeyRecord:
        return replace(current, key_sha256=hash_key(key), created_at=time.time(), revoked_at=None)

    if store.rotate(args.alias, make) is None:
        print(f"error: no active key with alias '{args.alias}'", file=sys.stderr)
        return 1
    if args.quiet:
        print(key)
        return 0
    print(f"rotated key '{args.alias}': the old secret is revoked (a running gateway refuses it "
          f"within {config.spend.key_refresh_s:g} s); the new one, shown once:")
    print(key)
    return 0


def key_rows(config: GatewayConfig, stored: list[KeyRecord]) -> list[list[str]]:
    rows = [["alias", "team", "source", "status", "budget/day", "budget/month", "models"]]
    for key in config.spend.keys:
        status = "active" if key.key_sha256 else f"MISSING (${key.key_env} is not set)"
        rows.append([key.alias, key.team, "config", status, _opt(key.budget_usd_per_day),
                     _opt(key.budget_usd_per_month), _models(key.allowed_models)])
    for record in stored:
        status = "active" if record.active else f"revoked {_date(record.revoked_at)}"
        rows.append([record.alias, record.team, f"store {_date(record.created_at)}", status,
                     _opt(record.budget_usd_per_day), _opt(record.budget_usd_per_month),
                     _models(record.allowed_models)])
    return rows


def _opt(value: Decimal | None) -> str:
    return "-" if value is None else fmt_usd(to_nanos(value))


def _models(models: frozenset[str] | None) -> str:
    return "all" if models is None else ",".join(sorted(models))


def _date(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts).strftime("%Y-%m-%d")


def table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def cmd_list(config: GatewayConfig, store: Store) -> int:
    rows = key_rows(config, store.keys())
    if len(rows) == 1:
        print("no keys: the gateway runs open (anyone can call it)")
        return 0
    print("\n".join(table(rows)))
    return 0


# --- spend ------------------------------------------------------------------------------


def report_window(args: argparse.Namespace, config: GatewayConfig, now: float) -> tuple[Window, str]:
    tz = zone(config.spend.timezone)
    current = window_at(now, args.window, tz)
    if not args.since:
        return Window(current.id, current.start, now + 1), f"{args.window} {current.id}"
    start = datetime.strptime(args.since, "%Y-%m-%d").replace(tzinfo=tz).timestamp()
    return Window(args.since, start, now + 1), f"since {args.since}"


def cmd_spend(args: argparse.Namespace, config: GatewayConfig, store: Store) -> int:
    now = time.time()
    try:
        window, label = report_window(args, config, now)
    except ValueError:
        print(f"error: --since '{args.since}' is not a date (YYYY-MM-DD)", file=sys.stderr)
        return 2
    summary = store.summary(args.by, window.start, window.end)
    budgets = [Budget.from_config(b) for b in config.spend.budgets]
    for record in store.keys():
        if record.source == "store" and record.active:
            budgets += record.budgets(config.spend.timezone)
    summary = with_budgeted(summary, budgeted_groups(budgets, args.by))
    per_group: dict[str, Budget] = {}
    total: Budget | None = None
    if not args.since:  # a budget's share only makes sense over its own window
        per_group, total = report.matching_budgets(budgets, args.by, args.window)
    tz = zone(config.spend.timezone)
    title = (f"Spend by {args.by}, {label} ({config.spend.timezone}), "
             f"{local_time(window.start, tz)} to now")
    print(report_formats.render(args.format, summary, args.by, title, per_group, total))
    return 0


# --- check-config -----------------------------------------------------------------------


def summary_lines(config: GatewayConfig) -> list[str]:
    """Keys, budgets, runaway guard and webhooks for check-config (never a key or URL)."""
    spend = config.spend
    lines = ["", "keys:"]
    if not spend.keys:
        lines.append("  none in the config (keys created with `llm-gateway keys create` are "
                     f"in the {config.storage.backend} store)")
    for key in spend.keys:
        source = f"env ${key.key_env}" if key.key_env else "sha256"
        if key.key_env and key.key_sha256 is None:
            source = f"MISSING (${key.key_env} is not set)"
        lines.append(f"  {key.alias:<16} team {key.team:<12} key: {source}  "
                     f"models: {_models(key.allowed_models)}")
    lines += ["", f"budgets (time zone {spend.timezone}):"]
    if not spend.budgets:
        lines.append("  none")
    for budget in spend.budgets:
        lines.append(f"  {budget.name:<24} {_scope(budget):<22} ${budget.limit_usd}/{budget.window}"
                     f"  {budget.action}  thresholds {_pcts(budget.thresholds)}"
                     + (f"  tz {budget.timezone}" if budget.timezone != spend.timezone else ""))
    guard = spend.runaway
    lines += ["", "runaway guard:"]
    lines.append(f"  {'on' if guard.enabled else 'off'}: action {guard.action}; spike > "
                 f"{guard.spike_factor:g}x baseline and > {guard.min_requests_per_minute}/min; "
                 f"loop > {guard.loop_threshold} identical bodies in {guard.loop_window_s:g}s")
    lines += ["", "notifications:"]
    lines += [f"  {hook.format:<9} {hook.display}" for hook in spend.webhooks] or ["  none (log only)"]
    limits = config.limits
    lines += ["", "request limits (bound the worst case a call reserves):",
              f"  max_tokens / max_completion_tokens <= {limits.max_tokens:,}; "
              f"n <= {limits.max_n}"]
    lines += ["", f"ledger: {_ledger(config)}"]
    return lines


def _scope(budget: BudgetConfig) -> str:
    return budget.scope if budget.target is None else f"{budget.scope} {budget.target}"


def _pcts(values: tuple[float, ...]) -> str:
    return "/".join(f"{v:g}" for v in values) + "%"


def _ledger(config: GatewayConfig) -> str:
    storage = config.storage
    if storage.backend == "redis":
        return f"redis (prefix {storage.redis_prefix})"
    return f"sqlite {storage.sqlite_path}"


def cross_check(config: GatewayConfig, stored: list[KeyRecord] | None) -> tuple[list[str], list[str]]:
    """(problems, warnings) that need the stored keys: budgets naming a team or key that no key
    has, and open mode. `stored` is None when the store could not be read."""
    spend = config.spend
    active = [r for r in stored or [] if r.active]
    teams = {k.team for k in spend.keys} | {r.team for r in active}
    aliases = {k.alias for k in spend.keys} | {r.alias for r in active}
    problems: list[str] = []
    for budget in spend.budgets:
        if stored is None and budget.scope in ("team", "key"):
            continue
        if budget.scope == "team" and budget.target not in teams:
            problems.append(f"{budget.path}.team: names no team of any key "
                            f"(known teams: {', '.join(sorted(teams)) or 'none'})")
        if budget.scope == "key" and budget.target not in aliases:
            problems.append(f"{budget.path}.key: names no key alias "
                            f"(known: {', '.join(sorted(aliases)) or 'none'})")
    warnings = []
    if not spend.keys and stored is not None and not stored:
        warnings.append("WARNING: " + OPEN_MODE_WARNING)
    if stored is None:
        warnings.append("note: the store could not be read; stored keys were not checked")
    return problems, warnings


def check(config: GatewayConfig, environ: Mapping[str, str]) -> tuple[list[str], list[str]]:
    try:
        stored: list[KeyRecord] | None = Store(config).keys()
    except Exception:
        stored = None
    return cross_check(config, stored)

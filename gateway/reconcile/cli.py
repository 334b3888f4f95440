"""`llm-gateway reconcile --provider openai|anthropic --since DATE`: the ledger's cost and
tokens per UTC day and model beside the provider's own cost and usage reports, for a
nightly job. Exit 0: within the thresholds; 1: a difference passes them; 2: bad
arguments or no admin key; 3: the provider or the ledger could not be read, or the
metrics not exported.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

from redis.exceptions import RedisError

from gateway.config import GatewayConfig
from gateway.reconcile import anthropic_admin, metrics, openai_admin, render
from gateway.reconcile.admin_http import AdminAPI, AdminAPIError, client
from gateway.reconcile.compare import Key, Line, Tally, Thresholds, compare
from gateway.reconcile.ledger_side import ledger_tallies
from gateway.spend.cli import Store, non_negative_decimal  # the spend commands' store and amounts

COMMAND = "reconcile"
PROVIDERS: dict[str, ModuleType] = {openai_admin.NAME: openai_admin,
                                    anthropic_admin.NAME: anthropic_admin}
EXCEEDED, USAGE, UNREADABLE = 1, 2, 3


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(COMMAND, help="compare the ledger with the provider's own cost and "
                                          "usage reports (admin key from the environment)")
    parser.add_argument("--provider", required=True, choices=sorted(PROVIDERS))
    parser.add_argument("--since", required=True, help="first UTC day, YYYY-MM-DD")
    parser.add_argument("--until", help="last UTC day, included (default: yesterday)")
    parser.add_argument("--threshold-usd", default="0.01",
                        help="a line fails past this many dollars... (default 0.01)")
    parser.add_argument("--threshold-pct", default="1",
                        help="...and past this percent of the provider's cost (default 1)")
    parser.add_argument("--ledger-provider", action="append", metavar="NAME",
                        help="the ledger's provider name(s) for this provider's calls "
                             "(gen_ai.provider.name; default: the --provider value)")
    parser.add_argument("--base-url", help="the admin API's base URL (default: "
                        f"${openai_admin.BASE_ENV} / ${anthropic_admin.BASE_ENV}, else the "
                        "provider's)")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument("--metrics-file", metavar="PATH",
                        help="also write the gauges as Prometheus text (node_exporter textfile)")
    parser.add_argument("--config", help="config file (default: $GATEWAY_CONFIG, else built in)")


def _day(text: str, flag: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"{flag} '{text}' is not a date (YYYY-MM-DD)") from None


def _period(args: argparse.Namespace, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) in UTC: --since's midnight to the midnight after --until."""
    start = _day(args.since, "--since")
    if args.until:
        last = _day(args.until, "--until")
    else:
        last = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    if last < start:
        raise ValueError("--until must not be before --since")
    return start, last + timedelta(days=1)


async def provider_tallies(module: ModuleType, base_url: str, key: str, start: datetime,
                           end: datetime) -> dict[Key, Tally]:
    async with client() as session:
        admin = AdminAPI(session, base_url, module.auth_headers(key), key, module.LABEL,
                         module.KEY_ENV)
        result: dict[Key, Tally] = await module.report(admin, start, end)
        return result


def run(args: argparse.Namespace, config: GatewayConfig, environ: Mapping[str, str]) -> int:
    module = PROVIDERS[args.provider]
    try:
        start, end = _period(args, datetime.now(UTC))
        thresholds = Thresholds(non_negative_decimal(args.threshold_usd, "--threshold-usd"),
                                non_negative_decimal(args.threshold_pct, "--threshold-pct"))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE
    key = environ.get(module.KEY_ENV, "").strip()
    if not key:
        print(f"error: reconcile --provider {args.provider} needs the organization's admin key "
              f"in ${module.KEY_ENV} (never on the command line)", file=sys.stderr)
        return USAGE
    base_url = args.base_url or environ.get(module.BASE_ENV) or module.DEFAULT_BASE
    try:
        entries = Store(config).entries(start.timestamp(), end.timestamp())
    except (sqlite3.Error, OSError, ConnectionError, RedisError) as exc:
        print(f"error: the ledger is not readable: {exc}", file=sys.stderr)
        return UNREADABLE
    ours = ledger_tallies(entries, set(args.ledger_provider or [args.provider]))
    try:
        theirs = asyncio.run(provider_tallies(module, base_url, key, start, end))
    except AdminAPIError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return UNREADABLE
    lines = compare(ours, theirs)
    until = (end - timedelta(days=1)).strftime("%Y-%m-%d")
    since = start.strftime("%Y-%m-%d")
    if args.format == "json":
        print(render.as_json(lines, args.provider, since, until, thresholds))
    else:
        title = (f"Reconciliation with {args.provider}, {since} to {until} (UTC days): "
                 f"ledger / provider; a line fails past ${thresholds.usd} and "
                 f"{thresholds.pct}%")
        print(render.table(lines, title, thresholds))
    exported = _export(lines, args, thresholds, environ)
    failed = sum(1 for line in lines if thresholds.exceeded(line))
    if failed:
        print(f"{failed} line(s) differ from {args.provider}'s report past the thresholds",
              file=sys.stderr)
        return EXCEEDED
    return 0 if exported else UNREADABLE


def _export(lines: list[Line], args: argparse.Namespace, thresholds: Thresholds,
            environ: Mapping[str, str]) -> bool:
    """Hand the gauges on; False (after saying why) when they could not be."""
    try:
        if args.metrics_file:
            metrics.write_textfile(args.metrics_file, metrics.prometheus_text(
                lines, args.provider, thresholds, time.time()))
        metrics.push_otlp(lines, args.provider, thresholds, environ)
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"error: the reconcile metrics were not exported: {exc}", file=sys.stderr)
        return False
    return True

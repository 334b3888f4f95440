"""Helpers for the reconcile tests: a ledger seeded directly, and the command run with an
explicit environment (never the test process's)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.config import load
from gateway.reconcile import cli as reconcile_cli
from gateway.spend import ledger_sql
from gateway.spend.ledger import COLUMNS, LedgerEntry

SIM = """
providers: {sim: {kind: mock, mock: {latency_ms: 0, ms_per_chunk: 0, jitter: 0}}}
models:
  m1: {provider: sim, price_per_mtok: {input: 1, output: 2}}
"""


def at(day: str, hour: int = 12) -> float:
    return datetime.strptime(day, "%Y-%m-%d").replace(hour=hour, tzinfo=UTC).timestamp()


def entry(day: str, model: str, provider: str, input_tokens: int, cached: int, output: int,
          cost_nanos: int, *, hour: int = 12, status: str = "ok") -> LedgerEntry:
    return LedgerEntry(at(day, hour), f"req-{model}-{day}-{hour}-{input_tokens}", "0" * 32,
                       "web", "product", None, "chat", model, model, provider,
                       input_tokens=input_tokens, output_tokens=output, cached_tokens=cached,
                       cost_nanos=cost_nanos, status=status)


def seed_sqlite(path: Path, entries: Iterable[LedgerEntry]) -> None:
    conn = ledger_sql.connect(str(path), create=True)
    try:
        ledger_sql.init_schema(conn)
        conn.executemany(ledger_sql.INSERT,
                         [(*(getattr(e, c) for c in COLUMNS), None) for e in entries])
        conn.commit()
    finally:
        conn.close()


async def reconcile(capsys: pytest.CaptureFixture[str], config_text: str,
                    environ: Mapping[str, str], *argv: str) -> tuple[int, str, str]:
    """Run `llm-gateway reconcile ARGV` against the config, with `environ` as the
    environment; (exit code, stdout, stderr)."""
    parser = argparse.ArgumentParser()
    reconcile_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["reconcile", *argv])
    config = load(config_text, {})
    code = await asyncio.to_thread(reconcile_cli.run, args, config, dict(environ))
    out, err = capsys.readouterr()
    return code, out, err

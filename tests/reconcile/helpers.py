"""Helpers for the reconcile tests: a ledger seeded directly, and the command run with an
explicit environment (never the test process's)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Mapping

import pytest

from gateway.config import load
from gateway.reconcile import cli as reconcile_cli
from gateway.spend.ledger import LedgerEntry
from tests.support import ledger_seed
from tests.support.ledger_seed import seed_sqlite

__all__ = ["SIM", "entry", "reconcile", "seed_sqlite"]

SIM = """
providers: {sim: {kind: mock, mock: {latency_ms: 0, ms_per_chunk: 0, jitter: 0}}}
models:
  m1: {provider: sim, price_per_mtok: {input: 1, output: 2}}
"""


def entry(day: str, model: str, provider: str, input_tokens: int, cached: int, output: int,
          cost_nanos: int, *, hour: int = 12, status: str = "ok") -> LedgerEntry:
    return ledger_seed.entry(ledger_seed.at(day, hour), model, provider, input_tokens, cached,
                             output, cost_nanos, status=status)


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

"""`llm-gateway spend --format json|csv` on both stores, with keys that have a budget but no
calls listed at zero spend (a config key and a key created with `keys create`)."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import orjson
import pytest

from gateway.cli import main
from gateway.spend.config import hash_key
from gateway.spend.ledger import LedgerEntry
from tests.support.ledger_seed import entry, seed_redis, seed_sqlite

pytestmark = pytest.mark.integration  # a Redis server for one case

CONFIG = f"""
providers: {{sim: {{kind: mock, mock: {{latency_ms: 0, ms_per_chunk: 0, jitter: 0}}}}}}
models:
  m1: {{provider: sim, price_per_mtok: {{input: 1, output: 2}}}}
keys:
  - {{alias: web, team: product, key_sha256: "{hash_key('sk-gw-web')}", budget_usd_per_day: 1}}
  - {{alias: quiet, team: product, key_sha256: "{hash_key('sk-gw-quiet')}",
     budget_usd_per_day: 2}}
"""


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def _check_report(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    created = _run(capsys, "keys", "create", "--config", str(config), "--alias", "idle",
                   "--team", "data", "--budget-usd-per-month", "5", "--quiet")
    assert created.startswith("sk-gw-")
    data = orjson.loads(_run(capsys, "spend", "--config", str(config), "--by", "key",
                             "--format", "json"))
    rows = {row["group"]: row for row in data["rows"]}
    assert list(rows) == ["web", "idle", "quiet"]
    assert rows["web"]["calls"] == 2 and rows["web"]["cost_usd"] == 0.0105
    assert rows["web"]["budget"]["used_pct"] == 1.05
    assert rows["quiet"] == {"group": "quiet", "calls": 0, "input_tokens": 0,
                             "output_tokens": 0, "cached_tokens": 0, "cost_usd": 0,
                             "cache_write_tokens": 0, "cache_write_1h_tokens": 0,
                             "reasoning_tokens": 0, "unpriced_calls": 0,
                             "input_audio_tokens": 0, "output_audio_tokens": 0,
                             "input_image_tokens": 0, "output_image_tokens": 0,
                             "budget": {"name": "key:quiet:day", "limit_usd": 2.0,
                                        "window": "day", "used_pct": 0.0}}
    assert rows["idle"]["calls"] == 0 and rows["idle"]["budget"] is None  # a monthly budget
    monthly = _run(capsys, "spend", "--config", str(config), "--by", "key", "--window",
                   "month", "--format", "csv")
    lines = list(csv.reader(io.StringIO(monthly)))
    assert lines[0][:6] == ["key", "calls", "input_tokens", "output_tokens", "cached_tokens",
                            "cost_usd"]
    idle = next(line for line in lines if line[0] == "idle")
    assert idle[1:14] == ["0"] * 13 and idle[14:] == ["key:idle:month", "5",
                                                                    "month", "0.0"]
    assert lines[-1][:2] == ["total", "2"]
    table = _run(capsys, "spend", "--config", str(config), "--by", "key")
    assert any(line.split()[:9] == ["quiet", *["0"] * 7, "$0.00"]
               for line in table.splitlines()), table


def _entries() -> list[LedgerEntry]:
    now = time.time() - 5
    return [entry(now, "m1", "simulated", 1000, 0, 1000, 5_250_000),
            entry(now, "m1", "simulated", 1000, 0, 1000, 5_250_000)]


def test_spend_formats_on_sqlite_list_budgeted_keys_without_calls(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """On SQLite, JSON and CSV give every column, and keys with a budget but no calls show
    with zero spend (their budget's share when the window matches)."""
    ledger = tmp_path / "ledger.db"
    seed_sqlite(ledger, _entries())
    config = tmp_path / "g.yaml"
    config.write_text(CONFIG + f'storage: {{sqlite_path: "{ledger}"}}\n')
    _check_report(capsys, config)


def test_spend_formats_on_redis_list_budgeted_keys_without_calls(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], redis_url: str,
        redis_prefix: str) -> None:
    """On Redis the same report, the same zero rows."""
    seed_redis(redis_url, redis_prefix, _entries())
    config = tmp_path / "g.yaml"
    config.write_text(CONFIG + f'storage: {{backend: redis, redis_url: "{redis_url}", '
                               f'redis_prefix: "{redis_prefix}"}}\n')
    _check_report(capsys, config)

"""`spend --format json|csv`: every column of the report, exact dollars, budget use, the
total; and groups with a budget but no calls as rows of zeros."""

from __future__ import annotations

import csv
import io
from zoneinfo import ZoneInfo

import orjson

from gateway.spend import report_formats
from gateway.spend.budgeted import budgeted_groups, with_budgeted
from gateway.spend.budgets import Budget
from gateway.spend.report import Row, Summary


def _budget(scope: str, target: str | None, usd: int, window: str = "day") -> Budget:
    return Budget(name=f"{scope}:{target}", scope=scope, target=target, window=window,
                  limit_nanos=usd * 10**9, action="block", tz=ZoneInfo("UTC"))


def _summary() -> Summary:
    return Summary([Row("etl", 2, 2000, 2000, 500, 21_000_000),
                    Row("web", 1, 1000, 1000, 0, 10_500_000)], pending_calls=1,
                   pending_nanos=3_000_000)


def test_json_carries_every_column_in_dollars_with_budget_use() -> None:
    """JSON rows hold the report's columns, cost in dollars, the budget's share and a total."""
    text = report_formats.render("json", _summary(), "key", "Spend by key",
                                 {"etl": _budget("key", "etl", 1)}, _budget("global", None, 10))
    data = orjson.loads(text)
    assert data["rows"][0] == {"group": "etl", "calls": 2, "input_tokens": 2000,
                               "output_tokens": 2000, "cached_tokens": 500, "cost_usd": 0.021,
                               "cache_write_tokens": 0, "cache_write_1h_tokens": 0,
                               "reasoning_tokens": 0, "unpriced_calls": 0,
                               "input_audio_tokens": 0, "output_audio_tokens": 0,
                               "input_image_tokens": 0, "output_image_tokens": 0,
                               "budget": {"name": "key:etl", "limit_usd": 1.0, "window": "day",
                                          "used_pct": 2.1}}
    assert data["rows"][1]["budget"] is None
    assert data["total"]["group"] == "total" and data["total"]["cost_usd"] == 0.0315
    assert data["total"]["budget"]["used_pct"] == 0.32
    assert data["pending_calls"] == 1 and data["pending_usd"] == 0.003


def test_csv_has_a_header_named_by_the_grouping_and_exact_dollars() -> None:
    """CSV: one line per group and the total, the first column named after `--by`, cost as
    an exact decimal."""
    text = report_formats.render("csv", _summary(), "key", "", {"etl": _budget("key", "etl", 10)},
                                 None)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["key", "calls", "input_tokens", "output_tokens", "cached_tokens",
                       "cost_usd", "cache_write_tokens", "cache_write_1h_tokens",
                       "reasoning_tokens", "unpriced_calls", "input_audio_tokens",
                       "output_audio_tokens", "input_image_tokens", "output_image_tokens",
                       "budget", "budget_limit_usd", "budget_window", "budget_used_pct"]
    assert rows[1] == ["etl", "2", "2000", "2000", "500", "0.021", "0", "0", "0", "0",
                       "0", "0", "0", "0", "key:etl", "10", "day", "0.21"]
    assert rows[2][:6] == ["web", "1", "1000", "1000", "0", "0.0105"]
    assert rows[3][:6] == ["total", "3", "3000", "3000", "500", "0.0315"]


def test_table_is_the_familiar_report() -> None:
    """`--format table` is the report as before."""
    text = report_formats.render("table", _summary(), "key", "Spend by key", {}, None)
    assert text.splitlines()[0] == "Spend by key"
    assert "1 calls in flight" in text


def test_groups_with_a_budget_and_no_calls_get_zero_rows() -> None:
    """A key (any window's budget) or tag value with a budget but no row appears with zero
    spend after those that spent; groups that spent are not doubled."""
    budgets = [_budget("key", "idle", 5, "month"), _budget("key", "web", 1),
               _budget("team", "data", 1), _budget("tag", "project=alpha", 1),
               _budget("global", None, 9)]
    assert budgeted_groups(budgets, "key") == {"idle", "web"}
    assert budgeted_groups(budgets, "tag:project") == {"alpha"}
    assert budgeted_groups(budgets, "model") == set()
    summary = with_budgeted(_summary(), budgeted_groups(budgets, "key"))
    assert [row.group for row in summary.rows] == ["etl", "web", "idle"]
    assert summary.rows[-1] == Row("idle")
    assert summary.total.cost_nanos == 31_500_000

"""`llm-gateway spend --format table|json|csv`: the same report for people (the table
`report.render` draws), for programs (JSON) and for spreadsheets (CSV). Every column of
a report row is carried over as it is; money kept in nano-dollars is given in dollars
(`cost_nanos` becomes `cost_usd`), exact in CSV. Pure."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import fields
from decimal import Decimal
from typing import Any

import orjson

from gateway.spend import report
from gateway.spend.budgets import Budget

FORMATS = ("table", "json", "csv")
_NANOS = "_nanos"


def _usd(nanos: int) -> Decimal:
    return (Decimal(nanos) / 1_000_000_000).normalize() if nanos else Decimal(0)


def _columns(row: report.Row) -> dict[str, Any]:
    """The row's fields by name, nano-dollar amounts as exact dollars."""
    out: dict[str, Any] = {}
    for item in fields(row):
        value = getattr(row, item.name)
        if item.name.endswith(_NANOS):
            out[item.name[:-len(_NANOS)] + "_usd"] = _usd(value)
        else:
            out[item.name] = value
    return out


def _budget(row: report.Row, budget: Budget | None) -> dict[str, Any] | None:
    if budget is None:
        return None
    used = round(row.cost_nanos * 100 / budget.limit_nanos, 2) if budget.limit_nanos else 100.0
    return {"name": budget.name, "limit_usd": _usd(budget.limit_nanos), "window": budget.window,
            "used_pct": used}


def _entries(summary: report.Summary, budgets: Mapping[str, Budget],
             total_budget: Budget | None) -> list[dict[str, Any]]:
    rows = [{**_columns(row), "budget": _budget(row, budgets.get(row.group))}
            for row in summary.rows]
    total = summary.total
    return [*rows, {**_columns(total), "budget": _budget(total, total_budget)}]


def as_json(summary: report.Summary, by: str, title: str, budgets: Mapping[str, Budget],
            total_budget: Budget | None) -> str:
    """Amounts are JSON numbers in dollars (as the admin API gives them)."""
    entries = _entries(summary, budgets, total_budget)
    return orjson.dumps({
        "by": by, "title": title, "rows": entries[:-1], "total": entries[-1],
        "pending_calls": summary.pending_calls,
        "pending_usd": _usd(summary.pending_nanos),
    }, default=float, option=orjson.OPT_INDENT_2).decode()


def as_csv(summary: report.Summary, by: str, budgets: Mapping[str, Budget],
           total_budget: Budget | None) -> str:
    """One line per group and a last line for the total (group `total`); the group column
    is named after the grouping."""
    entries = _entries(summary, budgets, total_budget)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    names = [name for name in entries[0] if name != "budget"]
    writer.writerow([by if name == "group" else name for name in names]
                    + ["budget", "budget_limit_usd", "budget_window", "budget_used_pct"])
    for entry in entries:
        budget = entry["budget"] or {}
        writer.writerow([_cell(entry[name]) for name in names]
                        + [budget.get("name", ""), _cell(budget.get("limit_usd", "")),
                           budget.get("window", ""), budget.get("used_pct", "")])
    return out.getvalue().rstrip("\n")


def _cell(value: Any) -> Any:
    return format(value, "f") if isinstance(value, Decimal) else value


def render(fmt: str, summary: report.Summary, by: str, title: str,
           budgets: Mapping[str, Budget], total_budget: Budget | None) -> str:
    if fmt == "json":
        return as_json(summary, by, title, budgets, total_budget)
    if fmt == "csv":
        return as_csv(summary, by, budgets, total_budget)
    return report.render(summary, by, title, budgets, total_budget)

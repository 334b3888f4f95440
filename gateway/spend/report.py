"""The spend report (`llm-gateway spend`): ledger rows grouped and printed as a table,
with the share of each matching budget used. Aggregation is SQL on SQLite and
plain Python over the entries on Redis; rendering is pure.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import orjson

from gateway.spend.budgets import Budget, fmt_usd
from gateway.spend.ledger import PENDING, LedgerEntry

BY = ("model", "key", "team", "provider", "user")  # and tag:<name>
BY_FIELD = {"model": "model_served", "key": "key_alias", "team": "team", "provider": "provider",
            "user": "end_user"}
BY_SCOPE = {"model": "model", "key": "key", "team": "team", "provider": "provider",
            "user": "user"}
NO_GROUP = "(none)"  # calls that named no end user, or lack the tag grouped by
_TAG = re.compile(r"^tag:[A-Za-z0-9_.-]{1,64}$")


def check_by(by: str) -> str:
    """`by` if it is a grouping the report knows (`tag:<name>` included), else ValueError."""
    if by in BY or _TAG.match(by):
        return by
    raise ValueError(f"unknown grouping '{by}' (expected one of: {', '.join(BY)}, tag:NAME)")


def _group_of(entry: LedgerEntry, by: str) -> str:
    if by.startswith("tag:"):
        tags = orjson.loads(entry.tags) if entry.tags else {}
        value = tags.get(by[4:]) if isinstance(tags, dict) else None
        return str(value) if value else NO_GROUP
    return str(getattr(entry, BY_FIELD[by])) or NO_GROUP


def _group_sql(by: str) -> tuple[str, tuple[str, ...]]:
    """The SQL expression that groups the ledger `by`, and its parameters."""
    if by.startswith("tag:"):
        path = '$."' + by[4:] + '"'  # the name is checked: letters, digits and _.-
        return "COALESCE(json_extract(NULLIF(tags, ''), ?), '')", (path,)
    return BY_FIELD[by], ()


@dataclass
class Row:
    group: str
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_nanos: int = 0
    # Every token type the ledger keeps (cache writes by lifetime), and the calls charged
    # at the unpriced fallback price.
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    reasoning_tokens: int = 0
    unpriced_calls: int = 0
    input_audio_tokens: int = 0
    output_audio_tokens: int = 0
    input_image_tokens: int = 0
    output_image_tokens: int = 0

    def add(self, other: Row) -> None:
        for name in SUMMED:
            setattr(self, name, getattr(self, name) + getattr(other, name))


# The audio and image parts of input and output, as the ledger and a report row name them.
MEDIA_TOKENS = ("input_audio_tokens", "output_audio_tokens", "input_image_tokens",
                "output_image_tokens")
# The Row counts a total adds up, in the order the SQL selects them.
SUMMED = ("calls", "input_tokens", "output_tokens", "cached_tokens", "cost_nanos",
          "cache_write_tokens", "cache_write_1h_tokens", "reasoning_tokens", "unpriced_calls",
          *MEDIA_TOKENS)
_MEDIA_SQL = ", ".join(f"TOTAL({name})" for name in MEDIA_TOKENS)


@dataclass
class Summary:
    rows: list[Row]
    pending_calls: int = 0  # attempts in flight (journaled, not settled yet)
    pending_nanos: int = 0

    @property
    def total(self) -> Row:
        total = Row("total")
        for row in self.rows:
            total.add(row)
        return total


def aggregate(entries: Iterable[LedgerEntry], by: str) -> Summary:
    check_by(by)
    rows: dict[str, Row] = {}
    summary = Summary([])
    for entry in entries:
        if entry.status == PENDING:
            summary.pending_calls += 1
            summary.pending_nanos += entry.cost_nanos
            continue
        group = _group_of(entry, by)
        row = rows.get(group)
        if row is None:
            row = rows[group] = Row(group)
        row.add(Row(group, 1, entry.input_tokens, entry.output_tokens, entry.cached_tokens,
                    entry.cost_nanos, entry.cache_write_tokens, entry.cache_write_1h_tokens,
                    entry.reasoning_tokens, int(entry.unpriced), entry.input_audio_tokens,
                    entry.output_audio_tokens, entry.input_image_tokens,
                    entry.output_image_tokens))
    summary.rows = sorted(rows.values(), key=lambda r: (-r.cost_nanos, r.group))
    return summary


def summarize_sqlite(conn: sqlite3.Connection, by: str, start: float, end: float) -> Summary:
    column, params = _group_sql(check_by(by))
    cur = conn.execute(
        # TOTAL (a double) rather than SUM, which raises past 2^63; exact below 2^53.
        f"SELECT {column} AS grp, COUNT(*), TOTAL(input_tokens), TOTAL(output_tokens), "
        "TOTAL(cached_tokens), TOTAL(cost_nanos), TOTAL(cache_write_tokens), "
        "TOTAL(cache_write_1h_tokens), TOTAL(reasoning_tokens), TOTAL(unpriced), "
        f"{_MEDIA_SQL} "
        "FROM ledger WHERE ts >= ? AND ts < ? "
        "AND status != ? GROUP BY grp ORDER BY TOTAL(cost_nanos) DESC, grp",
        (*params, start, end, PENDING))
    rows = [Row(str(r[0]) or NO_GROUP, *(int(value) for value in r[1:])) for r in cur]
    pending = conn.execute("SELECT COUNT(*), TOTAL(cost_nanos) FROM ledger "
                           "WHERE ts >= ? AND ts < ? AND status = ?", (start, end, PENDING)).fetchone()
    return Summary(rows, int(pending[0]), int(pending[1]))


def _pct(spent: int, budget: Budget | None) -> tuple[str, str]:
    if budget is None:
        return "", ""
    used = f"{spent * 100 / budget.limit_nanos:.1f}%" if budget.limit_nanos else "-"
    return f"{fmt_usd(budget.limit_nanos)}/{budget.window}", used


def render(summary: Summary, by: str, title: str, budgets: Mapping[str, Budget],
           total_budget: Budget | None) -> str:
    """The table: one line per group, then the total; budget columns where one applies."""
    media = has_media(summary.total)
    header = (by, "calls", "input tok", "output tok", "cached tok", *TOKEN_TYPE_HEADER,
              *(MEDIA_HEADER if media else ()), "cost", "budget", "used")
    lines: list[Sequence[str]] = [header]
    for row in summary.rows:
        lines.append(_cells(row, budgets.get(row.group), media))
    lines.append(_cells(summary.total, total_budget, media))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = [title, ""]
    for index, line in enumerate(lines):
        if index == len(lines) - 1:
            out.append("  ".join("-" * w for w in widths).rstrip())
        cells = [line[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(line[1:], widths[1:],
                                                                          strict=True)]
        out.append("  ".join(cells).rstrip())
    if not summary.rows:
        out.insert(2, "(no spend recorded in this period)")
    unpriced = summary.total.unpriced_calls
    if unpriced:
        out.append(f"\n{unpriced} calls were to models with no price: their cost is charged "
                   "at spend.unpriced_price_per_mtok, not a list price.")
    if summary.pending_calls:
        out.append(f"\n{summary.pending_calls} calls in flight, holding up to "
                   f"{fmt_usd(summary.pending_nanos)}, are not included.")
    return "\n".join(out)


def _cells(row: Row, budget: Budget | None, media: bool = False) -> list[str]:
    limit, used = _pct(row.cost_nanos, budget)
    return [row.group, f"{row.calls:,}", f"{row.input_tokens:,}", f"{row.output_tokens:,}",
            f"{row.cached_tokens:,}", *_token_type_cells(row, media), fmt_usd(row.cost_nanos),
            limit, used]


# The columns of the token types beyond input, output and cache reads; the audio and
# image ones only in a period that has any (most have none).
TOKEN_TYPE_HEADER = ("write 5m tok", "write 1h tok", "reasoning tok")
MEDIA_HEADER = ("audio in tok", "audio out tok", "image in tok", "image out tok")


def has_media(row: Row) -> bool:
    """Whether a row counts any audio or image tokens."""
    return any(getattr(row, name) for name in MEDIA_TOKENS)


def _token_type_cells(row: Row, media: bool = False) -> list[str]:
    cells = [f"{row.cache_write_tokens:,}", f"{row.cache_write_1h_tokens:,}",
             f"{row.reasoning_tokens:,}"]
    if media:
        cells += [f"{getattr(row, name):,}" for name in MEDIA_TOKENS]
    return cells


def matching_budgets(budgets: Iterable[Budget], by: str, window: str
                     ) -> tuple[dict[str, Budget], Budget | None]:
    """Per group, the budget of that scope and window (the first blocking one wins); and the
    global budget for the total line."""
    scope = BY_SCOPE.get(by, "")
    tag = by[4:] + "=" if by.startswith("tag:") else None
    per_group: dict[str, Budget] = {}
    total: Budget | None = None
    for budget in sorted(budgets, key=lambda b: not b.blocks):
        if budget.window != window:
            continue
        if tag and budget.scope == "tag" and budget.target and budget.target.startswith(tag):
            per_group.setdefault(budget.target[len(tag):], budget)
        elif budget.scope == scope and budget.target is not None:
            per_group.setdefault(budget.target, budget)
        elif budget.scope == "global" and total is None:
            total = budget
    return per_group, total

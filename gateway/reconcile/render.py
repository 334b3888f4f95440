"""`reconcile` output: a table for people, JSON for jobs. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import orjson

from gateway.reconcile.compare import Line, Thresholds, total

HEADER = ("day", "model", "input ours/provider", "cached ours/provider",
          "output ours/provider", "cost ours", "cost provider", "diff $", "diff %", "")


def usd(value: Decimal) -> str:
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.6f}"


def pct(value: Decimal | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}%"


def _cells(line: Line, flag: str) -> list[str]:
    o, t = line.ours, line.theirs
    return [line.day, line.model, f"{o.input_tokens:,} / {t.input_tokens:,}",
            f"{o.cached_tokens:,} / {t.cached_tokens:,}",
            f"{o.output_tokens:,} / {t.output_tokens:,}", usd(o.cost_usd), usd(t.cost_usd),
            usd(line.diff_usd), pct(line.diff_pct), flag]


def table(lines: Sequence[Line], title: str, thresholds: Thresholds) -> str:
    rows = [list(HEADER)] + [_cells(line, "EXCEEDS" if thresholds.exceeded(line) else "")
                             for line in lines]
    rows.append(_cells(total(lines), ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    out = [title, ""]
    for index, row in enumerate(rows):
        if index == len(rows) - 1:
            out.append("  ".join("-" * w for w in widths[:-1]))
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [c.rjust(w) for c, w in zip(row[2:-1], widths[2:-1], strict=True)]
        out.append("  ".join([*cells, row[-1]]).rstrip())
    if not lines:
        out.insert(2, "(neither the ledger nor the provider has usage in this period)")
    return "\n".join(out)


def exact(value: Decimal) -> str:
    """A decimal string without trailing zeros or an exponent: "0.25", "10", "0"."""
    return format(value.normalize(), "f") if value else "0"


def _side(line: Line, which: str) -> dict[str, Any]:
    tally = line.ours if which == "ours" else line.theirs
    return {"input_tokens": tally.input_tokens, "cached_tokens": tally.cached_tokens,
            "output_tokens": tally.output_tokens, "cost_usd": exact(tally.cost_usd)}


def _line(line: Line, thresholds: Thresholds) -> dict[str, Any]:
    diff = line.diff_pct
    return {"day": line.day, "model": line.model, "ledger": _side(line, "ours"),
            "provider": _side(line, "theirs"), "difference_usd": exact(line.diff_usd),
            "difference_pct": None if diff is None else exact(round(diff, 4)),
            "exceeds": thresholds.exceeded(line)}


def as_json(lines: Sequence[Line], provider: str, since: str, until: str,
            thresholds: Thresholds) -> str:
    """Amounts as decimal strings: exact, and no float rounding in a money column."""
    summary = total(lines)
    return orjson.dumps({
        "provider": provider, "since": since, "until": until,
        "thresholds": {"usd": str(thresholds.usd), "pct": str(thresholds.pct)},
        "lines": [_line(line, thresholds) for line in lines],
        "total": {"ledger": _side(summary, "ours"), "provider": _side(summary, "theirs"),
                  "difference_usd": exact(summary.diff_usd)},
        "exceeded": sum(1 for line in lines if thresholds.exceeded(line)),
    }, option=orjson.OPT_INDENT_2).decode()

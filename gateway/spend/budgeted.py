"""Groups that have a budget appear in the spend report even before their first call:
a key with a budget and no spend shows as a row of zeros, not as a missing line that
reads like a reporting gap. Pure."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.spend.budgets import Budget
from gateway.spend.report import BY_SCOPE, Row, Summary


def budgeted_groups(budgets: Iterable[Budget], by: str) -> set[str]:
    """The groups of grouping `by` that some budget (any window) is set for."""
    if by.startswith("tag:"):
        prefix = by[4:] + "="
        return {b.target[len(prefix):] for b in budgets
                if b.scope == "tag" and b.target and b.target.startswith(prefix)}
    scope = BY_SCOPE.get(by)
    return {b.target for b in budgets if b.scope == scope and b.target}


def with_budgeted(summary: Summary, groups: Iterable[str]) -> Summary:
    """`summary` plus a zero row for every group in `groups` it has no row for, listed
    after the groups that spent (by name)."""
    present = {row.group for row in summary.rows}
    missing = sorted(set(groups) - present)
    summary.rows = [*summary.rows, *(Row(group) for group in missing)]
    return summary

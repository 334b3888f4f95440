"""The comparison itself: per UTC day and model, our ledger's tally beside the provider's,
the difference in dollars and percent, and whether it passes the thresholds. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

Key = tuple[str, str]  # (UTC day "YYYY-MM-DD", model as names.base_model gives it)
ZERO = Decimal(0)


@dataclass
class Tally:
    """Tokens and cost of one day and model on one side. `input_tokens` counts every input
    token (cache reads and writes included); `cached_tokens` the cache reads among them."""

    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = field(default_factory=lambda: ZERO)

    def add(self, other: Tally) -> None:
        self.input_tokens += other.input_tokens
        self.cached_tokens += other.cached_tokens
        self.output_tokens += other.output_tokens
        self.cost_usd += other.cost_usd


def tally(into: dict[Key, Tally], key: Key) -> Tally:
    """The tally under `key`, created empty when missing."""
    found = into.get(key)
    if found is None:
        found = into[key] = Tally()
    return found


@dataclass(frozen=True)
class Line:
    day: str
    model: str
    ours: Tally
    theirs: Tally

    @property
    def diff_usd(self) -> Decimal:
        """What the provider billed beyond what the ledger recorded (negative: below)."""
        return self.theirs.cost_usd - self.ours.cost_usd

    @property
    def diff_pct(self) -> Decimal | None:
        """The difference as a percentage of the provider's cost; None when the provider
        billed nothing (any recorded cost is then infinitely off)."""
        if self.theirs.cost_usd == 0:
            return ZERO if self.ours.cost_usd == 0 else None
        return self.diff_usd * 100 / self.theirs.cost_usd


@dataclass(frozen=True)
class Thresholds:
    """A line fails when its difference passes both: more than `usd` dollars and more than
    `pct` percent of the provider's cost (a line the provider billed nothing for fails on
    dollars alone). Set one to 0 to judge by the other alone."""

    usd: Decimal = Decimal("0.01")
    pct: Decimal = Decimal("1")

    def exceeded(self, line: Line) -> bool:
        if abs(line.diff_usd) <= self.usd:
            return False
        pct = line.diff_pct
        return pct is None or abs(pct) > self.pct


def compare(ours: Mapping[Key, Tally], theirs: Mapping[Key, Tally]) -> list[Line]:
    """One line per day and model found on either side, in day then model order."""
    return [Line(day, model, ours.get((day, model)) or Tally(),
                 theirs.get((day, model)) or Tally())
            for day, model in sorted(set(ours) | set(theirs))]


def total(lines: Iterable[Line]) -> Line:
    ours, theirs = Tally(), Tally()
    for line in lines:
        ours.add(line.ours)
        theirs.add(line.theirs)
    return Line("total", "", ours, theirs)

"""Budget decisions, pure: which budgets a call counts against, what a call may
cost at worst, which thresholds a new spend crosses, and what a refusal says.

Money here is integer nano-dollars (1e-9 USD): prices per million tokens with
up to three decimals give exact integers, sums never round, and Redis/Lua can
add them without floating-point drift.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from gateway.pricing import ModelPricing, cost_pico, worst_case_pico
from gateway.spend.config import DEFAULT_THRESHOLDS, BudgetConfig
from gateway.spend.windows import Window, WindowTracker, duration, local_time, zone
from gateway.usage import MAX_TOKENS, Usage

NANOS_PER_USD = 1_000_000_000
ATTRIBUTED = ("user", "tag")  # scopes that depend on the request, not on key and model
_NANOS = Decimal(NANOS_PER_USD)
PICO_PER_NANO = 1000
# The most one attempt can reserve or be charged: 2^53 nano-dollars, about $9.0 million.
# Every amount stays exact in a double (Redis Lua's numbers, SQLite's TOTAL) and far
# inside SQLite's and orjson's 64-bit integers, so no sum of amounts can overflow there;
# a worst case above it is refused by any budget smaller than $9 million anyway.
MAX_NANOS = 1 << 53
_MAX_NANOS = Decimal(MAX_NANOS)


def clamp_nanos(nanos: int) -> int:
    """An amount brought into [0, MAX_NANOS]."""
    return 0 if nanos < 0 else min(nanos, MAX_NANOS)


def to_nanos(usd: Decimal) -> int:
    """US dollars to nano-dollars, rounded up (a cost is never under-counted), within
    [0, MAX_NANOS] (a non-finite amount counts as the maximum)."""
    if not usd.is_finite():
        return MAX_NANOS
    nanos = usd * _NANOS
    if nanos >= _MAX_NANOS:
        return MAX_NANOS
    return clamp_nanos(int(nanos.to_integral_value(rounding=ROUND_CEILING)))


def to_usd(nanos: int) -> Decimal:
    return Decimal(nanos) / _NANOS


def fmt_usd(nanos: int) -> str:
    value = nanos / NANOS_PER_USD
    return f"${value:,.2f}" if value >= 1 or value == 0 else f"${value:.4f}"


@dataclass(frozen=True, slots=True)
class Budget:
    """A budget in force (from config, or from a key created with the CLI)."""

    name: str
    scope: str
    target: str | None
    window: str  # day | month
    limit_nanos: int
    action: str  # block | alert
    tz: ZoneInfo
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS

    @classmethod
    def from_config(cls, config: BudgetConfig) -> Budget:
        return cls(name=config.name, scope=config.scope, target=config.target,
                   window=config.window, limit_nanos=to_nanos(config.limit_usd),
                   action=config.action, tz=zone(config.timezone), thresholds=config.thresholds)

    @property
    def blocks(self) -> bool:
        return self.action == "block"

    def matches(self, alias: str, team: str, model: str, provider: str) -> bool:
        """Whether an attempt counts against it (user and tag budgets: `matches_call`)."""
        scope = self.scope
        if scope == "global":
            return True
        if scope in ATTRIBUTED:
            return False
        value = {"key": alias, "team": team, "model": model, "provider": provider}[scope]
        return value == self.target

    def matches_call(self, user: str, tags: tuple[tuple[str, str], ...]) -> bool:
        """A user or tag budget: whether the call's end user or one of its tags is its target."""
        if self.scope == "user":
            return bool(user) and user == self.target
        return any(f"{name}={value}" == self.target for name, value in tags)

    def label(self) -> str:
        """`team research, per day`: the budget in words."""
        what = "all traffic" if self.target is None else f"{self.scope} {self.target}"
        return f"{what}, per {self.window}"


class BudgetSet:
    """Every budget in force; lookups per (key, team, model, provider) are cached."""

    def __init__(self, budgets: Iterable[Budget] = ()) -> None:
        self._static = list(budgets)
        # Per end user or tag: looked at only for calls that name a user or tags.
        self._attributed = tuple(b for b in self._static if b.scope in ATTRIBUTED)
        self._by_key: dict[str, tuple[Budget, ...]] = {}
        self._cache: dict[tuple[str, str, str, str], tuple[Budget, ...]] = {}
        self._trackers: dict[str, WindowTracker] = {}

    def all(self) -> list[Budget]:
        return [*self._static, *(b for group in self._by_key.values() for b in group)]

    def set_key_budgets(self, budgets_by_alias: Mapping[str, Sequence[Budget]]) -> None:
        """Replace the budgets that come with stored keys (CLI `--budget-usd-per-day`)."""
        fresh = {alias: tuple(b) for alias, b in budgets_by_alias.items() if b}
        if fresh != self._by_key:
            self._by_key = fresh
            self._cache = {}

    def applicable(self, alias: str, team: str, model: str, provider: str, user: str = "",
                   tags: tuple[tuple[str, str], ...] = ()) -> tuple[Budget, ...]:
        """The budgets one attempt counts against (the hot path: one dict lookup, plus a
        scan of the user and tag budgets for a call that names a user or tags)."""
        key = (alias, team, model, provider)
        found = self._cache.get(key)
        if found is None:
            found = tuple(b for b in self.all() if b.matches(alias, team, model, provider))
            if len(self._cache) > 10_000:  # bounded: aliases and models come from config
                self._cache.clear()
            self._cache[key] = found
        if self._attributed and (user or tags):
            extra = tuple(b for b in self._attributed if b.matches_call(user, tags))
            if extra:
                return found + extra
        return found

    def window(self, budget: Budget, ts: float) -> Window:
        tracker = self._trackers.get(budget.name)
        if tracker is None or tracker.kind != budget.window or tracker.tz is not budget.tz:
            tracker = self._trackers[budget.name] = WindowTracker(budget.window, budget.tz)
        return tracker.at(ts)


def output_tokens_reserved(body: Mapping[str, Any], max_tokens: int | None, default: int,
                           operation: str) -> int:
    """The most output tokens a request can produce (its `max_tokens` times `n`)."""
    if operation == "embeddings":
        return 0
    choices = body.get("n")
    n = choices if isinstance(choices, int) and not isinstance(choices, bool) and choices > 1 else 1
    return min((max_tokens or default) * n, MAX_TOKENS)


def worst_case_nanos(prompt_tokens: int, output_tokens: int, pricing: ModelPricing) -> int:
    """Upper bound of an attempt's cost: no cache discount (and every input token at the
    dearest input price), every output token used (at most MAX_NANOS); integers only."""
    pico = worst_case_pico(prompt_tokens, output_tokens, pricing)
    return clamp_nanos(-(-pico // PICO_PER_NANO))


def cost_nanos(usage: Usage, pricing: ModelPricing) -> int:
    """A call's cost in nano-dollars, rounded up (never under-counted); integers only."""
    return clamp_nanos(-(-cost_pico(usage, pricing) // PICO_PER_NANO))


class ThresholdTracker:
    """Which thresholds of each budget already fired in its current window (in memory;
    the store makes it once per window across restarts and replicas)."""

    def __init__(self) -> None:
        self._fired: dict[str, tuple[str, int]] = {}  # budget -> (window id, how many fired)

    def crossed(self, budget: Budget, window: Window, spent_nanos: int,
                limit_nanos: int | None = None) -> list[float]:
        """Thresholds newly reached by `spent_nanos` in `window` (of `limit_nanos`, by default
        the budget's limit; a worker's share of it under SQLite workers)."""
        window_id, fired = self._fired.get(budget.name, (window.id, 0))
        if window_id != window.id:
            fired = 0
        thresholds = budget.thresholds
        reached = fired
        limit = budget.limit_nanos if limit_nanos is None else limit_nanos
        while reached < len(thresholds) and spent_nanos * 100 >= thresholds[reached] * limit:
            reached += 1
        self._fired[budget.name] = (window.id, reached)
        return list(thresholds[fired:reached])


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an attempt may not start: the first blocking budget it does not fit in."""

    budget: Budget
    window: Window
    spent_nanos: int
    reserved_nanos: int
    needed_nanos: int
    shares: int = 1  # N gateway workers on SQLite: each enforces 1/N of the limit

    def retry_after_s(self, now: float) -> int:
        return max(1, math.ceil(self.window.end - now))

    def message(self, now: float) -> str:
        budget = self.budget
        limit = budget.limit_nanos // self.shares
        used = self.spent_nanos + self.reserved_nanos
        left = max(0, limit - used)
        if self.spent_nanos >= limit:
            why = f"is used up: {fmt_usd(self.spent_nanos)} of {fmt_usd(limit)} spent"
        else:
            why = (f"would be exceeded: this request could cost up to {fmt_usd(self.needed_nanos)}"
                   f" and only {fmt_usd(left)} of {fmt_usd(limit)} is left"
                   + (" (some is held by requests in flight)" if self.reserved_nanos else "")
                   + "; a lower max_tokens may fit")
        if self.shares > 1:
            why += (f" (this gateway worker's 1/{self.shares} share of "
                    f"{fmt_usd(budget.limit_nanos)})")
        return (f"Budget '{budget.name}' ({budget.label()}) {why}. It resets at "
                f"{local_time(self.window.end, budget.tz)} (in {duration(self.window.end - now)}).")

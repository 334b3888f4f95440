"""Budget decisions: which budgets an attempt counts against, worst-case cost,
thresholds crossed once per window, and the refusal message."""

from __future__ import annotations

from decimal import Decimal

from gateway.catalog import config_pricing
from gateway.config import Price
from gateway.spend.budgets import (
    Budget,
    BudgetSet,
    Refusal,
    ThresholdTracker,
    output_tokens_reserved,
    to_nanos,
    worst_case_nanos,
)
from gateway.spend.windows import Window, window_named, zone

UTC = zone("UTC")


def _budget(name: str, scope: str, target: str | None, limit: int = 1000) -> Budget:
    return Budget(name, scope, target, "day", limit, "block", UTC)


def test_each_scope_matches_only_its_target() -> None:
    """Global matches all; key, team, model and provider budgets match their own target."""
    budgets = BudgetSet([_budget("g", "global", None), _budget("k", "key", "web"),
                         _budget("t", "team", "data"), _budget("m", "model", "gpt-4.1"),
                         _budget("p", "provider", "openai")])
    names = [b.name for b in budgets.applicable("web", "data", "gpt-4.1", "openai")]
    assert names == ["g", "k", "t", "m", "p"]
    assert [b.name for b in budgets.applicable("etl", "ops", "cheap", "simulated")] == ["g"]


def test_key_budgets_from_the_store_replace_and_invalidate_the_cache() -> None:
    """Budgets that come with stored keys join the set and leave it again."""
    budgets = BudgetSet([])
    assert budgets.applicable("web", "t", "m", "p") == ()
    budgets.set_key_budgets({"web": [_budget("key:web:day", "key", "web")]})
    assert [b.name for b in budgets.applicable("web", "t", "m", "p")] == ["key:web:day"]
    budgets.set_key_budgets({})
    assert budgets.applicable("web", "t", "m", "p") == ()


def test_worst_case_uses_max_tokens_times_n_or_the_default() -> None:
    """Output reserved is max_tokens x n (or the default); embeddings reserve no output."""
    assert output_tokens_reserved({}, None, 4096, "chat") == 4096
    assert output_tokens_reserved({"n": 3}, 100, 4096, "chat") == 300
    assert output_tokens_reserved({}, None, 4096, "embeddings") == 0
    price = config_pricing(Price(Decimal("2.5"), Decimal(8), Decimal("0.625")))
    assert worst_case_nanos(12, 100, price) == 12 * 2500 + 100 * 8000


def test_nanos_round_up() -> None:
    """Converting dollars to nano-dollars never rounds a cost down."""
    assert to_nanos(Decimal("0.0000000001")) == 1
    assert to_nanos(Decimal("1.5")) == 1_500_000_000


def test_thresholds_fire_once_per_window() -> None:
    """Each threshold fires when first reached in a window, and again in the next window."""
    budget = Budget("b", "global", None, "day", 1000, "block", UTC, (50.0, 80.0, 100.0))
    tracker = ThresholdTracker()
    day1, day2 = Window("d1", 0, 10), Window("d2", 10, 20)
    assert tracker.crossed(budget, day1, 400) == []
    assert tracker.crossed(budget, day1, 850) == [50.0, 80.0]
    assert tracker.crossed(budget, day1, 900) == []
    assert tracker.crossed(budget, day1, 1000) == [100.0]
    assert tracker.crossed(budget, day2, 500) == [50.0]


def test_refusal_names_the_budget_the_reason_and_the_reset() -> None:
    """The message says which budget, why (used up, or this call does not fit) and when it
    resets; Retry-After counts the seconds to the reset."""
    budget = Budget("fuse", "global", None, "day", 50_000_000_000, "block", zone("Asia/Shanghai"))
    window = window_named("2026-11-30", "day", zone("Asia/Shanghai"))
    full = Refusal(budget, window, 50_000_000_000, 0, 1000)
    assert full.message(window.end - 90).startswith(
        "Budget 'fuse' (all traffic, per day) is used up: $50.00 of $50.00 spent.")
    assert "It resets at 2026-12-01 00:00 Asia/Shanghai (in 1m 30s)." in full.message(window.end - 90)
    assert full.retry_after_s(window.end - 90) == 90
    tight = Refusal(budget, window, 49_990_000_000, 5_000_000, 33_000_000)
    text = tight.message(window.start)
    assert "would be exceeded" in text and "a lower max_tokens may fit" in text
    assert "held by requests in flight" in text

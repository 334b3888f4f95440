"""In-process accounting: reserve-or-refuse is atomic, settle swaps the hold for the real
cost, windows start empty, and a call settles into the window it started in."""

from __future__ import annotations

from gateway.spend.accounting import MemoryAccountant
from gateway.spend.budgets import Budget, BudgetSet
from gateway.spend.ledger import LedgerEntry, Reservation
from gateway.spend.windows import Window, zone

UTC = zone("UTC")
BLOCK = Budget("b", "global", None, "day", 1000, "block", UTC)
ALERT = Budget("a", "global", None, "day", 10, "alert", UTC)
DAY1, DAY2 = Window("d1", 0, 100), Window("d2", 100, 200)


def _res(amount: int, window: Window = DAY1, budgets: tuple[Budget, ...] = (BLOCK,)) -> Reservation:
    entry = LedgerEntry(0, "r", "", "k", "t", None, "chat", "m", "m", "p")
    return Reservation(budgets, tuple(window for _ in budgets), amount, 0.0, 1, lambda: entry)


def test_reservations_fill_the_budget_then_refuse() -> None:
    """Holds add up to the limit; the next one that does not fit is refused and holds nothing."""
    acct = MemoryAccountant(BudgetSet([BLOCK]))
    assert all(acct.reserve(_res(250)) is None for _ in range(4))
    refused = _res(1)
    refusal = acct.reserve(refused)
    assert refusal is not None and refusal.budget is BLOCK and refusal.reserved_nanos == 1000
    assert not refused.held
    assert acct.level(BLOCK, DAY1) == (0, 1000)


def test_settle_releases_the_hold_and_adds_the_real_cost() -> None:
    """Settling swaps the worst case for the real cost, freeing room for more calls."""
    acct = MemoryAccountant(BudgetSet([BLOCK]))
    res = _res(600)
    acct.reserve(res)
    assert acct.reserve(_res(600)) is not None
    levels = acct.settle(res, res.budgets, res.windows, 100)
    assert levels == [(BLOCK, DAY1, 100)]
    assert acct.level(BLOCK, DAY1) == (100, 0)
    assert acct.reserve(_res(600)) is None


def test_alert_budgets_track_but_never_refuse() -> None:
    """An alert budget past its limit still lets calls through."""
    acct = MemoryAccountant(BudgetSet([ALERT]))
    res = _res(50, budgets=(ALERT,))
    assert acct.reserve(res) is None
    acct.settle(res, res.budgets, res.windows, 50)
    assert acct.reserve(_res(50, budgets=(ALERT,))) is None


def test_new_window_starts_empty_and_old_calls_settle_into_their_own() -> None:
    """After midnight the budget is empty; a call started before midnight does not charge
    the new day (the ledger dates it by its start too)."""
    acct = MemoryAccountant(BudgetSet([BLOCK]))
    late = _res(900)
    acct.reserve(late)
    acct.seed(BLOCK, DAY2, 0)
    assert acct.reserve(_res(900, DAY2)) is None
    assert acct.settle(late, late.budgets, late.windows, 900) == []
    assert acct.level(BLOCK, DAY2) == (0, 900)


def test_seed_counts_spend_already_in_the_ledger() -> None:
    """Spend found in the ledger at start counts against the window."""
    acct = MemoryAccountant(BudgetSet([BLOCK]))
    acct.seed(BLOCK, DAY1, 950)
    assert acct.is_seeded(BLOCK, DAY1)
    assert acct.reserve(_res(100)) is not None
    assert acct.reserve(_res(50)) is None


def test_each_of_n_workers_holds_a_share_so_together_they_stay_within() -> None:
    """With N SQLite workers, each enforces limit/N and counts spent/N (rounded up) of the
    ledger, so all of them together can never pass the limit."""
    workers = [MemoryAccountant(BudgetSet([BLOCK]), shares=3) for _ in range(3)]
    for acct in workers:
        acct.seed(BLOCK, DAY1, 100)  # the ledger's 100, seen by every worker
    granted = sum(acct.reserve(_res(10)) is None for acct in workers for _ in range(100))
    assert 100 + granted * 10 <= BLOCK.limit_nanos
    assert granted == 3 * ((1000 // 3 - 34) // 10)

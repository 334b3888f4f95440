"""In-process budget accounting: spent and reserved per budget window, in memory.

The check and the reservation happen in one synchronous step with no `await`
in between, so on one event loop two concurrent requests can never both take
the last dollars of a budget. Seeded from the ledger at start; used with the
SQLite store. Under `serve --workers N` each worker process holds a 1/N share
of every budget (and counts 1/N of the spend found in the ledger), so together
they still never pass the limit; Redis shares one budget exactly instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.spend.budgets import Budget, BudgetSet, Refusal
from gateway.spend.ledger import Reservation
from gateway.spend.windows import Window


@dataclass(slots=True)
class Counter:
    window_id: str
    spent: int = 0
    reserved: int = 0


Level = tuple[Budget, Window, int]  # a budget, its window and the spend settled in it


class MemoryAccountant:
    def __init__(self, budgets: BudgetSet, shares: int = 1) -> None:
        self.budgets = budgets
        self.shares = max(1, shares)
        self._counters: dict[str, Counter] = {}

    def limit(self, budget: Budget) -> int:
        """This process's share of the budget's limit."""
        return budget.limit_nanos // self.shares

    def _counter(self, budget: Budget, window: Window) -> Counter:
        counter = self._counters.get(budget.name)
        if counter is None or counter.window_id != window.id:
            # A new window starts empty: its spend can only come from calls started in it.
            counter = self._counters[budget.name] = Counter(window.id)
        return counter

    def seed(self, budget: Budget, window: Window, spent_nanos: int) -> None:
        """Spend already in the ledger for this window (at start, or for a new key budget)."""
        counter = self._counter(budget, window)
        counter.spent = max(counter.spent, -(-spent_nanos // self.shares))

    def is_seeded(self, budget: Budget, window: Window) -> bool:
        counter = self._counters.get(budget.name)
        return counter is not None and counter.window_id == window.id

    def reserve(self, res: Reservation) -> Refusal | None:
        """Hold `res.amount_nanos` on every budget, or refuse if a blocking one cannot fit it."""
        amount = res.amount_nanos
        counters = [self._counter(b, w) for b, w in zip(res.budgets, res.windows, strict=True)]
        for budget, window, counter in zip(res.budgets, res.windows, counters, strict=True):
            if budget.blocks and counter.spent + counter.reserved + amount > self.limit(budget):
                res.held = False
                return Refusal(budget, window, counter.spent, counter.reserved, amount,
                               self.shares)
        for counter in counters:
            counter.reserved += amount
        return None

    def settle(self, res: Reservation | None, budgets: tuple[Budget, ...],
               windows: tuple[Window, ...], actual_nanos: int) -> list[Level]:
        """Release the reservation and add the real cost; returns the new spend levels."""
        levels: list[Level] = []
        held = res is not None and res.held
        if res is not None:
            res.held = False
        for budget, window in zip(budgets, windows, strict=True):
            counter = self._counters.get(budget.name)
            if counter is None or counter.window_id != window.id:
                continue  # the window it started in is over; a new one does not owe it
            if held and res is not None:
                counter.reserved = max(0, counter.reserved - res.amount_nanos)
            counter.spent += actual_nanos
            levels.append((budget, window, counter.spent))
        return levels

    def level(self, budget: Budget, window: Window) -> tuple[int, int]:
        """(spent, reserved) in `window`; zero for a window not started yet."""
        counter = self._counters.get(budget.name)
        if counter is None or counter.window_id != window.id:
            return 0, 0
        return counter.spent, counter.reserved

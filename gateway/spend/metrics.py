"""The spend-control instruments: budget gauges, budget rejections, runaway events.

Created once per app from the telemetry's Meter. The gauges are observable: the
SDK asks for their values at collection time, so the request path never records
them; they read the in-memory levels the budget accounting already keeps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from gateway.spend.budgets import NANOS_PER_USD, Budget
from gateway.telemetry import names as n

# (budget, spent nanos, limit nanos enforced here) for every budget, in its current window
LevelSource = Callable[[], Iterable[tuple[Budget, int, int]]]


def budget_labels(budget: Budget) -> dict[str, str]:
    return {n.LABEL_BUDGET: budget.name, n.LABEL_BUDGET_SCOPE: budget.scope,
            n.LABEL_BUDGET_WINDOW: budget.window}


class SpendMetrics:
    def __init__(self, meter: Meter, levels: LevelSource) -> None:
        self._levels = levels
        self.rejections = meter.create_counter(
            n.M_BUDGET_REJECTIONS, unit="{request}",
            description="Requests refused because a budget would be exceeded.")
        self.runaway_events = meter.create_counter(
            n.M_RUNAWAY_EVENTS, unit="{request}",
            description="Runaway-guard triggers: one per alert episode, one per refused request.")
        meter.create_observable_gauge(
            n.M_BUDGET_SPEND, callbacks=[self._spend], unit="{USD}",
            description="Spend in the budget's current window, in US dollars.")
        meter.create_observable_gauge(
            n.M_BUDGET_LIMIT, callbacks=[self._limit], unit="{USD}",
            description="The budget's limit per window, in US dollars.")

    def _spend(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(spent / NANOS_PER_USD, budget_labels(budget))
                for budget, spent, _ in self._levels()]

    def _limit(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(limit / NANOS_PER_USD, budget_labels(budget))
                for budget, _, limit in self._levels()]

    def rejected(self, budget: Budget) -> None:
        self.rejections.add(1, budget_labels(budget))

    def runaway(self, alias: str, kind: str, action: str, context: Any = None) -> None:
        self.runaway_events.add(1, {n.GATEWAY_KEY_ALIAS: alias, n.LABEL_RUNAWAY_KIND: kind,
                                    n.LABEL_ACTION: action}, context=context)

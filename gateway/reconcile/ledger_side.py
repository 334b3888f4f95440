"""Our side of the comparison: ledger entries of one provider, tallied per UTC day and
model (the provider reports bucket by UTC day). Pure.

Every settled entry counts, estimated ones included (that is what budgets were
charged); entries still in flight do not. An entry falls on the day its attempt started.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import UTC, datetime
from decimal import Decimal

from gateway.reconcile.compare import Key, Tally, tally
from gateway.reconcile.names import base_model
from gateway.spend.ledger import PENDING, LedgerEntry

NANOS = Decimal(10) ** 9


def ledger_tallies(entries: Iterable[LedgerEntry], providers: Collection[str]
                   ) -> dict[Key, Tally]:
    out: dict[Key, Tally] = {}
    for entry in entries:
        if entry.status == PENDING or entry.provider not in providers:
            continue
        day = datetime.fromtimestamp(entry.ts, UTC).strftime("%Y-%m-%d")
        found = tally(out, (day, base_model(entry.model_served or entry.model_requested)))
        found.input_tokens += entry.input_tokens
        found.cached_tokens += entry.cached_tokens
        found.output_tokens += entry.output_tokens
        found.cost_usd += Decimal(entry.cost_nanos) / NANOS
    return out

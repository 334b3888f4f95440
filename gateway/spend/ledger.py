"""What the ledger records about each attempt that cost money, and the reservation
that holds an attempt's worst case against its budgets until it settles.

Pure data and conversions; the stores (`sqlite_store`, `redis_store`) persist it.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from gateway.spend import ledger_sql
from gateway.spend.budgets import Budget
from gateway.spend.windows import Window

# Ledger statuses besides an attempt's own error type (`timeout`, `client_disconnect`, ...).
OK = "ok"
PENDING = "pending"  # journaled at its worst case, not settled yet
UNSETTLED = "unsettled"  # its gateway died or the attempt ended abnormally: worst case charged


@dataclass(slots=True)
class LedgerEntry:
    """One attempt that used (or may have used) tokens."""

    ts: float  # Unix seconds when the attempt started: it counts in that window
    request_id: str
    trace_id: str
    key_alias: str
    team: str
    key_id: str | None
    operation: str
    model_requested: str
    model_served: str
    provider: str  # gen_ai.provider.name
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cost_nanos: int = 0
    status: str = OK
    estimated: bool = False
    stream: bool = False
    attempt: int = 1

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LedgerEntry:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def cost_usd(self) -> float:
        return self.cost_nanos / 1e9


COLUMNS: tuple[str, ...] = ledger_sql.COLUMNS
if COLUMNS != tuple(f.name for f in fields(LedgerEntry)):  # pragma: no cover - a coding error
    raise ImportError("ledger_sql.COLUMNS must list LedgerEntry's fields in order")
_PROCESS = secrets.token_hex(6)  # reservation ids must be unique across replicas sharing Redis
_SEQUENCE = itertools.count()


def reservation_id() -> str:
    """Unique and cheap (uuid4 costs a system call per request)."""
    return f"{_PROCESS}-{next(_SEQUENCE)}"


@dataclass(slots=True)
class Reservation:
    """An attempt's worst-case cost, held against its budgets until it settles."""

    budgets: tuple[Budget, ...]
    windows: tuple[Window, ...]
    amount_nanos: int
    ts: float  # when the attempt started
    attempt: int
    make_journal: Callable[[], LedgerEntry]  # built only when needed (streams, Redis, crashes)
    id: str = field(default_factory=reservation_id)
    _journal: LedgerEntry | None = None
    journaled: bool = False  # SQLite: a pending row was written for it
    row_id: int | None = None  # SQLite: that row's id, as the ledger writer reported it
    held: bool = True  # False once the store no longer holds it (settled or expired)

    @property
    def journal(self) -> LedgerEntry:
        """The entry as recorded if the attempt never settles: its worst case."""
        if self._journal is None:
            self._journal = self.make_journal()
        return self._journal

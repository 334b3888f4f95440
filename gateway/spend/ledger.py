"""What the ledger records about each attempt that cost money, and the reservation
that holds an attempt's worst case against its budgets until it settles.

Pure data and conversions; the stores (`sqlite_store`, `redis_store`) persist it.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

from gateway.spend import ledger_sql
from gateway.spend.budgets import Budget
from gateway.spend.windows import Window

# Ledger statuses besides an attempt's own error type (`timeout`, `client_disconnect`, ...).
OK = "ok"
PENDING = "pending"  # journaled at its worst case, not settled yet
UNSETTLED = "unsettled"  # its gateway died or the attempt ended abnormally: worst case charged


@dataclass(slots=True, init=False)
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
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    cost_nanos: int
    status: str
    estimated: bool
    stream: bool
    attempt: int
    tags: str  # the request's tags as a JSON object ("" when none), see gateway/attribution.py
    end_user: str  # the end user the client named ("" when none)
    # Cache writes by lifetime: five-minute (the default) and one-hour entries; part of input.
    cache_write_tokens: int
    cache_write_1h_tokens: int
    # The model had no price: cost_nanos is at spend.unpriced_price_per_mtok, not a list price.
    unpriced: bool
    # Audio and image tokens (parts of input and output), priced at their own rates.
    input_audio_tokens: int
    output_audio_tokens: int
    input_image_tokens: int
    output_image_tokens: int

    def __init__(self, ts: float, request_id: str, trace_id: str, key_alias: str, team: str,
                 key_id: str | None, operation: str, model_requested: str, model_served: str,
                 provider: str, input_tokens: int = 0, output_tokens: int = 0,
                 cached_tokens: int = 0, reasoning_tokens: int = 0, cost_nanos: int = 0,
                 status: str = OK, estimated: bool = False, stream: bool = False,
                 attempt: int = 1, tags: str = "", end_user: str = "",
                 cache_write_tokens: int = 0, cache_write_1h_tokens: int = 0,
                 unpriced: bool = False, input_audio_tokens: int = 0,
                 output_audio_tokens: int = 0, input_image_tokens: int = 0,
                 output_image_tokens: int = 0) -> None:
        # Written out (init=False): the generated __init__ stays interpreted in the compiled build.
        self.ts = ts
        self.request_id = request_id
        self.trace_id = trace_id
        self.key_alias = key_alias
        self.team = team
        self.key_id = key_id
        self.operation = operation
        self.model_requested = model_requested
        self.model_served = model_served
        self.provider = provider
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.cached_tokens = cached_tokens
        self.reasoning_tokens = reasoning_tokens
        self.cost_nanos = cost_nanos
        self.status = status
        self.estimated = estimated
        self.stream = stream
        self.attempt = attempt
        self.tags = tags
        self.end_user = end_user
        self.cache_write_tokens = cache_write_tokens
        self.cache_write_1h_tokens = cache_write_1h_tokens
        self.unpriced = unpriced
        self.input_audio_tokens = input_audio_tokens
        self.output_audio_tokens = output_audio_tokens
        self.input_image_tokens = input_image_tokens
        self.output_image_tokens = output_image_tokens

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


@dataclass(slots=True, init=False)
class Reservation:
    """An attempt's worst-case cost, held against its budgets until it settles."""

    budgets: tuple[Budget, ...]
    windows: tuple[Window, ...]
    amount_nanos: int
    ts: float  # when the attempt started
    attempt: int
    make_journal: Callable[[], LedgerEntry]  # built only when needed (streams, Redis, crashes)
    id: str
    _journal: LedgerEntry | None
    journaled: bool  # SQLite: a pending row was written for it
    row_id: int | None  # SQLite: that row's id, as the ledger writer reported it
    held: bool  # False once the store no longer holds it (settled or expired)
    # SQLite: its last write still in flight (the journal row, then the settled entry): the
    # writer's acknowledgement, which the answer waits for (`Call.hold`); None when awaited.
    written: asyncio.Future[Any] | None

    def __init__(self, budgets: tuple[Budget, ...], windows: tuple[Window, ...],
                 amount_nanos: int, ts: float, attempt: int,
                 make_journal: Callable[[], LedgerEntry], id: str | None = None,
                 _journal: LedgerEntry | None = None, journaled: bool = False,
                 row_id: int | None = None, held: bool = True,
                 written: asyncio.Future[Any] | None = None) -> None:  # see LedgerEntry
        self.budgets = budgets
        self.windows = windows
        self.amount_nanos = amount_nanos
        self.ts = ts
        self.attempt = attempt
        self.make_journal = make_journal
        self.id = reservation_id() if id is None else id
        self._journal = _journal
        self.journaled = journaled
        self.row_id = row_id
        self.held = held
        self.written = written

    @property
    def journal(self) -> LedgerEntry:
        """The entry as recorded if the attempt never settles: its worst case."""
        if self._journal is None:
            self._journal = self.make_journal()
        return self._journal

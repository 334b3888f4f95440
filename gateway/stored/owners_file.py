"""The stored-response owners' SQLite file: where it is, its table, its writes, and the
batch the spend ledger's writer process keeps of them.

Imports nothing heavy: the ledger writer process (`spend/ledger_writer.py`), which
must start fast, writes the owners the gateway sends it down the ledger's pipe, and
the gateway's own `SqliteOwners` (reads, and writes when there is no writer process)
uses the same statements.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from gateway.sqlitefile import connect, while_locked

KEEP_S: Final = 30 * 86400  # as long as OpenAI keeps a stored response
FLUSH_S: Final = 0.025  # how long owners are gathered before one write
# The ledger writer's operations on owners, as the gateway sends them down its pipe.
OP_OWNER: Final = "o"  # [o, response id, provider, model] -> None (written within FLUSH_S)
OP_FORGET: Final = "f"  # [f, response id] -> None, once it is out of the file
OWNER_OPS: Final = frozenset((OP_OWNER, OP_FORGET))
SCHEMA: Final = ("CREATE TABLE IF NOT EXISTS response_owners (id TEXT PRIMARY KEY, "
                 "provider TEXT NOT NULL, model TEXT NOT NULL, created REAL NOT NULL)")
_PUT: Final = "INSERT OR REPLACE INTO response_owners VALUES (?, ?, ?, ?)"


def owners_path(ledger_path: str) -> str:
    """The owners' SQLite file beside the ledger's (`data/gateway.sqlite3` ->
    `data/gateway-owners.sqlite3`). A file of their own: SQLite lets one writer at a
    time into a file, and the ledger's writes must not wait for the owners'."""
    path = Path(ledger_path)
    return str(path.with_name(f"{path.stem}-owners{path.suffix}"))


def open_owners(path: str) -> sqlite3.Connection:
    """A connection to the owners' file, its table created."""
    conn = connect(path)
    while_locked(lambda: conn.execute(SCHEMA))  # every worker and writer may open it at once
    return conn


def put(conn: sqlite3.Connection, owners: Sequence[tuple[str, str, str]]) -> None:
    """(id, provider, model) rows, in one transaction, stamped now."""
    now = time.time()
    rows = [(ident, provider, model, now) for ident, provider, model in owners]
    with conn:
        conn.execute("BEGIN")
        conn.executemany(_PUT, rows)


def delete(conn: sqlite3.Connection, response_id: str) -> None:
    conn.execute("DELETE FROM response_owners WHERE id = ?", (response_id,))


class OwnerBatch:
    """In the ledger writer process: the owners the gateway sent, gathered for `flush_s`
    from the first and then written in one transaction, so that a write carries tens of
    owners under load. A forget drops a pending owner and deletes the written one at
    once; the pipe keeps the gateway's order, so a deleted response's owner is never
    written after its delete. The connection opens with the first operation."""

    def __init__(self, path: str, flush_s: float = FLUSH_S) -> None:
        self.path = path
        self.flush_s = flush_s
        self.pending: dict[str, tuple[str, str]] = {}
        self.due: float | None = None  # monotonic time of the next write, while any pend
        self._conn: sqlite3.Connection | None = None

    def take(self, op: Sequence[Any]) -> None:
        """An owner op from the pipe (`OP_OWNER` or `OP_FORGET`)."""
        if op[0] == OP_OWNER:
            self.pending[op[1]] = (op[2], op[3])
            if self.due is None:
                self.due = time.monotonic() + self.flush_s
            return
        self.pending.pop(op[1], None)
        self._guarded("forget a response's owner", lambda conn: delete(conn, op[1]))

    def wait_s(self) -> float | None:
        """How long the writer may wait for input before the next write is due."""
        return None if self.due is None else max(0.0, self.due - time.monotonic())

    def flush(self, *, due_only: bool = False) -> None:
        """Write what is pending (only when it is due, with `due_only`)."""
        if self.due is None or (due_only and time.monotonic() < self.due):
            return
        rows = [(ident, owner[0], owner[1]) for ident, owner in self.pending.items()]
        self.pending.clear()
        self.due = None
        self._guarded(f"store the owners of {len(rows)} responses", lambda conn: put(conn, rows))

    def _guarded(self, what: str, write: Callable[[sqlite3.Connection], None]) -> None:
        """One write; a failure is reported on stderr (the gateway's), never fatal: an
        owner missing from the file only makes its calls a 404."""
        try:
            if self._conn is None:
                self._conn = open_owners(self.path)
            write(self._conn)
        except Exception as exc:
            print(f"gateway ledger writer: could not {what} in {self.path}: "
                  f"{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)

    def close(self) -> None:
        self.flush()
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

"""The embedded store: the ledger, stored keys and sent notices in one SQLite file.

WAL mode with `synchronous=NORMAL`: a committed transaction is in the WAL file
(the OS has it) before the commit returns, so it survives `kill -9` of the
gateway; only an OS crash or power loss can lose the last commits. All writes go
through one dedicated writer thread that commits in batches (group commit), so
the event loop never blocks on disk and a burst of requests costs one commit.
Reads (key refresh, seeding, reports) use short-lived connections in worker
threads; WAL lets them run beside the writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import operator
import os
import queue
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from gateway.spend.keys import KeyRecord
from gateway.spend.ledger import COLUMNS, PENDING, UNSETTLED, LedgerEntry, Reservation

_log = logging.getLogger(__name__)
T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    request_id TEXT NOT NULL,
    trace_id TEXT NOT NULL,
    key_alias TEXT NOT NULL,
    team TEXT NOT NULL,
    key_id TEXT,
    operation TEXT NOT NULL,
    model_requested TEXT NOT NULL,
    model_served TEXT NOT NULL,
    provider TEXT NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cached_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL,
    cost_nanos INTEGER NOT NULL,
    status TEXT NOT NULL,
    estimated INTEGER NOT NULL,
    stream INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    owner TEXT
);
CREATE INDEX IF NOT EXISTS ledger_ts ON ledger(ts);
CREATE INDEX IF NOT EXISTS ledger_pending ON ledger(owner) WHERE status = 'pending';
CREATE TABLE IF NOT EXISTS keys (
    key_sha256 TEXT PRIMARY KEY,
    alias TEXT NOT NULL,
    team TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL,
    allowed_models TEXT,
    budget_usd_per_day TEXT,
    budget_usd_per_month TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS keys_active_alias ON keys(alias) WHERE revoked_at IS NULL;
CREATE TABLE IF NOT EXISTS notices (claim TEXT PRIMARY KEY, at REAL NOT NULL);
"""

_INSERT = (f"INSERT INTO ledger ({', '.join(COLUMNS)}, owner) "
           f"VALUES ({', '.join('?' for _ in COLUMNS)}, ?)")
_UPDATE = (f"UPDATE ledger SET {', '.join(f'{c} = ?' for c in COLUMNS)}, owner = NULL "
           "WHERE id = ?")
SCOPE_COLUMN = {"model": "model_served", "provider": "provider", "key": "key_alias", "team": "team"}
REPORT_COLUMN = {"model": "model_served", "provider": "provider", "key": "key_alias",
                 "team": "team"}
_BATCH = 512


class KeyExists(Exception):
    """An active key already has this alias."""


def connect(path: str, *, create: bool = True) -> sqlite3.Connection:
    """A connection with the pragmas every user of the file needs."""
    if create:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def init_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)


_row = operator.attrgetter(*COLUMNS)  # entry -> tuple of its column values, in C


def _proc_start(pid: int) -> str:
    """The process's start time in clock ticks since boot: pid + this is unique per boot."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def owner_token() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_proc_start(pid)}"


def owner_alive(owner: str) -> bool:
    """Whether the gateway process that wrote a pending row still runs (same host only)."""
    host, _, rest = owner.partition(":")
    pid_text, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return True  # another machine's row: not ours to recover
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return _proc_start(pid) == started if started else True


def recover_pending(conn: sqlite3.Connection) -> int:
    """Journal rows of dead gateways become charges at their worst case."""
    owners = [row[0] for row in conn.execute(
        "SELECT DISTINCT owner FROM ledger WHERE status = 'pending'")]
    dead = [o for o in owners if o is None or not owner_alive(o)]
    recovered = 0
    for owner in dead:
        cur = conn.execute("UPDATE ledger SET status = ?, owner = NULL "
                           "WHERE status = 'pending' AND owner IS ?", (UNSETTLED, owner))
        recovered += cur.rowcount
    return recovered


@dataclass(slots=True)
class _Op:
    run: Callable[[sqlite3.Connection], Any] | None  # None: a plain ledger insert of `params`
    future: asyncio.Future[Any] | None
    params: tuple[Any, ...] = ()


class _Writer(threading.Thread):
    """The one thread that writes: drains the queue, runs a batch in one transaction."""

    def __init__(self, path: str, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(name="spend-ledger-writer", daemon=True)
        self.path = path
        self.loop = loop
        self.queue: queue.SimpleQueue[list[_Op] | None] = queue.SimpleQueue()
        self.conn: sqlite3.Connection | None = None
        self.failed: BaseException | None = None

    def run(self) -> None:
        try:
            self.conn = connect(self.path)
        except sqlite3.Error as exc:  # pragma: no cover - the file was opened once already
            self.failed = exc
            return
        try:
            self._loop(self.conn)
        finally:
            self.conn.close()

    def _loop(self, conn: sqlite3.Connection) -> None:
        while True:
            first = self.queue.get()
            batch = [first]
            while len(batch) < _BATCH:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            ops = [op for group in batch if group is not None for op in group]
            if ops:
                self._commit(conn, ops)
            if None in batch:
                return

    def _commit(self, conn: sqlite3.Connection, ops: list[_Op]) -> None:
        results: list[tuple[_Op, Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            inserts: list[_Op] = []
            for op in ops:
                if op.run is None:
                    inserts.append(op)
                    continue
                self._insert(conn, inserts, results)
                try:
                    results.append((op, op.run(conn), None))
                except sqlite3.IntegrityError as exc:
                    results.append((op, None, exc))
            self._insert(conn, inserts, results)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            _log.exception("the spend ledger could not commit %d writes", len(ops))
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            results = [(op, None, exc) for op in ops]
        waiting = [r for r in results if r[0].future is not None]
        if waiting:
            with contextlib.suppress(RuntimeError):  # the loop is gone (shutdown)
                self.loop.call_soon_threadsafe(_resolve, waiting)


    @staticmethod
    def _insert(conn: sqlite3.Connection, inserts: list[_Op],
                results: list[tuple[_Op, Any, BaseException | None]]) -> None:
        """Plain inserts in one executemany: one call into SQLite for the whole run."""
        if inserts:
            conn.executemany(_INSERT, [op.params for op in inserts])
            results.extend((op, None, None) for op in inserts)
            inserts.clear()


def _resolve(results: list[tuple[_Op, Any, BaseException | None]]) -> None:
    for op, value, exc in results:
        future = op.future
        if future is None or future.done():
            continue
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(value)


class SqliteStore:
    """Ledger, keys and notice claims in one SQLite file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.owner = owner_token()
        self._writer: _Writer | None = None
        self._pending: list[_Op] = []  # ops of this loop iteration, handed over in one put

    # --- lifecycle ----------------------------------------------------------
    async def open(self) -> int:
        """Create the schema, recover dead gateways' journal rows, start the writer."""
        recovered = await asyncio.to_thread(self._prepare)
        if recovered:
            _log.warning("spend ledger: %d attempts of a gateway that died were charged at "
                         "their reserved worst case (status 'unsettled')", recovered)
        self._writer = _Writer(self.path, asyncio.get_running_loop())
        self._writer.start()
        return recovered

    def _prepare(self) -> int:
        conn = connect(self.path)
        try:
            init_schema(conn)
            return recover_pending(conn)
        finally:
            conn.close()

    async def close(self) -> None:
        self._flush()
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.queue.put(None)
            await asyncio.to_thread(writer.join, 30.0)

    # --- writes (through the writer thread) -----------------------------------
    def _submit(self, run: Callable[[sqlite3.Connection], Any] | None, wait: bool,
                params: tuple[Any, ...] = ()) -> asyncio.Future[Any] | None:
        writer = self._writer
        if writer is None:
            raise RuntimeError("the spend store is not open")
        loop = asyncio.get_running_loop()
        future = loop.create_future() if wait else None
        if not self._pending:
            loop.call_soon(self._flush)  # one hand-over (and writer wake-up) per loop iteration
        self._pending.append(_Op(run, future, params))
        return future

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending and self._writer is not None:
            self._writer.queue.put(pending)

    def journal(self, res: Reservation, *, wait: bool) -> asyncio.Future[Any] | None:
        """Write the attempt's pending row (its worst case) before it goes upstream."""
        params = (*_row(res.journal), self.owner)

        def run(conn: sqlite3.Connection) -> None:
            res.row_id = conn.execute(_INSERT, params).lastrowid

        res.journaled = True
        return self._submit(run, wait)

    def record(self, res: Reservation | None, entry: LedgerEntry | None, *, wait: bool
               ) -> asyncio.Future[Any] | None:
        """Replace the journal row with the settled entry (or drop it if nothing was used)."""
        values = _row(entry) if entry is not None else None
        if res is None or not res.journaled:
            if values is None:
                return None  # nothing used, nothing journaled: no write at all
            return self._submit(None, wait, (*values, None))

        def run(conn: sqlite3.Connection) -> None:
            row_id = res.row_id if res is not None else None
            if values is None:
                if row_id is not None:
                    conn.execute("DELETE FROM ledger WHERE id = ?", (row_id,))
            elif row_id is not None:
                conn.execute(_UPDATE, (*values, row_id))
            else:
                conn.execute(_INSERT, (*values, None))

        return self._submit(run, wait)

    async def claim(self, claim: str, now: float) -> bool:
        """True for the first caller only: a threshold notice fires once per window."""
        def run(conn: sqlite3.Connection) -> bool:
            cur = conn.execute("INSERT OR IGNORE INTO notices (claim, at) VALUES (?, ?)",
                               (claim, now))
            return cur.rowcount == 1

        future = self._submit(run, True)
        assert future is not None
        return bool(await future)

    # --- reads (worker threads) -------------------------------------------------
    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.to_thread(self.read_sync, fn)

    def read_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = connect(self.path)
        try:
            return fn(conn)
        finally:
            conn.close()

    async def load_keys(self) -> list[KeyRecord]:
        return await self.read(list_keys)

    async def spent(self, scope: str, target: str | None, start: float, end: float) -> int:
        return await self.read(lambda conn: spent_in(conn, scope, target, start, end))


def spent_in(conn: sqlite3.Connection, scope: str, target: str | None, start: float,
             end: float) -> int:
    """Settled spend (and dead gateways' unsettled worst cases) in [start, end)."""
    sql = ("SELECT COALESCE(SUM(cost_nanos), 0) FROM ledger "
           "WHERE ts >= ? AND ts < ? AND status != ?")
    params: list[Any] = [start, end, PENDING]
    column = SCOPE_COLUMN.get(scope)
    if column is not None:
        sql += f" AND {column} = ?"
        params.append(target)
    return int(conn.execute(sql, params).fetchone()[0])


# --- keys (sync: the CLI calls these directly, the gateway from a thread) --------


def _decimal(text: str | None) -> Decimal | None:
    return Decimal(text) if text else None


def list_keys(conn: sqlite3.Connection) -> list[KeyRecord]:
    rows = conn.execute(
        "SELECT key_sha256, alias, team, created_at, revoked_at, allowed_models, "
        "budget_usd_per_day, budget_usd_per_month FROM keys ORDER BY created_at").fetchall()
    return [KeyRecord(alias=r[1], team=r[2], key_sha256=r[0], created_at=r[3], revoked_at=r[4],
                      allowed_models=frozenset(r[5].split(",")) if r[5] else None,
                      budget_usd_per_day=_decimal(r[6]), budget_usd_per_month=_decimal(r[7]))
            for r in rows]


def create_key(conn: sqlite3.Connection, record: KeyRecord) -> None:
    models = ",".join(sorted(record.allowed_models)) if record.allowed_models else None
    try:
        conn.execute(
            "INSERT INTO keys (key_sha256, alias, team, created_at, allowed_models, "
            "budget_usd_per_day, budget_usd_per_month) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (record.key_sha256, record.alias, record.team, record.created_at or time.time(), models,
             _text(record.budget_usd_per_day), _text(record.budget_usd_per_month)))
    except sqlite3.IntegrityError:
        raise KeyExists(record.alias) from None


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def revoke_key(conn: sqlite3.Connection, alias: str, now: float) -> bool:
    cur = conn.execute("UPDATE keys SET revoked_at = ? WHERE alias = ? AND revoked_at IS NULL",
                       (now, alias))
    return cur.rowcount > 0


def entries(conn: sqlite3.Connection, start: float, end: float) -> Iterable[LedgerEntry]:
    """Every row in [start, end), oldest first (tests and exports)."""
    cur = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM ledger WHERE ts >= ? AND ts < ? "
                       "ORDER BY id", (start, end))
    for row in cur:
        entry = LedgerEntry(*row)
        entry.estimated = bool(entry.estimated)
        entry.stream = bool(entry.stream)
        yield entry

"""The embedded store: the ledger, stored keys and sent notices in one SQLite file.

WAL mode with `synchronous=NORMAL`: a committed transaction is in the WAL file
(the OS has it) before the commit returns, so it survives `kill -9` of the
gateway; only an OS crash or power loss can lose the last commits. All writes go
through one writer child process (`ledger_writer`) that commits in batches
(group commit): the event loop never blocks on disk, never shares a GIL with
the writer, and a burst of requests costs one commit. Reads (key refresh,
seeding, reports) use short-lived connections in worker threads; WAL lets them
run beside the writer.

The same writer process writes the stored-response owners to their own file when
`carry_owners` named it (`put_owner`, `forget_owner`). An owner rides in the next
frame of ledger writes, which under load leaves within a loop iteration or two, so
it costs the gateway a list append and a few bytes of that frame; when no ledger
write comes within `RIDE_S` it goes in a frame of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, Final, TypeVar

import orjson

from gateway.spend import ledger_sql as sql
from gateway.spend.keys import KeyRecord
from gateway.spend.ledger import COLUMNS, PENDING, UNSETTLED, LedgerEntry, Reservation
from gateway.spend.ledger_lock import LedgerLock, acquire, owner_alive, owner_token
from gateway.spend.ledger_sql import init_schema
from gateway.spend.ledger_writer import HEADER, frame
from gateway.sqlitefile import connect
from gateway.stored.owners_file import OP_FORGET, OP_OWNER

_log = logging.getLogger(__name__)
T = TypeVar("T")
SCOPE_COLUMN = {"model": "model_served", "provider": "provider", "key": "key_alias", "team": "team",
                "user": "end_user"}
__all__ = ["SqliteStore", "connect", "init_schema"]
RIDE_S: Final = 0.005  # the longest an owner waits for a ledger frame to ride in


def _row(entry: LedgerEntry) -> tuple[Any, ...]:
    return (entry.ts, entry.request_id, entry.trace_id, entry.key_alias, entry.team,
            entry.key_id, entry.operation, entry.model_requested, entry.model_served,
            entry.provider, entry.input_tokens, entry.output_tokens, entry.cached_tokens,
            entry.reasoning_tokens, entry.cost_nanos, entry.status, entry.estimated,
            entry.stream, entry.attempt, entry.tags, entry.end_user, entry.cache_write_tokens,
            entry.cache_write_1h_tokens, entry.unpriced, entry.input_audio_tokens,
            entry.output_audio_tokens, entry.input_image_tokens, entry.output_image_tokens)


def recover_pending(conn: sqlite3.Connection, session: str) -> int:
    """Journal rows of dead gateways become charges at their worst case. Called by the
    holder of the ledger's lock (`ledger_lock`): rows of other sessions are all dead."""
    owners = [row[0] for row in conn.execute(
        "SELECT DISTINCT owner FROM ledger WHERE status = 'pending'")]
    dead = [o for o in owners if o is None or not owner_alive(o, session)]
    recovered = 0
    for owner in dead:
        cur = conn.execute("UPDATE ledger SET status = ?, owner = NULL "
                           "WHERE status = 'pending' AND owner IS ?", (UNSETTLED, owner))
        recovered += cur.rowcount
    return recovered


class _Writer:
    """The parent's side of the writer process: frames out, acknowledgements in."""

    def __init__(self, path: str, owners_path: str | None = None) -> None:
        self.path = path
        self.owners_path = owners_path  # the owners' file, when this writer writes it too
        self.process: asyncio.subprocess.Process | None = None
        self.waiting: dict[int, list[asyncio.Future[Any] | None]] = {}
        self.seq = 0
        self._reader: asyncio.Task[None] | None = None
        self._stopped = False

    async def start(self) -> None:
        # The child imports the very same `gateway` package as this process.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        paths = [self.path] if self.owners_path is None else [self.path, self.owners_path]
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway.spend.ledger_writer", *paths,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env)
        self._reader = asyncio.create_task(self._read_acks(self.process), name="ledger-acks")

    def send(self, ops: list[list[Any]], futures: list[asyncio.Future[Any] | None]) -> None:
        process = self.process
        if process is None or process.stdin is None or process.stdin.is_closing():
            _fail(futures, RuntimeError("the ledger writer is not running"))
            return
        self.seq += 1
        try:
            data = frame([self.seq, ops])
        except (TypeError, ValueError):  # an op the encoder refuses: it fails alone
            ops, futures = _encodable(ops, futures)
            if not ops:
                return
            data = frame([self.seq, ops])
        self.waiting[self.seq] = futures
        process.stdin.write(data)

    async def _read_acks(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        try:
            while True:
                header = await process.stdout.readexactly(HEADER.size)
                (size,) = HEADER.unpack(header)
                reply = orjson.loads(await process.stdout.readexactly(size))
                _settle_frame(self.waiting.pop(reply[0], []), reply)
        except asyncio.IncompleteReadError:
            pass
        except Exception:  # a reply that does not parse: the pipe is out of step
            _log.exception("the spend ledger writer's acknowledgements could not be read")
            if process.returncode is None:
                process.kill()  # restarted below
        finally:  # no await in a finally (see docs/architecture.md): the wait is below
            lost = [f for futures in self.waiting.values() for f in futures]
            self.waiting.clear()
            _fail(lost, RuntimeError("the ledger writer exited"))
        if self.process is process:  # not stopped by us: start a new one
            code = await process.wait()
            _log.error("the spend ledger writer exited with %s; starting a new one "
                       "(%d writes in flight failed)", code, len(lost))
            self.process = None
            asyncio.get_running_loop().call_later(1.0, self._restart)

    def _restart(self) -> None:
        if self.process is None and not self._stopped:
            asyncio.get_running_loop().create_task(self.start())

    async def stop(self) -> None:
        self._stopped = True
        process, self.process = self.process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    @property
    def idle(self) -> bool:
        """No frame sent and not yet acknowledged: the writer is waiting for work."""
        return not self.waiting

    @property
    def piped(self) -> bool:
        """Everything sent is in the pipe (the kernel's), none of it in our buffer: the
        writer reads it even if this process is killed now, and commits it on EOF."""
        process = self.process
        if process is None or process.stdin is None:
            return False
        return process.stdin.transport.get_write_buffer_size() == 0


def _encodable(ops: list[list[Any]], futures: list[asyncio.Future[Any] | None]
               ) -> tuple[list[list[Any]], list[asyncio.Future[Any] | None]]:
    """The ops the frame encoder accepts; the others' waiters fail with the reason."""
    kept_ops: list[list[Any]] = []
    kept: list[asyncio.Future[Any] | None] = []
    for op, future in zip(ops, futures, strict=True):
        try:
            orjson.dumps(op)
        except (TypeError, ValueError) as exc:
            _log.error("the spend ledger refused a write it cannot encode: %s", exc)
            _fail((future,), RuntimeError(f"the spend ledger cannot encode this write: {exc}"))
            continue
        kept_ops.append(op)
        kept.append(future)
    return kept_ops, kept


def _settle_frame(futures: list[asyncio.Future[Any] | None], reply: list[Any]) -> None:
    """Resolve one frame's waiters from the writer's reply: `[seq, results]`, or
    `[seq, results, failures]` when some ops failed alone (`[[index, error], ...]`),
    or `[seq, null, error]` when the whole frame failed."""
    if reply[1] is None:
        _log.error("the spend ledger could not commit: %s", reply[2])
        _fail(futures, RuntimeError(reply[2]))
        return
    failed = {index: error for index, error in (reply[2] if len(reply) > 2 else ())}
    for index, (future, result) in enumerate(zip(futures, reply[1], strict=True)):
        if future is None or future.done():
            continue
        if index in failed:
            future.set_exception(RuntimeError(f"the spend ledger could not commit: {failed[index]}"))
        else:
            future.set_result(result)
    if failed:
        _log.error("the spend ledger could not commit %d write(s): %s", len(failed),
                   "; ".join(sorted(set(failed.values()))))


def _fail(futures: Iterable[asyncio.Future[Any] | None], error: BaseException) -> None:
    for future in futures:
        if future is not None and not future.done():
            future.set_exception(error)


class SqliteStore:
    """Ledger, keys and notice claims in one SQLite file."""

    def __init__(self, path: str, environ: Mapping[str, str] | None = None) -> None:
        self.path = path
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.owner = ""  # this process's journal rows' owner, once the ledger's lock is held
        self.owners_path: str | None = None  # the stored-response owners' file, if carried
        self._lock: LedgerLock | None = None
        self._writer: _Writer | None = None
        self._ops: list[list[Any]] = []  # this loop iteration's writes, sent as one frame
        self._futures: list[asyncio.Future[Any] | None] = []
        self._riders: list[list[Any]] = []  # owners waiting for the next frame
        self._ride: asyncio.TimerHandle | None = None  # sends them if no frame comes

    # --- lifecycle ----------------------------------------------------------
    async def open(self) -> int:
        """Take the ledger's lock (LedgerInUse if another gateway has it), create the
        schema, recover dead gateways' journal rows, start the writer."""
        self._lock = await asyncio.to_thread(acquire, self.path, self.environ)
        self.owner = owner_token(self._lock.session)
        try:
            recovered = await asyncio.to_thread(self._prepare, self._lock.session)
        except BaseException:
            self._release()
            raise
        if recovered:
            _log.warning("spend ledger: %d attempts of a gateway that died were charged at "
                         "their reserved worst case (status 'unsettled')", recovered)
        self._writer = _Writer(self.path, self.owners_path)
        await self._writer.start()
        return recovered

    def _prepare(self, session: str) -> int:
        conn = connect(self.path)
        try:
            init_schema(conn)
            return recover_pending(conn, session)
        finally:
            conn.close()

    async def recover(self) -> int:
        """Charge the journal rows of `--workers` siblings that died since the start (a
        lone gateway finds none: it recovered every other owner's rows at start)."""
        lock = self._lock
        if lock is None:
            return 0
        session = lock.session
        return await self.read(lambda conn: recover_pending(conn, session))

    async def close(self) -> None:
        self._flush()
        writer, self._writer = self._writer, None
        if writer is not None:
            await writer.stop()
        self._release()

    def _release(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

    # --- writes (through the writer process) ----------------------------------
    def _submit(self, op: list[Any], wait: bool) -> asyncio.Future[Any] | None:
        writer = self._writer
        if writer is None or not writer.alive:
            raise RuntimeError("the spend ledger writer is not running (see the log)")
        loop = asyncio.get_running_loop()
        future = loop.create_future() if wait else None
        first = not self._ops
        self._ops.append(op)
        self._futures.append(future)
        if first:
            if writer.idle:  # it waits for work: hand this over now, it commits meanwhile
                self._flush()
            else:  # it is committing: what this loop iteration brings goes in one frame
                loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        if self._riders:
            self._board()
        ops, futures = self._ops, self._futures
        if not ops:
            return
        self._ops, self._futures = [], []
        if self._writer is None:
            _fail(futures, RuntimeError("the spend store is closed"))
            return
        try:
            self._writer.send(ops, futures)
        except Exception as exc:  # a loop callback: whatever happens, no waiter is left hanging
            _log.exception("could not hand writes to the spend ledger writer")
            _fail(futures, RuntimeError(f"the spend ledger writer could not take the write: {exc}"))

    def journal(self, res: Reservation) -> asyncio.Future[Any]:
        """Hand the attempt's pending row (its worst case) to the writer, before the attempt
        goes upstream: its frame is sent now, with whatever this loop iteration queued
        (see `piped`). The future is the writer's acknowledgement (the row id)."""
        future = self._submit([sql.OP_JOURNAL, *_row(res.journal), self.owner], True)
        assert future is not None
        self._flush()

        def remember(done: asyncio.Future[Any]) -> None:
            if not done.cancelled() and done.exception() is None:
                res.row_id = done.result()

        future.add_done_callback(remember)
        res.journaled = True
        return future

    @property
    def piped(self) -> bool:
        """Whether every write handed over so far is in the writer's pipe: from then on a
        `kill -9` of this process cannot lose it (the writer commits what it read on EOF)."""
        writer = self._writer
        return writer is not None and not self._ops and writer.piped

    def record(self, res: Reservation | None, entry: LedgerEntry | None, *, wait: bool
               ) -> asyncio.Future[Any] | None:
        """Replace the journal row with the settled entry (or drop it if nothing was used)."""
        row_id = res.row_id if res is not None else None
        if entry is None:
            if row_id is None:
                return None  # nothing used, nothing journaled: no write at all
            return self._submit([sql.OP_DELETE, row_id], wait)
        if row_id is not None:
            return self._submit([sql.OP_UPDATE, *_row(entry), row_id], wait)
        return self._submit([sql.OP_INSERT, *_row(entry), None], wait)

    async def claim(self, claim: str, now: float) -> bool:
        """True for the first caller only: a threshold notice fires once per window."""
        future = self._submit([sql.OP_CLAIM, claim, now], True)
        assert future is not None
        return bool(await future)

    # --- stored-response owners (through the writer process) ---------------------
    def carry_owners(self, path: str) -> SqliteStore:
        """Have the writer process also write the stored-response owners, to `path`
        (before `open`)."""
        self.owners_path = path
        return self

    def put_owner(self, response_id: str, owner: tuple[str, str]) -> bool:
        """Send (provider, model) of `response_id` to the writer, in the next frame (at
        most `RIDE_S` from now), which writes it within its flush interval; False when no
        writer can take it now (not started yet, closed, or restarting after it died):
        the caller then writes it itself. Unacknowledged: nobody waits for an owner."""
        writer = self._writer
        if writer is None or not writer.alive or self.owners_path is None:
            return False
        self._riders.append([OP_OWNER, response_id, owner[0], owner[1]])
        if not self._ops and self._ride is None:  # no frame leaves this iteration
            self._ride = asyncio.get_running_loop().call_later(RIDE_S, self._flush)
        return True

    def forget_owner(self, response_id: str) -> asyncio.Future[Any] | None:
        """Have the writer drop `response_id`'s owner, pending or written: done when the
        future is. None when no writer can take it now."""
        writer = self._writer
        if writer is None or not writer.alive or self.owners_path is None:
            return None
        if self._riders:
            self._flush()  # the owners sent before the forget leave before it
        return self._submit([OP_FORGET, response_id], True)

    def _board(self) -> None:
        """The riding owners join the frame about to leave, in the order they came."""
        ride, self._ride = self._ride, None
        if ride is not None:
            ride.cancel()
        self._ops.extend(self._riders)
        self._futures.extend([None] * len(self._riders))
        self._riders = []

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
    """Settled spend (and dead gateways' unsettled worst cases) in [start, end).
    TOTAL, not SUM: a double never overflows (SUM raises past 2^63), and it is exact
    while the sum is below 2^53 nano-dollars ($9 million)."""
    sql = ("SELECT TOTAL(cost_nanos) FROM ledger "
           "WHERE ts >= ? AND ts < ? AND status != ?")
    params: list[Any] = [start, end, PENDING]
    column = SCOPE_COLUMN.get(scope)
    if column is not None:
        sql += f" AND {column} = ?"
        params.append(target)
    elif scope == "tag" and target:
        name, _, value = target.partition("=")
        sql += " AND json_extract(NULLIF(tags, ''), ?) = ?"
        params += ['$."' + name + '"', value]  # the name is checked: letters, digits, _.-
    return int(conn.execute(sql, params).fetchone()[0])


# --- keys (sync: the CLI calls these directly, the gateway from a thread) --------


def _decimal(text: str | None) -> Decimal | None:
    return Decimal(text) if text else None


def list_keys(conn: sqlite3.Connection) -> list[KeyRecord]:
    rows = conn.execute(
        "SELECT key_sha256, alias, team, created_at, revoked_at, allowed_models, "
        "budget_usd_per_day, budget_usd_per_month, expires_at FROM keys ORDER BY created_at"
    ).fetchall()
    return [KeyRecord(alias=r[1], team=r[2], key_sha256=r[0], created_at=r[3], revoked_at=r[4],
                      allowed_models=frozenset(r[5].split(",")) if r[5] else None,
                      budget_usd_per_day=_decimal(r[6]), budget_usd_per_month=_decimal(r[7]),
                      expires_at=r[8])
            for r in rows]


def create_key(conn: sqlite3.Connection, record: KeyRecord) -> bool:
    """Store a new key; False (nothing stored) when its alias or secret is already taken,
    as `RedisStore.create_key` answers."""
    models = ",".join(sorted(record.allowed_models)) if record.allowed_models else None
    try:
        conn.execute(
            "INSERT INTO keys (key_sha256, alias, team, created_at, allowed_models, "
            "budget_usd_per_day, budget_usd_per_month, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (record.key_sha256, record.alias, record.team, record.created_at or time.time(), models,
             _text(record.budget_usd_per_day), _text(record.budget_usd_per_month),
             record.expires_at))
    except sqlite3.IntegrityError:
        return False
    return True


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def revoke_key(conn: sqlite3.Connection, alias: str, now: float) -> bool:
    cur = conn.execute("UPDATE keys SET revoked_at = ? WHERE alias = ? AND revoked_at IS NULL",
                       (now, alias))
    return cur.rowcount > 0


def replace_key(conn: sqlite3.Connection, alias: str, fresh: KeyRecord, now: float) -> bool:
    """Revoke the active key `alias` and store `fresh` in its place, in one transaction
    (rotation): False, and nothing changed, when no active key has that alias."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        replaced = revoke_key(conn, alias, now)
        if replaced:
            create_key(conn, fresh)
        conn.execute("COMMIT" if replaced else "ROLLBACK")
        return replaced
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def entries(conn: sqlite3.Connection, start: float, end: float) -> Iterable[LedgerEntry]:
    """Every row in [start, end), oldest first (tests and exports)."""
    cur = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM ledger WHERE ts >= ? AND ts < ? "
                       "ORDER BY id", (start, end))
    flags = [COLUMNS.index(name) for name in ("estimated", "stream", "unpriced")]
    for row in cur:
        values = list(row)
        for index in flags:
            values[index] = bool(values[index])  # SQLite stores booleans as 0/1
        yield LedgerEntry(*values)


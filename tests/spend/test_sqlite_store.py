"""The SQLite store: journal rows become settled rows, dead gateways' journal rows are
charged on the next start, a live one's are left alone, notices are claimed once."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from gateway import sqlitefile
from gateway.spend import ledger_sql
from gateway.spend.backend import LocalBackend
from gateway.spend.budgets import BudgetSet
from gateway.spend.ledger import PENDING, LedgerEntry, Reservation
from gateway.spend.ledger_lock import ENV_LOCK_FD, LedgerInUse, acquire, owner_alive, process_start
from gateway.spend.sqlite_store import SqliteStore, connect, entries, init_schema, spent_in
from tests.spend.helpers import ledger_rows, ledger_status
from tests.stored.helpers import owners_in
from tests.support.waiting import eventually


def _entry(cost: int, status: str = "ok", ts: float = 100.0) -> LedgerEntry:
    return LedgerEntry(ts, "req", "t" * 32, "web", "product", "abc", "chat", "m", "m", "openai",
                       input_tokens=10, output_tokens=5, cost_nanos=cost, status=status)


@pytest.mark.integration
async def test_journal_then_settle_leaves_one_settled_row(tmp_path: Path) -> None:
    """A journaled attempt's row is replaced by its settled entry, in order, from one thread."""
    store = SqliteStore(str(tmp_path / "l.db"))
    await store.open()
    res = Reservation((), (), 999, 100.0, 1, lambda: _entry(999, PENDING))
    await store.journal(res)
    waiter = store.record(res, _entry(42), wait=True)
    assert waiter is not None
    await waiter
    await store.close()
    assert ledger_status(tmp_path / "l.db") == [("ok", 42)]


@pytest.mark.integration
async def test_attempt_that_used_nothing_leaves_no_row(tmp_path: Path) -> None:
    """Settling without an entry deletes the journal row."""
    store = SqliteStore(str(tmp_path / "l.db"))
    await store.open()
    res = Reservation((), (), 999, 100.0, 1, lambda: _entry(999, PENDING))
    await store.journal(res)
    await store.record(res, None, wait=True)  # type: ignore[misc]
    await store.close()
    assert ledger_rows(tmp_path / "l.db") == []


@pytest.mark.integration
async def test_a_write_to_an_idle_writer_is_in_its_pipe_at_once(tmp_path: Path) -> None:
    """The first write while the writer waits for work is sent at once (it commits while
    the caller works on); writes while a frame is in flight wait for the loop's turn and
    go in one frame."""
    store = SqliteStore(str(tmp_path / "l.db"))
    await store.open()
    first = store.record(None, _entry(1), wait=True)
    assert store.piped  # sent before the caller yielded to the loop
    second = store.record(None, _entry(2), wait=True)
    third = store.record(None, _entry(3), wait=True)
    assert not store.piped  # the writer has a frame in flight: batched for this iteration
    await asyncio.sleep(0)
    assert store.piped
    await asyncio.gather(*(w for w in (first, second, third) if w is not None))
    await store.close()
    assert ledger_status(tmp_path / "l.db") == [("ok", 1), ("ok", 2), ("ok", 3)]


@pytest.mark.integration
async def test_a_journal_row_is_in_the_pipe_before_journal_returns(tmp_path: Path) -> None:
    """A journal row is handed to the writer before `journal` returns, even while the
    writer is busy, so the attempt may go upstream at once: a kill -9 of the gateway can
    no longer lose it."""
    store = SqliteStore(str(tmp_path / "l.db"))
    await store.open()
    busy = store.record(None, _entry(1), wait=True)
    res = Reservation((), (), 999, 100.0, 1, lambda: _entry(999, PENDING))
    written = store.journal(res)
    assert store.piped and res.journaled
    assert busy is not None
    await busy
    row_id = await written
    await store.close()
    assert isinstance(row_id, int) and res.row_id == row_id


@pytest.mark.integration
async def test_a_stream_is_journaled_without_waiting_and_its_early_failure_drops_the_row(
        tmp_path: Path) -> None:
    """The backend hands a stream's journal row over and returns at once (the answer waits
    for it: `written`); an attempt settled before the acknowledgement came still finds its
    row and drops it, so no pending row is left behind."""
    store = SqliteStore(str(tmp_path / "l.db"))
    backend = LocalBackend(store, BudgetSet())
    await backend.open()
    res = Reservation((), (), 999, 100.0, 1, lambda: _entry(999, PENDING))
    assert await backend.reserve(res, durable=True) is None
    assert res.written is not None and not res.written.done()
    await backend.settle(res, (), (), None, 0)  # failed before commit: nothing used
    await backend.close()
    assert ledger_rows(tmp_path / "l.db") == []


@pytest.mark.integration
async def test_many_writes_commit_in_batches(tmp_path: Path) -> None:
    """A thousand concurrent writes all land (group commit), none lost."""
    store = SqliteStore(str(tmp_path / "l.db"))
    await store.open()
    waiters = [store.record(None, _entry(i), wait=True) for i in range(1000)]
    await asyncio.gather(*(w for w in waiters if w is not None))
    await store.close()
    assert len(ledger_rows(tmp_path / "l.db")) == 1000


def _journal_row(path: Path, owner: str, cost: int) -> None:
    conn = connect(str(path))
    conn.execute(
        "INSERT INTO ledger (ts, request_id, trace_id, key_alias, team, operation, "
        "model_requested, model_served, provider, input_tokens, output_tokens, "
        "cached_tokens, reasoning_tokens, cost_nanos, status, estimated, stream, attempt, "
        "owner) VALUES (1, 'r', '', 'k', 't', 'chat', 'm', 'm', 'p', 0, 0, 0, 0, ?, "
        "'pending', 1, 1, 1, ?)", (cost, owner))
    conn.close()


def _owner(session: str, pid: int) -> str:
    return f"{session}:{socket.gethostname()}:{pid}:{process_start(pid)}"


@pytest.mark.integration
async def test_journal_rows_of_other_sessions_are_charged_on_start(tmp_path: Path) -> None:
    """The lock's new holder charges every pending row an earlier holder left, even one
    whose process still runs (the lock proves it no longer owns the ledger)."""
    path = tmp_path / "l.db"
    store = SqliteStore(str(path))
    await store.open()
    await store.close()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        _journal_row(path, _owner("0123456789abcdef", sleeper.pid), 7)
        _journal_row(path, f"{socket.gethostname()}:{sleeper.pid}:1", 3)  # older token format
        store = SqliteStore(str(path))
        assert await store.open() == 2
        await store.close()
        assert sorted(ledger_status(path)) == [("unsettled", 3), ("unsettled", 7)]
        conn = connect(str(path))
        assert spent_in(conn, "global", None, 0, 10) == 10
        conn.close()
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.integration
async def test_sibling_workers_rows_are_left_while_it_runs(tmp_path: Path) -> None:
    """Under `--workers` (the lock inherited from the parent), a running sibling's pending
    rows are left for it; a sibling that exited, even one not yet reaped (a zombie), has
    its rows charged."""
    path = tmp_path / "l.db"
    parent = acquire(str(path), {})
    environ = {ENV_LOCK_FD: str(parent.fd)}
    store = SqliteStore(str(path), environ)
    await store.open()
    await store.close()
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        zombie_owner = _owner(parent.session, zombie.pid)
        for _ in range(200):  # exited, not reaped: /proc shows it as a zombie
            if Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                break
            await asyncio.sleep(0.01)
        _journal_row(path, _owner(parent.session, running.pid), 9)
        _journal_row(path, zombie_owner, 5)
        assert owner_alive(_owner(parent.session, running.pid), parent.session)
        assert not owner_alive(zombie_owner, parent.session)
        store = SqliteStore(str(path), environ)
        assert await store.open() == 1
        await store.close()
        assert sorted(ledger_status(path)) == [("pending", 9), ("unsettled", 5)]
    finally:
        running.kill()
        running.wait()
        zombie.wait()
        parent.release()


@pytest.mark.integration
async def test_a_sibling_worker_that_dies_later_is_recovered_while_running(tmp_path: Path) -> None:
    """A running store's periodic recovery charges the rows of a sibling worker that died
    after the start, and never its own."""
    path = tmp_path / "l.db"
    parent = acquire(str(path), {})
    store = SqliteStore(str(path), {ENV_LOCK_FD: str(parent.fd)})
    await store.open()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        _journal_row(path, _owner(parent.session, dead.pid), 5)
        _journal_row(path, store.owner, 8)
        assert await store.recover() == 1
        assert sorted(ledger_status(path)) == [("pending", 8), ("unsettled", 5)]
    finally:
        await store.close()
        parent.release()


@pytest.mark.integration
async def test_a_second_store_on_the_same_file_is_refused(tmp_path: Path) -> None:
    """While one store holds the ledger, opening it again fails with the file and the
    holder's pid; once the first closes, it opens."""
    path = str(tmp_path / "l.db")
    first = SqliteStore(path)
    await first.open()
    second = SqliteStore(path)
    with pytest.raises(LedgerInUse) as info:
        await second.open()
    assert path in str(info.value) and f"process {os.getpid()}" in str(info.value)
    await first.close()
    await second.open()
    await second.close()


@pytest.mark.integration
async def test_notices_are_claimed_once(tmp_path: Path) -> None:
    """The first claim of a notice wins, also after a restart."""
    store = SqliteStore(str(tmp_path / "l.db"))
    await store.open()
    assert await store.claim("budget:b:2026-11-29:50", 1.0)
    assert not await store.claim("budget:b:2026-11-29:50", 2.0)
    await store.close()
    again = SqliteStore(str(tmp_path / "l.db"))
    await again.open()
    assert not await again.claim("budget:b:2026-11-29:50", 3.0)
    await again.close()


@pytest.mark.integration
async def test_spent_filters_by_scope_and_window(tmp_path: Path) -> None:
    """Seeding sums only the scope's rows inside the window, never pending ones."""
    store = SqliteStore(str(tmp_path / "l.db"))
    await store.open()
    for entry in (_entry(5, ts=50), _entry(7, ts=150), _entry(11, status=PENDING, ts=60)):
        await store.record(None, entry, wait=True)  # type: ignore[misc]
    await store.close()
    assert await store.spent("global", None, 0, 100) == 5
    assert await store.spent("team", "product", 0, 200) == 12
    assert await store.spent("team", "other", 0, 200) == 0


@pytest.mark.integration
async def test_a_killed_writer_process_is_replaced(tmp_path: Path) -> None:
    """If the ledger writer process dies, writes in flight fail and a new writer takes over."""
    store = SqliteStore(str(tmp_path / "l.db"))
    await store.open()
    writer = store._writer
    assert writer is not None and writer.process is not None
    writer.process.kill()
    for _ in range(100):
        try:
            waiter = store.record(None, _entry(5), wait=True)
            assert waiter is not None
            await waiter
            break
        except RuntimeError:
            await asyncio.sleep(0.05)
    await store.close()
    assert ledger_status(tmp_path / "l.db") == [("ok", 5)]


def test_frames_split_only_whole_messages() -> None:
    """The writer's framing hands over whole frames and keeps a partial one for later."""
    from gateway.spend.ledger_writer import frame, split

    buffer = bytearray(frame([1, [["c", "x", 1.0]]]) + frame([2, []]))
    tail = frame([3, [["d", 7]]])
    buffer += tail[:5]
    assert split(buffer) == [[1, [["c", "x", 1.0]]], [2, []]]
    assert bytes(buffer) == tail[:5]
    buffer += tail[5:]
    assert split(buffer) == [[3, [["d", 7]]]] and not buffer



def _open_at_once(path: str, openers: int) -> list[BaseException]:
    """`openers` threads connect to `path` and create the schema at the same moment."""
    start = threading.Barrier(openers)
    errors: list[BaseException] = []

    def open_ledger() -> None:
        start.wait()
        try:
            conn = sqlitefile.connect(path)
            ledger_sql.init_schema(conn)
            conn.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_ledger) for _ in range(openers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_processes_opening_a_new_ledger_at_once_all_succeed(tmp_path: Path) -> None:
    """Workers started together each switch a new file to WAL and create the schema;
    SQLite refuses one of two simultaneous lock upgrades at once (no busy wait), which
    used to kill a worker with "database is locked". Four openers, thirty new files."""
    for round_number in range(30):
        errors = _open_at_once(str(tmp_path / f"ledger-{round_number}.db"), 4)
        assert errors == [], f"round {round_number}: {errors}"


@pytest.mark.integration
async def test_a_write_the_encoder_refuses_fails_alone(tmp_path: Path) -> None:
    """A write with an integer past 64 bits, batched with others in one loop tick, fails
    on its own; the others commit, and no waiter is left hanging."""
    store = SqliteStore(str(tmp_path / "l.db"))
    await store.open()
    waiters = [store.record(None, _entry(i + 1), wait=True) for i in range(5)]
    waiters.insert(2, store.record(None, _entry(2**64), wait=True))
    results = await asyncio.wait_for(
        asyncio.gather(*(w for w in waiters if w is not None), return_exceptions=True), 10)
    await store.close()
    assert [isinstance(r, RuntimeError) for r in results] == [False, False, True, False, False, False]
    assert "cannot encode" in str(results[2])
    assert sorted(cost for _, cost in ledger_status(tmp_path / "l.db")) == [1, 2, 3, 4, 5]


@pytest.mark.integration
async def test_a_write_sqlite_refuses_fails_alone(tmp_path: Path) -> None:
    """A write SQLite cannot store (an integer between 2^63 and 2^64) fails the group
    commit; the writer then commits the group's other writes one by one, so only it
    fails."""
    store = SqliteStore(str(tmp_path / "l.db"))
    await store.open()
    waiters = [store.record(None, _entry(i + 1), wait=True) for i in range(5)]
    waiters.insert(3, store.record(None, _entry(2**63 + 5), wait=True))
    results = await asyncio.wait_for(
        asyncio.gather(*(w for w in waiters if w is not None), return_exceptions=True), 10)
    assert [isinstance(r, RuntimeError) for r in results] == [False, False, False, True, False, False]
    assert "OverflowError" in str(results[3])
    waiter = store.record(None, _entry(6), wait=True)  # the writer goes on
    assert waiter is not None
    await waiter
    await store.close()
    assert sorted(cost for _, cost in ledger_status(tmp_path / "l.db")) == [1, 2, 3, 4, 5, 6]



def test_a_ledger_from_before_attribution_gets_the_new_columns(tmp_path: Path) -> None:
    """A file written before tags, end users, key expiry, cache writes by lifetime, the
    unpriced flag and audio and image tokens gains those columns (with their defaults) when
    opened, keeping its rows."""
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    added = (",\n    tags TEXT NOT NULL DEFAULT '',\n    end_user TEXT NOT NULL DEFAULT '',"
             "\n    cache_write_tokens INTEGER NOT NULL DEFAULT 0,"
             "\n    cache_write_1h_tokens INTEGER NOT NULL DEFAULT 0,"
             "\n    unpriced INTEGER NOT NULL DEFAULT 0,"
             "\n    input_audio_tokens INTEGER NOT NULL DEFAULT 0,"
             "\n    output_audio_tokens INTEGER NOT NULL DEFAULT 0,"
             "\n    input_image_tokens INTEGER NOT NULL DEFAULT 0,"
             "\n    output_image_tokens INTEGER NOT NULL DEFAULT 0")
    assert added in ledger_sql.SCHEMA
    old_schema = ledger_sql.SCHEMA.replace(added, "").replace(",\n    expires_at REAL", "")
    assert "tags" not in old_schema and "expires_at" not in old_schema
    assert "unpriced" not in old_schema and "cache_write" not in old_schema
    assert "audio" not in old_schema and "image" not in old_schema
    old.executescript(old_schema)
    old.execute("INSERT INTO ledger (ts, request_id, trace_id, key_alias, team, operation, "
                "model_requested, model_served, provider, input_tokens, output_tokens, "
                "cached_tokens, reasoning_tokens, cost_nanos, status, estimated, stream, attempt) "
                "VALUES (1, 'r', '', 'web', 't', 'chat', 'm', 'm', 'p', 1, 2, 0, 0, 5, 'ok', 0, 0, 1)")
    old.commit()
    old.close()
    conn = connect(str(path))
    try:
        init_schema(conn)
        init_schema(conn)  # idempotent
        rows = list(entries(conn, 0, 10))
        assert [(r.request_id, r.tags, r.end_user) for r in rows] == [("r", "", "")]
        assert [(r.cache_write_tokens, r.cache_write_1h_tokens, r.unpriced)
                for r in rows] == [(0, 0, False)]
        assert [(r.input_audio_tokens, r.output_audio_tokens, r.input_image_tokens,
                 r.output_image_tokens) for r in rows] == [(0, 0, 0, 0)]
        assert conn.execute("SELECT expires_at FROM keys").fetchall() == []
    finally:
        conn.close()


@pytest.mark.integration
async def test_the_writer_process_writes_stored_response_owners(tmp_path: Path) -> None:
    """Owners sent down the ledger writer's pipe, with no ledger write to ride with, reach
    their own file (the ledger's gets none); a forget takes one out of it, and one sent
    just before its forget is never written."""
    owners = tmp_path / "l-owners.db"
    store = SqliteStore(str(tmp_path / "l.db")).carry_owners(str(owners))
    await store.open()
    try:
        assert store.put_owner("resp_1", ("oai", "gpt-4.1"))
        assert store.put_owner("resp_2", ("oai", "gpt-4.1-mini"))
        assert await eventually(lambda: len(owners_in(owners)) == 2, timeout=10)
        assert owners_in(owners) == {"resp_1": ("oai", "gpt-4.1"),
                                      "resp_2": ("oai", "gpt-4.1-mini")}
        dropped = store.forget_owner("resp_1")
        assert dropped is not None
        await dropped
        assert owners_in(owners) == {"resp_2": ("oai", "gpt-4.1-mini")}
        assert store.put_owner("resp_3", ("oai", "gpt-4.1"))
        dropped = store.forget_owner("resp_3")
        assert dropped is not None
        await dropped
    finally:
        await store.close()
    assert owners_in(owners) == {"resp_2": ("oai", "gpt-4.1-mini")}
    conn = connect(str(tmp_path / "l.db"))
    tables = conn.execute("SELECT name FROM sqlite_master WHERE name = 'response_owners'")
    assert tables.fetchall() == []
    conn.close()


@pytest.mark.integration
async def test_owners_and_ledger_writes_share_a_frame(tmp_path: Path) -> None:
    """An owner sent between a journal row (sent at once) and a settled entry rides in
    the entry's frame: each ledger write still gets its own result, and the owner is
    in its file once the store has closed (the writer writes what is pending as it ends)."""
    owners = tmp_path / "l-owners.db"
    store = SqliteStore(str(tmp_path / "l.db")).carry_owners(str(owners))
    await store.open()
    res = Reservation((), (), 999, 100.0, 1, lambda: _entry(999, PENDING))
    journaled = store.journal(res)
    assert store.put_owner("resp_mid", ("oai", "gpt-4.1"))
    recorded = store.record(None, _entry(5), wait=True)
    assert journaled is not None and recorded is not None
    assert isinstance(await journaled, int) and await recorded is None
    assert res.row_id is not None
    await store.close()
    assert sorted(ledger_status(tmp_path / "l.db")) == [("ok", 5), ("pending", 999)]
    assert owners_in(owners) == {"resp_mid": ("oai", "gpt-4.1")}


@pytest.mark.integration
async def test_owners_are_refused_without_a_running_writer(tmp_path: Path) -> None:
    """Before `open`, after `close`, or with no owners' file named, the store refuses
    owners (False, None), so that their caller writes them itself."""
    plain = SqliteStore(str(tmp_path / "plain.db"))
    await plain.open()
    assert not plain.put_owner("resp_1", ("oai", "gpt-4.1"))
    assert plain.forget_owner("resp_1") is None
    await plain.close()
    carrying = SqliteStore(str(tmp_path / "l.db")).carry_owners(str(tmp_path / "o.db"))
    assert not carrying.put_owner("resp_1", ("oai", "gpt-4.1"))
    await carrying.open()
    await carrying.close()
    assert not carrying.put_owner("resp_1", ("oai", "gpt-4.1"))
    assert carrying.forget_owner("resp_1") is None

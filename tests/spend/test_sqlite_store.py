"""The SQLite store: journal rows become settled rows, dead gateways' journal rows are
charged on the next start, a live one's are left alone, notices are claimed once."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path

from gateway.spend import ledger_sql
from gateway.spend.ledger import PENDING, LedgerEntry, Reservation
from gateway.spend.sqlite_store import SqliteStore, connect, owner_alive, owner_token, spent_in
from tests.spend.helpers import ledger_rows, ledger_status


def _entry(cost: int, status: str = "ok", ts: float = 100.0) -> LedgerEntry:
    return LedgerEntry(ts, "req", "t" * 32, "web", "product", "abc", "chat", "m", "m", "openai",
                       input_tokens=10, output_tokens=5, cost_nanos=cost, status=status)


async def test_journal_then_settle_leaves_one_settled_row(tmp_path: Path) -> None:
    """A journaled attempt's row is replaced by its settled entry, in order, from one thread."""
    store = SqliteStore(str(tmp_path / "l.db"))
    await store.open()
    res = Reservation((), (), 999, 100.0, 1, lambda: _entry(999, PENDING))
    await store.journal(res, wait=True)  # type: ignore[misc]
    waiter = store.record(res, _entry(42), wait=True)
    assert waiter is not None
    await waiter
    await store.close()
    assert ledger_status(tmp_path / "l.db") == [("ok", 42)]


async def test_attempt_that_used_nothing_leaves_no_row(tmp_path: Path) -> None:
    """Settling without an entry deletes the journal row."""
    store = SqliteStore(str(tmp_path / "l.db"))
    await store.open()
    res = Reservation((), (), 999, 100.0, 1, lambda: _entry(999, PENDING))
    await store.journal(res, wait=True)  # type: ignore[misc]
    await store.record(res, None, wait=True)  # type: ignore[misc]
    await store.close()
    assert ledger_rows(tmp_path / "l.db") == []


async def test_many_writes_commit_in_batches(tmp_path: Path) -> None:
    """A thousand concurrent writes all land (group commit), none lost."""
    store = SqliteStore(str(tmp_path / "l.db"))
    await store.open()
    waiters = [store.record(None, _entry(i), wait=True) for i in range(1000)]
    await asyncio.gather(*(w for w in waiters if w is not None))
    await store.close()
    assert len(ledger_rows(tmp_path / "l.db")) == 1000


async def test_dead_gateways_journal_rows_are_charged_on_start(tmp_path: Path) -> None:
    """Pending rows of a process that is gone become `unsettled` charges; pending rows of a
    process that still runs are left for it."""
    path = tmp_path / "l.db"
    store = SqliteStore(str(path))
    await store.open()
    await store.close()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        from gateway.spend.sqlite_store import _proc_start

        live_owner = f"{owner_token().split(':')[0]}:{sleeper.pid}:{_proc_start(sleeper.pid)}"
        dead_owner = f"{owner_token().split(':')[0]}:999999999:1"
        conn = connect(str(path))
        for owner, cost in ((dead_owner, 7), (live_owner, 9)):
            conn.execute(
                "INSERT INTO ledger (ts, request_id, trace_id, key_alias, team, operation, "
                "model_requested, model_served, provider, input_tokens, output_tokens, "
                "cached_tokens, reasoning_tokens, cost_nanos, status, estimated, stream, attempt, "
                "owner) VALUES (1, 'r', '', 'k', 't', 'chat', 'm', 'm', 'p', 0, 0, 0, 0, ?, "
                "'pending', 1, 1, 1, ?)", (cost, owner))
        conn.close()
        assert owner_alive(live_owner) and not owner_alive(dead_owner)
        store = SqliteStore(str(path))
        assert await store.open() == 1
        await store.close()
        assert sorted(ledger_status(path)) == [("pending", 9), ("unsettled", 7)]
        conn = connect(str(path))
        assert spent_in(conn, "global", None, 0, 10) == 7
        conn.close()
    finally:
        sleeper.kill()
        sleeper.wait()


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
            conn = ledger_sql.connect(path)
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

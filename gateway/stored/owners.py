"""Remembers which provider (and model) created each stored response, in the storage
backend (`storage:`), so that it survives a restart and every replica finds it.

The request path tells `ResponseOwners.remember` synchronously (from the Responses
dialect, as the answer or the stream's `response.created` passes): the owner goes into
a bounded in-memory map at once, so this process finds it straight away, and on to be
written, in batches `FLUSH_S` long, so that under load a write carries tens of owners
instead of one or two:

- with the SQLite backend and the spend ledger's writer process running, down that
  process's pipe (`SqliteStore.put_owner`: an op riding in the next frame of ledger
  writes, or in one of its own after 5 ms without one): the writer process gathers
  them and writes them to the owners' file (`owners_file.OwnerBatch`), so the gateway
  does no SQLite work for them;
- otherwise (Redis, no spend control, the writer not started or restarting) onto a
  pending list here: one long-lived task, woken by the first owner pending, waits
  `FLUSH_S` and writes everything pending in one store call (one SQLite transaction
  in a thread, or one Redis pipeline).

Either way an owner is in the store within `FLUSH_S` plus its write; another replica
that does not find an id looks again for up to `LOOKS` flush intervals before calling
it unknown. At shutdown what is pending is written before the store closes (the writer
process writes its batch when its pipe closes). Entries are kept 30 days, as long as
OpenAI keeps a stored response.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar

import redis.asyncio as aioredis

from gateway.clock import Clock, LoopClock
from gateway.config import GatewayConfig, StorageConfig
from gateway.sqlitefile import connect
from gateway.stored import owners_file
from gateway.stored.owners_file import FLUSH_S, KEEP_S, open_owners, owners_path

_log = logging.getLogger(__name__)
_T = TypeVar("_T")
_CACHED: Final = 4096
LOOKS: Final = 3  # flush intervals a replica waits for an owner it does not find
Owner = tuple[str, str]  # (provider, model) as named in the config


class OwnerStore(Protocol):
    """Durable id -> owner storage."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def put(self, owners: list[tuple[str, Owner]]) -> None: ...

    async def get(self, response_id: str) -> Owner | None: ...

    async def delete(self, response_id: str) -> None: ...


class OwnerWriter(Protocol):
    """Writes owners from another process (`SqliteStore`: the spend ledger's writer)."""

    def put_owner(self, response_id: str, owner: Owner) -> bool:
        """Taken (written within `FLUSH_S`), or False: the caller writes it itself."""
        ...

    def forget_owner(self, response_id: str) -> asyncio.Future[Any] | None:
        """Dropped when the future is done, or None: the caller deletes it itself."""
        ...


class SqliteOwners:
    """The owners in a SQLite file of their own (one connection, in a thread). `moved_from`:
    the ledger's file, where owners were kept before; its table's rows move here once."""

    def __init__(self, path: str, moved_from: str | None = None) -> None:
        self.path = path
        self.moved_from = moved_from
        self._conn: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()  # one statement at a time on the shared connection

    async def open(self) -> None:
        self._conn = await asyncio.to_thread(self._open)

    def _open(self) -> sqlite3.Connection:
        conn = open_owners(self.path)
        if self.moved_from is not None and Path(self.moved_from).exists():
            self._move_old(conn, self.moved_from)
        conn.execute("DELETE FROM response_owners WHERE created < ?", (time.time() - KEEP_S,))
        return conn

    @staticmethod
    def _move_old(conn: sqlite3.Connection, old_path: str) -> None:
        """Owners an earlier version kept in the ledger's file: copied here, then their
        table dropped there (idempotent, so replicas opening at once do no harm)."""
        old = connect(old_path, create=False)
        try:
            found = old.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                "name = 'response_owners'").fetchone()
            if found is None:
                return
            rows = old.execute("SELECT id, provider, model, created FROM response_owners").fetchall()
            with conn:
                conn.execute("BEGIN")
                conn.executemany("INSERT OR IGNORE INTO response_owners VALUES (?, ?, ?, ?)", rows)
            old.execute("DROP TABLE IF EXISTS response_owners")
        finally:
            old.close()

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            async with self._lock:
                await asyncio.to_thread(conn.close)

    async def _locked(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """`work(conn)` in a thread, one at a time."""
        conn = self._conn
        if conn is None:
            raise RuntimeError("the response owners store is not open")
        async with self._lock:
            return await asyncio.to_thread(work, conn)

    async def put(self, owners: list[tuple[str, Owner]]) -> None:
        rows = [(ident, owner[0], owner[1]) for ident, owner in owners]
        await self._locked(lambda conn: owners_file.put(conn, rows))

    async def get(self, response_id: str) -> Owner | None:
        since = time.time() - KEEP_S
        rows = await self._locked(lambda conn: conn.execute(
            "SELECT provider, model FROM response_owners WHERE id = ? AND created >= ?",
            (response_id, since)).fetchall())
        return (str(rows[0][0]), str(rows[0][1])) if rows else None

    async def delete(self, response_id: str) -> None:
        await self._locked(lambda conn: owners_file.delete(conn, response_id))


class RedisOwners:
    """The owners as Redis keys under the configured prefix, each expiring after 30 days."""

    def __init__(self, url: str, prefix: str) -> None:
        self.prefix = f"{prefix}response:"
        self.client: Any = aioredis.Redis.from_url(url, socket_connect_timeout=5)

    async def open(self) -> None:
        await self.client.ping()

    async def close(self) -> None:
        await self.client.aclose()

    async def put(self, owners: list[tuple[str, Owner]]) -> None:
        async with self.client.pipeline(transaction=False) as pipe:
            for ident, owner in owners:
                pipe.set(self.prefix + ident, f"{owner[0]}\n{owner[1]}", ex=KEEP_S)
            await pipe.execute()

    async def get(self, response_id: str) -> Owner | None:
        value = await self.client.get(self.prefix + response_id)
        if value is None:
            return None
        provider, _, model = value.decode().partition("\n")
        return provider, model

    async def delete(self, response_id: str) -> None:
        await self.client.delete(self.prefix + response_id)


def make_store(storage: StorageConfig) -> OwnerStore:
    """The store of the configured backend."""
    if storage.backend == "redis" and storage.redis_url:
        return RedisOwners(storage.redis_url, storage.redis_prefix)
    return SqliteOwners(owners_path(storage.sqlite_path), moved_from=storage.sqlite_path)


class ResponseOwners:
    """The owners of stored responses: recent ones in memory, all of them in the store."""

    def __init__(self, config: GatewayConfig, store: OwnerStore, *,
                 clock: Clock | None = None, flush_s: float = FLUSH_S,
                 writer: OwnerWriter | None = None) -> None:
        self.config = config
        self.store = store
        self.writer = writer  # writes owners off this process when it can (else the task)
        self.clock: Clock = clock if clock is not None else LoopClock()
        self.flush_s = flush_s
        self._recent: OrderedDict[str, Owner] = OrderedDict()
        self._pending: list[tuple[str, Owner]] = []  # not yet handed to the store
        self._wake = asyncio.Event()  # set when the first owner of a batch is pending
        self._flusher: asyncio.Task[None] | None = None
        self._open = False

    def remember(self, response_id: str, model: str) -> None:
        """`model` (by its configured name) created `response_id`: keep its provider."""
        found = self.config.models.get(model)
        if found is None:
            return
        owner = (found.provider, model)
        self._keep(response_id, owner)
        if not self._open:
            return
        writer = self.writer
        if writer is not None and writer.put_owner(response_id, owner):
            return
        self._pending.append((response_id, owner))
        if len(self._pending) == 1:
            self._wake.set()

    def _keep(self, response_id: str, owner: Owner) -> None:
        self._recent[response_id] = owner
        self._recent.move_to_end(response_id)
        if len(self._recent) > _CACHED:
            self._recent.popitem(last=False)

    async def _write(self) -> None:
        """The writer of owners `self.writer` did not take: woken by the first pending
        owner, it lets `flush_s` pass so that the owners arriving meanwhile join the
        batch, then writes them in one store call; once the store closes, it writes what
        is left and ends."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._open:
                await self.clock.sleep(self.flush_s)
            batch, self._pending = self._pending, []
            if batch:
                try:
                    await self.store.put(batch)
                except Exception:
                    _log.exception("could not store the owners of %d responses", len(batch))
            if not self._open and not self._pending:
                return

    async def owner(self, response_id: str) -> Owner | None:
        """The (provider, model) that created `response_id`, or None. Not in memory: the
        store's, asked again for up to `LOOKS` flush intervals, since another replica
        writes an owner up to a flush interval after it created the response."""
        found = self._recent.get(response_id)
        if found is not None or not self._open:
            return found
        found = await self.store.get(response_id)
        for _ in range(LOOKS):
            if found is not None or not self._open:
                break
            await self.clock.sleep(self.flush_s)
            found = await self.store.get(response_id)
        if found is not None:
            self._keep(response_id, found)
        return found

    async def forget(self, response_id: str) -> None:
        """`response_id` was deleted: out of memory, the pending owners and the store."""
        self._recent.pop(response_id, None)
        if self._pending:  # not written yet: it must not be written after the delete
            self._pending = [entry for entry in self._pending if entry[0] != response_id]
        if not self._open:
            return
        dropped = self.writer.forget_owner(response_id) if self.writer is not None else None
        if dropped is None:
            await self.store.delete(response_id)
        else:
            await dropped

    async def lifecycle(self, app: Any) -> AsyncIterator[None]:
        """aiohttp cleanup context: open the store and start the writer; at the end,
        write every owner still pending and close."""
        await self.store.open()
        self._open = True
        self._flusher = asyncio.get_running_loop().create_task(self._write())
        try:
            yield
        finally:
            self._open = False
            self._wake.set()
            flusher, self._flusher = self._flusher, None
            await flusher
            await self.store.close()

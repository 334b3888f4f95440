"""Which provider made each stored response: remembered at once in memory, written to
SQLite or Redis in batches a flush interval long (with SQLite, by the spend ledger's
writer process when it runs), found again after a restart and by another replica or
worker (which looks again for a few intervals when it does not find one)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import pytest

from gateway.app import RESPONSE_OWNERS
from gateway.config import GatewayConfig, StorageConfig, load
from gateway.spend.ledger_lock import ENV_LOCK_FD, acquire
from gateway.stored.owners import LOOKS, RedisOwners, ResponseOwners, SqliteOwners, make_store
from gateway.stored.owners_file import FLUSH_S, owners_path
from gateway.testing import FakeClock
from tests.dialects.openai_responses.test_gateway_responses import GATEWAY, MODELS
from tests.spend.helpers import RedisServer
from tests.stored.helpers import owners_in
from tests.support.gateway import RunningGateway
from tests.support.process import ledger_writers
from tests.support.rig import running_upstreams
from tests.support.waiting import eventually

CONFIG = """
providers:
  oai: {kind: openai, base_url: "http://127.0.0.1:9/v1"}
models:
  gpt-4.1: {provider: oai, price_per_mtok: {input: 2, output: 8}}
"""


def _config() -> GatewayConfig:
    return load(CONFIG, {})


async def test_sqlite_keeps_owners_across_instances(tmp_path: Path) -> None:
    """An owner remembered by one instance is found by a new one on the same file, and
    forgetting it removes it from the file."""
    path = str(tmp_path / "gw.sqlite3")
    first = ResponseOwners(_config(), SqliteOwners(path))
    async for _ in first.lifecycle(None):
        first.remember("resp_1", "gpt-4.1")
        first.remember("resp_x", "no-such-model")  # not configured: nothing to forward to
        assert await first.owner("resp_1") == ("oai", "gpt-4.1")
    second = ResponseOwners(_config(), SqliteOwners(path))
    async for _ in second.lifecycle(None):
        assert await second.owner("resp_1") == ("oai", "gpt-4.1")
        assert await second.owner("resp_x") is None
        await second.forget("resp_1")
    third = ResponseOwners(_config(), SqliteOwners(path))
    async for _ in third.lifecycle(None):
        assert await third.owner("resp_1") is None


def test_owners_have_a_sqlite_file_of_their_own(tmp_path: Path) -> None:
    """The SQLite backend keeps owners beside the ledger's file, not in it, so an owners'
    write never holds the ledger writer up (SQLite lets one writer at a time in a file)."""
    ledger = str(tmp_path / "gateway.sqlite3")
    store = make_store(StorageConfig(sqlite_path=ledger))
    assert isinstance(store, SqliteOwners)
    assert store.path == str(tmp_path / "gateway-owners.sqlite3") == owners_path(ledger)


async def test_owners_kept_in_the_ledger_file_move_to_their_own(tmp_path: Path) -> None:
    """Owners an earlier version wrote into the ledger's file are found after the upgrade,
    and their old table is gone from the ledger's file."""
    ledger = str(tmp_path / "gateway.sqlite3")
    old = sqlite3.connect(ledger)
    old.execute("CREATE TABLE response_owners (id TEXT PRIMARY KEY, provider TEXT NOT NULL, "
                "model TEXT NOT NULL, created REAL NOT NULL)")
    old.execute("INSERT INTO response_owners VALUES ('resp_old', 'oai', 'gpt-4.1', ?)",
                (time.time(),))
    old.commit()
    old.close()
    owners = ResponseOwners(_config(), make_store(StorageConfig(sqlite_path=ledger)))
    async for _ in owners.lifecycle(None):
        assert await owners.owner("resp_old") == ("oai", "gpt-4.1")
    check = sqlite3.connect(ledger)
    tables = check.execute("SELECT name FROM sqlite_master WHERE name = 'response_owners'")
    assert tables.fetchall() == []
    check.close()


@contextlib.asynccontextmanager
async def two_gateways(storage: str, environ: dict[str, str] | None = None) -> AsyncIterator[
        tuple[RunningGateway, openai.AsyncOpenAI, openai.AsyncOpenAI]]:
    """Two gateways with `storage` (and `environ` beside the rig's), in front of one set
    of fake upstreams: the first gateway and an SDK client of each."""
    running = {**GATEWAY, "environ": {**GATEWAY["environ"], **(environ or {})}}
    async with running_upstreams() as upstreams:
        async with upstreams.gateway(MODELS, extra=storage, **running) as one, \
                upstreams.gateway(MODELS, extra=storage, **running) as two, \
                one.openai() as first, two.openai() as second:
            yield one.gw, first, second


@pytest.mark.integration
async def test_redis_shares_owners_between_replicas(redis_session: RedisServer,
                                                    redis_prefix: str) -> None:
    """Two gateways on one Redis: a response made through one is retrieved and deleted
    through the other."""
    storage = (f"storage: {{backend: redis, redis_url: \"{redis_session.url}\", "
               f"redis_prefix: \"{redis_prefix}\"}}")
    async with two_gateways(storage) as (_, first, second):
        made = await first.responses.create(model="gpt-4.1", input="shared")
        found = await second.responses.retrieve(made.id)
        await second.responses.delete(made.id)
        with pytest.raises(openai.NotFoundError):
            await first.responses.retrieve(made.id)  # deleted upstream: a 404 either way
    assert found.id == made.id


@pytest.mark.integration
async def test_redis_owner_store_round_trip(redis_session: RedisServer, redis_prefix: str) -> None:
    """put, get and delete on Redis keys under the configured prefix, with a 30-day expiry."""
    store = RedisOwners(redis_session.url, redis_prefix)
    await store.open()
    try:
        await store.put([("resp_9", ("oai", "gpt-4.1")), ("resp_8", ("oai", "gpt-4.1"))])
        assert await store.get("resp_9") == ("oai", "gpt-4.1")
        assert 0 < await store.client.ttl(f"{redis_prefix}response:resp_9") <= 30 * 86400
        await store.delete("resp_9")
        assert await store.get("resp_9") is None
    finally:
        await store.close()


class CountingStore:
    """An in-memory OwnerStore that counts its writes."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[str, str]] = {}
        self.writes = 0
        self.reads = 0

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def put(self, owners: list[tuple[str, tuple[str, str]]]) -> None:
        self.writes += 1
        self.rows.update(owners)

    async def get(self, response_id: str) -> tuple[str, str] | None:
        self.reads += 1
        return self.rows.get(response_id)

    async def delete(self, response_id: str) -> None:
        self.rows.pop(response_id, None)


async def test_owners_of_one_burst_are_written_together() -> None:
    """A hundred responses remembered in one loop iteration cost one write, and every
    owner is in the store once the lifecycle ends."""
    store = CountingStore()
    owners = ResponseOwners(_config(), store)
    async for _ in owners.lifecycle(None):
        for index in range(100):
            owners.remember(f"resp_{index}", "gpt-4.1")
    assert store.writes == 1 and len(store.rows) == 100


async def test_owners_of_a_flush_interval_are_written_together() -> None:
    """Owners remembered over a flush interval reach the store in one write when it
    ends, not before; the next ones start a new batch."""
    store, clock = CountingStore(), FakeClock()
    owners = ResponseOwners(_config(), store, clock=clock)
    async for _ in owners.lifecycle(None):
        owners.remember("resp_a", "gpt-4.1")
        await clock.advance(FLUSH_S / 2)
        owners.remember("resp_b", "gpt-4.1")
        await clock.advance(FLUSH_S / 4)
        assert store.writes == 0 and await owners.owner("resp_b") == ("oai", "gpt-4.1")
        await clock.advance(FLUSH_S / 4)
        assert store.writes == 1 and set(store.rows) == {"resp_a", "resp_b"}
        owners.remember("resp_c", "gpt-4.1")
        await clock.advance(FLUSH_S)
        assert store.writes == 2 and "resp_c" in store.rows


async def test_another_replica_finds_an_owner_not_yet_written() -> None:
    """A replica asked for a response another one made a moment ago looks again until
    the maker's write lands, and an id nobody made is unknown after `LOOKS` intervals."""
    store, clock = CountingStore(), FakeClock()
    maker = ResponseOwners(_config(), store, clock=clock)
    other = ResponseOwners(_config(), store, clock=clock)
    async with clock:
        async for _ in maker.lifecycle(None):
            async for _ in other.lifecycle(None):
                maker.remember("resp_new", "gpt-4.1")
                started = clock.time()
                assert await other.owner("resp_new") == ("oai", "gpt-4.1")
                assert clock.time() - started <= 2 * FLUSH_S  # its write, then the next look
                reads, started = store.reads, clock.time()
                assert await other.owner("resp_nobody") is None
                assert store.reads - reads == LOOKS + 1
                assert clock.time() - started == pytest.approx(LOOKS * FLUSH_S)


async def test_forgetting_a_pending_owner_keeps_it_out_of_the_store() -> None:
    """A response deleted before its owner was written is not written afterwards."""
    store, clock = CountingStore(), FakeClock()
    owners = ResponseOwners(_config(), store, clock=clock)
    async for _ in owners.lifecycle(None):
        owners.remember("resp_gone", "gpt-4.1")
        owners.remember("resp_kept", "gpt-4.1")
        await owners.forget("resp_gone")
        await clock.advance(FLUSH_S)
    assert set(store.rows) == {"resp_kept"}


class TakingWriter:
    """An OwnerWriter standing in for the ledger writer process: it keeps what it takes,
    or refuses everything while `running` is False (not started yet, restarting)."""

    def __init__(self) -> None:
        self.running = True
        self.taken: dict[str, tuple[str, str]] = {}
        self.forgotten: list[str] = []

    def put_owner(self, response_id: str, owner: tuple[str, str]) -> bool:
        if self.running:
            self.taken[response_id] = owner
        return self.running

    def forget_owner(self, response_id: str) -> asyncio.Future[Any] | None:
        if not self.running:
            return None
        self.forgotten.append(response_id)
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


async def test_owners_go_to_the_writer_process_and_back_to_the_store_without_it() -> None:
    """While the writer takes owners this process writes none to the store itself (and
    still finds them in memory); while it cannot, they are written here as before."""
    store, clock, writer = CountingStore(), FakeClock(), TakingWriter()
    owners = ResponseOwners(_config(), store, clock=clock, writer=writer)
    async for _ in owners.lifecycle(None):
        owners.remember("resp_off", "gpt-4.1")
        await clock.advance(FLUSH_S * 2)
        assert writer.taken == {"resp_off": ("oai", "gpt-4.1")} and store.writes == 0
        assert await owners.owner("resp_off") == ("oai", "gpt-4.1")
        writer.running = False
        owners.remember("resp_here", "gpt-4.1")
        await clock.advance(FLUSH_S)
        assert store.writes == 1 and set(store.rows) == {"resp_here"}


async def test_forgetting_goes_through_the_writer_when_it_runs() -> None:
    """A deleted response's owner is dropped by the writer (which keeps the pipe's order,
    so its pending owner is not written after the delete), else by the store here."""
    store, writer = CountingStore(), TakingWriter()
    owners = ResponseOwners(_config(), store, writer=writer)
    async for _ in owners.lifecycle(None):
        store.rows["resp_old"] = ("oai", "gpt-4.1")
        await owners.forget("resp_new")
        assert writer.forgotten == ["resp_new"]
        writer.running = False
        await owners.forget("resp_old")
        assert writer.forgotten == ["resp_new"] and store.rows == {}


@pytest.mark.integration
async def test_two_gateways_on_one_data_dir_share_owners_through_their_ledger_writers(
        tmp_path: Path) -> None:
    """Two gateway workers on one SQLite data dir: each hands its owners to its ledger
    writer process, which writes them to the owners' file; a response made through one
    is retrieved through the other at once, and deleted through it."""
    ledger = tmp_path / "gateway.sqlite3"
    parent = acquire(str(ledger), {})  # as `serve --workers` holds it for its workers
    environ = {ENV_LOCK_FD: str(parent.fd)}
    storage = f"storage: {{sqlite_path: \"{ledger}\"}}"
    try:
        async with two_gateways(storage, environ) as (one, first, second):
            assert one.app[RESPONSE_OWNERS].writer is not None
            writers = list(ledger_writers(ledger).values())
            made = await first.responses.create(model="gpt-4.1", input="shared")
            found = await second.responses.retrieve(made.id)
            assert await eventually(lambda: made.id in owners_in(owners_path(str(ledger))))
            await second.responses.delete(made.id)
            gone = made.id not in owners_in(owners_path(str(ledger)))
            with pytest.raises(openai.NotFoundError):
                await first.responses.retrieve(made.id)
    finally:
        parent.release()
    assert found.id == made.id and gone
    assert len(writers) == 2
    assert all(argv[-1] == owners_path(str(ledger)) for argv in writers)


@pytest.mark.integration
async def test_an_owner_written_by_the_ledger_writer_survives_a_restart(tmp_path: Path) -> None:
    """A response streamed through a gateway whose ledger writer wrote its owner is
    retrieved through the next gateway on the same data dir."""
    ledger = tmp_path / "gateway.sqlite3"
    storage = f"storage: {{sqlite_path: \"{ledger}\"}}"
    async with running_upstreams() as upstreams:
        async with upstreams.gateway(MODELS, extra=storage, **GATEWAY) as rig, rig.openai() as client:
            async with client.responses.stream(model="gpt-4.1", input="keep me") as stream:
                made = await stream.get_final_response()
        written = owners_in(owners_path(str(ledger)))  # the writer wrote it as its pipe closed, if not before
        async with upstreams.gateway(MODELS, extra=storage, **GATEWAY) as rig, rig.openai() as client:
            found = await client.responses.retrieve(made.id)
    assert written == {made.id: ("responses", "gpt-4.1")} and found.id == made.id

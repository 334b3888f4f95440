"""Which provider made each stored response: remembered at once in memory, written to
SQLite or Redis in the background, found again after a restart and by another replica."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from gateway.config import GatewayConfig, load
from gateway.stored.owners import RedisOwners, ResponseOwners, SqliteOwners
from tests.dialects.openai_responses.test_gateway_responses import ENV, GATEWAY_KEY, config
from tests.fakes.openai_upstream import running_upstream
from tests.fakes.responses_upstream import running_responses
from tests.spend.helpers import RedisServer
from tests.support.gateway import running_gateway

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


@pytest.mark.integration
async def test_redis_shares_owners_between_replicas(redis_session: RedisServer,
                                                    redis_prefix: str) -> None:
    """Two gateways on one Redis: a response made through one is retrieved and deleted
    through the other."""
    storage = (f"storage: {{backend: redis, redis_url: \"{redis_session.url}\", "
               f"redis_prefix: \"{redis_prefix}\"}}")
    async with running_responses(api_key=ENV["OPENAI_API_KEY"]) as up, \
            running_upstream(api_key="sk-relay") as chat:
        text = config(up.base_url, chat.base_url, storage)
        async with running_gateway(text, environ=ENV) as one, \
                running_gateway(text, environ=ENV) as two, \
                openai.AsyncOpenAI(base_url=one.base_url, api_key=GATEWAY_KEY) as first, \
                openai.AsyncOpenAI(base_url=two.base_url, api_key=GATEWAY_KEY) as second:
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

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def put(self, owners: list[tuple[str, tuple[str, str]]]) -> None:
        self.writes += 1
        self.rows.update(owners)

    async def get(self, response_id: str) -> tuple[str, str] | None:
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

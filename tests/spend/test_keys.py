"""Virtual keys: 401 in OpenAI's shape for missing, unknown and revoked keys; keys from
the config (env or hash) and from the CLI's store; open mode when there are none."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import openai
import pytest
from openai import AsyncOpenAI

from gateway.call import ANONYMOUS
from gateway.spend.config import hash_key
from gateway.spend.keys import KeyAuthenticator, KeyRecord, bearer_token, new_key
from gateway.spend.sqlite_store import connect, create_key, init_schema, revoke_key
from gateway.spend.windows import ManualClock
from tests.fakes.openai_upstream import RunningUpstream
from tests.spend.helpers import MESSAGES, spend_config, spend_gateway

KEY = "sk-gw-test-web-0123456789"


def _keys_yaml(extra: str = "") -> str:
    return f"""
keys:
  - alias: web
    team: product
    key_env: WEB_KEY
  - alias: batch
    team: research
    key_sha256: "{hash_key('sk-gw-batch-key')}"
    allowed_models: [cheap]
{extra}"""


def _store_key(path: Path, alias: str, team: str, revoked: bool = False) -> str:
    key = new_key()
    conn = connect(str(path))
    try:
        init_schema(conn)
        create_key(conn, KeyRecord(alias=alias, team=team, key_sha256=hash_key(key),
                                   created_at=time.time()))
        if revoked:
            revoke_key(conn, alias, time.time())
    finally:
        conn.close()
    return key


@pytest.mark.integration
async def test_missing_unknown_and_wrong_scheme_get_401(upstream: RunningUpstream,
                                                        tmp_path: Path) -> None:
    """No key, an unknown key and a non-Bearer header each get OpenAI's 401 shape."""
    config = spend_config(upstream.base_url, tmp_path / "l.db", _keys_yaml())
    async with spend_gateway(config, environ={"WEB_KEY": KEY}) as (gw, _):
        for api_key in ("sk-gw-not-a-key", ""):
            async with AsyncOpenAI(base_url=gw.base_url, api_key=api_key or "x",
                                   max_retries=0, default_headers=(
                                       {"Authorization": ""} if not api_key else None)) as sdk:
                with pytest.raises(openai.AuthenticationError) as info:
                    await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
                assert info.value.status_code == 401
                assert info.value.code == "invalid_api_key"
                assert "sk-gw-not-a-key" not in str(info.value.body)
        assert upstream.state.total_requests == 0


@pytest.mark.integration
async def test_config_keys_by_env_and_by_hash_authenticate(upstream: RunningUpstream,
                                                           tmp_path: Path) -> None:
    """A key from an env variable and one given as a hash both work, and carry their alias."""
    config = spend_config(upstream.base_url, tmp_path / "l.db", _keys_yaml())
    async with spend_gateway(config, environ={"WEB_KEY": KEY}) as (gw, _):
        async with AsyncOpenAI(base_url=gw.base_url, api_key=KEY, max_retries=0) as sdk:
            await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
        async with AsyncOpenAI(base_url=gw.base_url, api_key="sk-gw-batch-key",
                               max_retries=0) as sdk:
            await sdk.chat.completions.create(model="cheap", messages=MESSAGES)
            with pytest.raises(openai.PermissionDeniedError):
                await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
        aliases = [dict(s.attributes or {}).get("gateway.key.alias")
                   for s in gw.telemetry.spans_named("chat ")]
        assert aliases == ["web", "batch"]
        teams = {dict(p.attributes)["gateway.team"]
                 for p in gw.telemetry.points("gateway.cost.usd")}
        assert teams == {"product", "research"}


@pytest.mark.integration
async def test_provider_key_never_reaches_the_client_and_gateway_key_never_upstream(
        upstream: RunningUpstream, tmp_path: Path) -> None:
    """The upstream sees the provider key, never the client's gateway key."""
    config = spend_config(upstream.base_url, tmp_path / "l.db", _keys_yaml())
    async with spend_gateway(config, environ={"WEB_KEY": KEY}) as (gw, _):
        async with AsyncOpenAI(base_url=gw.base_url, api_key=KEY, max_retries=0) as sdk:
            await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    sent = upstream.state.last_request.headers["authorization"]
    assert KEY not in sent and sent.startswith("Bearer sk-upstream")


@pytest.mark.integration
async def test_cli_key_works_at_once_and_revoked_key_gets_401(upstream: RunningUpstream,
                                                              tmp_path: Path) -> None:
    """A key stored while the gateway runs works on first use; once revoked it gets 401."""
    ledger = tmp_path / "l.db"
    config = spend_config(upstream.base_url, ledger, _keys_yaml())
    clock = ManualClock(time.time())
    async with spend_gateway(config, clock=clock, environ={"WEB_KEY": KEY}) as (gw, spend):
        fresh = _store_key(ledger, "late", "ops")
        clock.advance(2)
        async with AsyncOpenAI(base_url=gw.base_url, api_key=fresh, max_retries=0) as sdk:
            await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
            conn = connect(str(ledger))
            revoke_key(conn, "late", time.time())
            conn.close()
            await spend.authenticator.refresh()  # what the periodic refresh does
            with pytest.raises(openai.AuthenticationError):
                await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES)


class StoreOfKeys:
    """The CLI's side of the store, as the authenticator's loader sees it: counts loads."""

    def __init__(self, *records: KeyRecord) -> None:
        self.records = list(records)
        self.loads = 0

    async def load(self) -> list[KeyRecord]:
        self.loads += 1
        return list(self.records)


def clock_and_sleep(start: float) -> tuple[ManualClock, Callable[[float], Awaitable[None]]]:
    """A manual clock and a sleep that moves it (at least to the end of the wait)."""
    clock = ManualClock(start)

    async def sleep(seconds: float) -> None:
        target = clock.now() + seconds
        await asyncio.sleep(0)
        clock.set(max(clock.now(), target))

    return clock, sleep


async def test_unknown_keys_reload_the_store_at_most_once_a_second() -> None:
    """A flood of bad keys costs one store read per second, not one per request."""
    store = StoreOfKeys(KeyRecord("a", "t", hash_key("good")))
    clock, sleep = clock_and_sleep(1000.0)
    auth = KeyAuthenticator([], store.load, clock, sleep=sleep)
    await auth.refresh()
    clock.advance(1.5)

    async def bad() -> None:
        with pytest.raises(Exception, match="Incorrect API key"):
            await auth.authenticate({"Authorization": "Bearer bad"})

    await asyncio.gather(*(bad() for _ in range(50)))
    assert store.loads <= 3  # the start-up load, then at most one a second for 50 misses
    loads = store.loads
    principal = await auth.authenticate({"Authorization": "Bearer good"})
    assert principal.alias == "a" and principal.key_id == hash_key("good")[:12]
    assert store.loads == loads


async def test_a_key_created_just_after_a_load_works_on_first_use() -> None:
    """A key stored less than a second after the last load is accepted (after waiting
    for the next load), not refused as unknown."""
    store = StoreOfKeys(KeyRecord("a", "t", hash_key("old")))
    clock, sleep = clock_and_sleep(1000.0)
    auth = KeyAuthenticator([], store.load, clock, sleep=sleep)
    await auth.refresh()
    clock.advance(0.2)
    store.records.append(KeyRecord("b", "t", hash_key("brand-new")))
    principal = await auth.authenticate({"Authorization": "Bearer brand-new"})
    assert principal.alias == "b" and store.loads == 2


async def test_open_mode_ends_within_a_second_of_the_first_key() -> None:
    """While open, a request more than a second after the last load reloads the keys, so
    the first key created closes the gateway within a second, with or without a token."""
    store = StoreOfKeys()
    clock = ManualClock(1000.0)
    auth = KeyAuthenticator([], store.load, clock)
    await auth.refresh()
    assert await auth.authenticate({}) is ANONYMOUS
    store.records.append(KeyRecord("first", "t", hash_key("k")))
    clock.advance(1.01)
    with pytest.raises(Exception, match="didn't provide an API key"):
        await auth.authenticate({})
    assert not auth.open


@pytest.mark.integration
async def test_no_keys_means_open_mode_with_a_loud_warning(upstream: RunningUpstream,
                                                           tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture
                                                           ) -> None:
    """With no key anywhere every caller is anonymous, and start-up warns about it."""
    caplog.set_level(logging.WARNING, logger="gateway.spend")
    config = spend_config(upstream.base_url, tmp_path / "l.db")
    async with spend_gateway(config) as (gw, spend):
        assert spend.authenticator.open
        async with AsyncOpenAI(base_url=gw.base_url, api_key="anything", max_retries=0) as sdk:
            await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    assert any("OPEN MODE" in r.getMessage() and r.levelno == logging.WARNING
               for r in caplog.records)


async def test_config_key_with_unset_variable_is_not_open_mode() -> None:
    """A configured key whose variable is unset still closes the gateway (fail closed)."""
    async def load() -> list[KeyRecord]:
        return []

    auth = KeyAuthenticator([], load, ManualClock(0), configured=1)
    await auth.refresh()
    assert not auth.open
    with pytest.raises(Exception, match="didn't provide an API key"):
        await auth.authenticate({})


async def test_open_authenticator_returns_anonymous() -> None:
    """Open mode answers the anonymous principal without reading any header."""
    async def load() -> list[KeyRecord]:
        return []

    auth = KeyAuthenticator([], load, ManualClock(0))
    await auth.refresh()
    assert await auth.authenticate({}) is ANONYMOUS


def test_bearer_token_parsing() -> None:
    """Only `Bearer <token>` counts; other schemes and empty tokens do not."""
    assert bearer_token({"Authorization": "Bearer abc"}) == "abc"
    assert bearer_token({"authorization": "bearer  abc "}) == "abc"
    assert bearer_token({"Authorization": "Basic abc"}) is None
    assert bearer_token({"Authorization": "Bearer "}) is None
    assert bearer_token({}) is None


def test_new_keys_are_random_and_only_hashes_are_stored(tmp_path: Path) -> None:
    """Generated keys differ, and the store holds a hash, never the key."""
    a, b = new_key(), new_key()
    assert a != b and a.startswith("sk-gw-") and len(a) > 40
    _store_key(tmp_path / "k.db", "x", "t")
    dump = "\n".join(sqlite3.connect(tmp_path / "k.db").iterdump())
    assert "sk-gw-" not in dump

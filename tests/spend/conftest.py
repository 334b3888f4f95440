"""Fixtures for the spend tests: a Redis server for the session, a fresh key prefix per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.spend.helpers import RedisServer, redis_server


@pytest.fixture(scope="session")
def redis_session() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture
def redis_url(redis_session: RedisServer) -> str:
    return redis_session.url


@pytest.fixture
def redis_prefix() -> str:
    """Each test gets its own keys, so tests never see each other's budgets or ledger."""
    return f"test:{uuid.uuid4().hex[:12]}:"

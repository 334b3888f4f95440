"""The spend tests' Redis server fixtures, for reconciling a ledger kept in Redis."""

from tests.spend.conftest import redis_prefix, redis_session, redis_url

__all__ = ["redis_prefix", "redis_session", "redis_url"]

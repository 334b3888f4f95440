"""The spend tests' Redis fixtures, for the admin API on a shared store."""

from tests.spend.conftest import redis_prefix, redis_session, redis_url

__all__ = ["redis_prefix", "redis_session", "redis_url"]

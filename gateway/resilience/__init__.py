"""Resilience: fallback chains, retries with backoff, circuit breakers, per-request
deadlines and per-key rate limits.

The pure parts (config, backoff, breaker state, failure classification) never
import aiohttp; the chain (`gateway/path/chain.py`) puts them together on the
request path.
"""

"""Resilience: fallback chains, retries with backoff, circuit breakers, per-request
deadlines and per-key rate limits.

The pure parts (config, backoff, breaker state, failure classification) never
import aiohttp; the dispatcher (`gateway/dispatch.py`) puts them together on
the request path.
"""

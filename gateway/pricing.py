"""Cost of a call from the model's price table, in Decimal US dollars: pure."""

from __future__ import annotations

from decimal import Decimal

from gateway.config import Price
from gateway.usage import Usage

_MILLION = Decimal(1_000_000)


def cost_usd(usage: Usage, price: Price) -> Decimal:
    """Cache reads at the cached price, cache writes at the write price of their lifetime
    (plain input when the model has none), the rest of the input at the input price;
    reasoning tokens are output tokens."""
    cached = min(usage.cache_read, usage.input)
    uncached = usage.input - cached
    micro = cached * price.cached_input + usage.output * price.output
    if usage.cache_creation:
        written = min(usage.cache_creation, uncached)
        written_1h = min(usage.cache_creation_1h, written)
        uncached -= written
        write_5m = price.input if price.cache_write is None else price.cache_write
        write_1h = price.input if price.cache_write_1h is None else price.cache_write_1h
        micro += (written - written_1h) * write_5m + written_1h * write_1h
    return (micro + uncached * price.input) / _MILLION


def input_ceiling(price: Price) -> Decimal:
    """The most one input token can cost: the input price, or a cache write's if higher."""
    ceiling = price.input
    for write in (price.cache_write, price.cache_write_1h):
        if write is not None and write > ceiling:
            ceiling = write
    return ceiling


def worst_case_cost_usd(prompt_tokens: int, max_output_tokens: int, price: Price) -> Decimal:
    """Upper bound of a call's cost before it is made (no cache discount assumed, and every
    input token a cache write when writes cost more than input)."""
    return (prompt_tokens * input_ceiling(price) + max_output_tokens * price.output) / _MILLION

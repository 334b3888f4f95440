"""Cost of a call from the model's price table, in Decimal US dollars: pure."""

from __future__ import annotations

from decimal import Decimal

from gateway.config import Price
from gateway.usage import Usage

_MILLION = Decimal(1_000_000)


def cost_usd(usage: Usage, price: Price) -> Decimal:
    """Cached input tokens at the cached price; reasoning tokens are output tokens."""
    cached = min(usage.cache_read, usage.input)
    uncached = usage.input - cached
    micro = uncached * price.input + cached * price.cached_input + usage.output * price.output
    return micro / _MILLION


def worst_case_cost_usd(prompt_tokens: int, max_output_tokens: int, price: Price) -> Decimal:
    """Upper bound of a call's cost before it is made (no cache discount assumed)."""
    return (prompt_tokens * price.input + max_output_tokens * price.output) / _MILLION

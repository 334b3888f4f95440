"""Bounds on what one request may ask for (`limits:` in the config): pure.

A request's output bound and choice count (OpenAI's `max_tokens` or
`max_completion_tokens`, and `n`) set a call's worst-case cost, which spend
control reserves before the call goes upstream, so each dialect's parser checks
them with `check_count` before anything else sees them: a value out of bounds
is a 400 in OpenAI's own words, never an overflow further down. The defaults
refuse nothing a real model serves: no model's output limit (128k tokens at
most in 2026) or context window (1-2M) reaches a million tokens, and 128
choices is OpenAI's own cap on `n`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic.dataclasses import dataclass as section

from gateway.confread import STRICT, Integer
from gateway.errors import InvalidRequest

DEFAULT_MAX_TOKENS = 1_000_000
DEFAULT_MAX_N = 128


@section(frozen=True, slots=True, config=STRICT)
class RequestLimits:
    """The `limits:` section."""

    # The most output tokens one choice may ask for.
    max_tokens: Annotated[int, Integer(1)] = DEFAULT_MAX_TOKENS
    max_n: Annotated[int, Integer(1)] = DEFAULT_MAX_N  # the most choices (`n`) one request may ask for


DEFAULT_LIMITS = RequestLimits()


def check_count(name: str, value: Any, maximum: int) -> None:
    """Raise InvalidRequest unless `value` (the request's `name`) is null or an integer
    from 1 to `maximum`. Each dialect calls it for its own fields."""
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidRequest(f"Invalid type for '{name}': expected an integer, but got "
                             f"{_json_type(value)} instead.", param=name, code="invalid_type")
    if value < 1:
        raise InvalidRequest(f"Invalid '{name}': integer below minimum value. Expected a value "
                             f">= 1, but got {value} instead.", param=name,
                             code="integer_below_min_value")
    if value > maximum:
        raise InvalidRequest(f"Invalid '{name}': integer above maximum value. Expected a value "
                             f"<= {maximum}, but got {value} instead.", param=name,
                             code="integer_above_max_value")


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "a value of another type"

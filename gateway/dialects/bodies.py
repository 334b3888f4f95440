"""A request body read as a JSON object, a required non-empty string field of it and a
bounded output-token limit: what every dialect checks first, each in its own API's words
(the messages are the caller's), so each SDK shows its users the wording it knows. Also
the span attributes dialects read alike from a body: numbers and stop sequences."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from gateway.errors import InvalidRequest


def json_object(raw: bytes, empty: str, invalid: str, not_object: str) -> dict[str, Any]:
    """`raw` parsed as a JSON object, else InvalidRequest with the message for what is
    wrong: `empty` body, `invalid` JSON, or JSON that is `not_object`."""
    if not raw:
        raise InvalidRequest(empty)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest(invalid) from None
    if not isinstance(body, dict):
        raise InvalidRequest(not_object)
    return body


def required_string(body: Mapping[str, Any], key: str, missing: str, invalid: str) -> str:
    """`body[key]` as a non-empty string, else InvalidRequest (`missing` when absent or
    null, `invalid` otherwise) naming `key` as the parameter."""
    value = body.get(key)
    if value is None:
        raise InvalidRequest(missing, param=key)
    if not isinstance(value, str) or not value:
        raise InvalidRequest(invalid, param=key)
    return value


def bounded_count(value: Any, limit: int, param: str, invalid: str, too_many: str) -> int:
    """`value` as an integer from 1 to `limit` (an output-token limit: it sets the worst
    case budgets reserve), else InvalidRequest naming `param`: `invalid` when it is no
    positive integer, `too_many` past the limit."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidRequest(invalid, param=param)
    if value > limit:
        raise InvalidRequest(too_many, param=param)
    return value


def numbers_into(attrs: dict[str, Any], source: Mapping[str, Any],
                 names: tuple[tuple[str, str], ...]) -> None:
    """For each (key, attribute) of `names` whose value in `source` is a number (not a
    bool), that value into `attrs` under the attribute."""
    for key, attr in names:
        value = source.get(key)
        # A tuple, not `int | float`: compiled, that would build a union object per test.
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            attrs[attr] = value


def string_list(value: Any) -> tuple[str, ...] | None:
    """`value` as a tuple when it is a non-empty list of strings (stop sequences), else None."""
    if isinstance(value, list) and value and all(isinstance(s, str) for s in value):
        return tuple(value)
    return None

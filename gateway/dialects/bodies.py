"""A request body read as a JSON object, and a required non-empty string field of it:
what every dialect checks first, each in its own API's words (the messages are the
caller's), so each SDK shows its users the wording it knows."""

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

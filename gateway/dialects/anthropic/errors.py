"""Anthropic's error shape, `{"type": "error", "error": {"type", "message"}}`, and its
mapping to and from HTTP statuses, so that the official SDKs raise their own classes
(`BadRequestError`, `RateLimitError`, `OverloadedError`, ...) for the gateway's errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

from gateway.errors import GatewayError, UpstreamStatus

INVALID_REQUEST: Final = "invalid_request_error"
API_ERROR: Final = "api_error"

# Anthropic's documented error types by HTTP status.
TYPE_BY_STATUS: Final[Mapping[int, str]] = {
    400: INVALID_REQUEST,
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: API_ERROR,
    504: "timeout_error",
    529: "overloaded_error",
}
STATUS_BY_TYPE: Final[Mapping[str, int]] = {kind: status for status, kind in TYPE_BY_STATUS.items()}


def type_for_status(status: int) -> str:
    """The error type Anthropic uses for `status`; other 4xx are invalid requests, other
    5xx API errors (the SDK picks its class by status, so the status stays as it is)."""
    kind = TYPE_BY_STATUS.get(status)
    if kind is not None:
        return kind
    return INVALID_REQUEST if status < 500 else API_ERROR


def error_body(kind: str, message: str, request_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message}}
    if request_id is not None:
        body["request_id"] = request_id
    return body


def error_bytes(status: int, message: str, request_id: str | None = None) -> bytes:
    return orjson.dumps(error_body(type_for_status(status), message, request_id))


def read_error(body: Any) -> tuple[str, str] | None:
    """(type, message) of an Anthropic error body already parsed from JSON, else None."""
    if not isinstance(body, dict) or body.get("type") != "error":
        return None
    error = body.get("error")
    if not isinstance(error, dict):
        return None
    kind = error.get("type")
    message = error.get("message")
    return (kind if isinstance(kind, str) else API_ERROR,
            message if isinstance(message, str) else "")


def is_error_body(raw: bytes) -> bool:
    """Whether `raw` already is an Anthropic error body (passed through as it is)."""
    try:
        return read_error(orjson.loads(raw)) is not None
    except orjson.JSONDecodeError:
        return False


def from_gateway(error: GatewayError, request_id: str | None = None) -> tuple[int, bytes]:
    """The status and body a Messages client is answered for `error`: an Anthropic upstream's
    own error body as it came, anything else rebuilt in Anthropic's shape with its status."""
    if isinstance(error, UpstreamStatus):
        if is_error_body(error.raw_body):
            return error.status, error.raw_body
        return error.status, error_bytes(error.status, error.upstream_message(), request_id)
    return error.status, error_bytes(error.status, error.message, request_id)


def stream_error_event(kind: str, message: str) -> bytes:
    """An SSE `error` event, as Anthropic sends mid-stream (the SDK raises it as APIError)."""
    return b"event: error\ndata: " + orjson.dumps(error_body(kind, message)) + b"\n\n"

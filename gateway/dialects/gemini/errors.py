"""Google's error shape, `{"error": {"code", "message", "status"}}`, and its mapping to
and from HTTP statuses, so that the `google-genai` SDK raises its own `ClientError` /
`ServerError` (with Google's `status` string) for the gateway's errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

from gateway.errors import GatewayError, UpstreamStatus

INTERNAL: Final = "INTERNAL"

# The canonical gRPC status names Google's HTTP APIs answer with, by HTTP status.
STATUS_BY_CODE: Final[Mapping[int, str]] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: INTERNAL,
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def status_for(code: int) -> str:
    """Google's status name for an HTTP status; other 4xx are FAILED_PRECONDITION, other
    5xx INTERNAL (the SDK picks its class by the number, which stays as it is)."""
    status = STATUS_BY_CODE.get(code)
    if status is not None:
        return status
    return "FAILED_PRECONDITION" if code < 500 else INTERNAL


def error_body(code: int, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status_for(code)}}


def error_bytes(code: int, message: str) -> bytes:
    return orjson.dumps(error_body(code, message))


def read_error(body: Any) -> tuple[int, str, str] | None:
    """(code, status, message) of a Google error body parsed from JSON, else None."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or "status" not in error:  # OpenAI's has none
        return None
    code = error.get("code")
    status = error.get("status")
    message = error.get("message")
    return (code if isinstance(code, int) else 500,
            status if isinstance(status, str) else INTERNAL,
            message if isinstance(message, str) else "")


def is_error_body(raw: bytes) -> bool:
    """Whether `raw` already is a Google error body (passed through as it is)."""
    try:
        return read_error(orjson.loads(raw)) is not None
    except orjson.JSONDecodeError:
        return False


def from_gateway(error: GatewayError) -> bytes:
    """The body a Gemini client is answered for `error`: a Google upstream's own error body
    as it came, anything else rebuilt in Google's shape."""
    if isinstance(error, UpstreamStatus):
        if is_error_body(error.raw_body):
            return error.raw_body
        return error_bytes(error.status, error.upstream_message())
    return error_bytes(error.status, error.message)


def upstream_error(status: int, body: bytes) -> bytes:
    """An upstream's error body in Google's shape (a Google body as it is)."""
    if is_error_body(body):
        return body
    return from_gateway(UpstreamStatus(status, body))


def stream_error_event(code: int, message: str) -> bytes:
    """An SSE event whose data is a Google error: the SDK raises it as an APIError."""
    return b"data: " + error_bytes(code, message) + b"\n\n"

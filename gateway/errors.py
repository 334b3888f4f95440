"""One error tree for everything a client can be told, in OpenAI's error shape.

Each error knows its HTTP status and OpenAI `type`/`code`, so the official SDKs
raise their own exception classes (BadRequestError, NotFoundError, ...).
Messages must never contain a secret: they are built from config names only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson


class GatewayError(Exception):
    """Base of every error answered to a client."""

    status: int = 500
    type: str = "server_error"
    code: str | None = None
    error_type: str = "_OTHER"  # low-cardinality `error.type` for telemetry

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        telemetry_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        # What a span may say when message content is not captured: a message that
        # quotes the upstream (which may echo the prompt) gives a neutral one here.
        self.telemetry_message = message if telemetry_message is None else telemetry_message
        self.param = param
        if code is not None:
            self.code = code
        self.headers: dict[str, str] = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def body_bytes(self) -> bytes:
        return orjson.dumps(self.body())


class InvalidRequest(GatewayError):
    status = 400
    type = "invalid_request_error"
    error_type = "invalid_request"


class AuthenticationFailed(GatewayError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"
    error_type = "authentication"


class PermissionDenied(GatewayError):
    status = 403
    type = "invalid_request_error"
    code = "model_not_allowed"
    error_type = "permission_denied"


class ModelNotFound(GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "model_not_found"
    error_type = "model_not_found"


class RouteNotFound(GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "unknown_url"
    error_type = "not_found"


class MethodNotAllowed(GatewayError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"
    error_type = "method_not_allowed"


class PayloadTooLarge(GatewayError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"
    error_type = "payload_too_large"


class RequestTimeout(GatewayError):
    status = 408
    type = "invalid_request_error"
    code = "request_timeout"
    error_type = "request_timeout"


class UnsupportedEncoding(GatewayError):
    status = 415
    type = "invalid_request_error"
    code = "unsupported_content_encoding"
    error_type = "unsupported_encoding"


class RateLimited(GatewayError):
    status = 429
    type = "rate_limit_exceeded"
    code = "rate_limit_exceeded"
    error_type = "rate_limited"


class BudgetExceeded(GatewayError):
    status = 429
    type = "budget_exceeded"
    code = "budget_exceeded"
    error_type = "budget_exceeded"


class DialectNotSupported(GatewayError):
    """The model's provider does not speak the client's API dialect (and there is no
    translation between the two)."""

    status = 501
    type = "invalid_request_error"
    code = "dialect_not_supported"
    error_type = "dialect_not_supported"


class ProviderNotConfigured(GatewayError):
    status = 503
    type = "server_error"
    code = "provider_not_configured"
    error_type = "provider_not_configured"


class ServiceUnavailable(GatewayError):
    status = 503
    type = "server_error"
    code = "service_unavailable"
    error_type = "unavailable"


class UpstreamUnreachable(GatewayError):
    status = 502
    type = "upstream_error"
    code = "upstream_unreachable"
    error_type = "connection_error"


class UpstreamBadResponse(GatewayError):
    status = 502
    type = "upstream_error"
    code = "bad_upstream_response"
    error_type = "bad_response"


class UpstreamTooLarge(UpstreamBadResponse):
    """The upstream's answer (a JSON body, an error body or one SSE event) went past the
    provider's size limit; the gateway stopped reading it and let its memory go."""

    code = "upstream_response_too_large"
    error_type = "response_too_large"


class UpstreamTimeout(GatewayError):
    status = 504
    type = "timeout"
    code = "upstream_timeout"
    error_type = "timeout"


class UpstreamStatus(GatewayError):
    """An error status answered by the upstream, passed through to the client."""

    def __init__(
        self,
        status: int,
        body: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        error_type: str | None = None,
    ) -> None:
        super().__init__(f"upstream answered {status}", headers=headers)
        self.status = status
        self.raw_body = body
        self.error_type = error_type or str(status)

    def body_bytes(self) -> bytes:
        return self.raw_body

    def upstream_message(self) -> str:
        """The `error.message` of the upstream's body (OpenAI's and Anthropic's shape),
        else the gateway's own message: another dialect's body is never echoed unread."""
        try:
            body = orjson.loads(self.raw_body)
        except orjson.JSONDecodeError:
            return self.message
        inner = body.get("error") if isinstance(body, dict) else None
        message = inner.get("message") if isinstance(inner, dict) else None
        return message if isinstance(message, str) and message else self.message

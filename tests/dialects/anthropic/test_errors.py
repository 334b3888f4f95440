"""The gateway's errors in Anthropic's shape, with the statuses the SDK maps to its classes."""

from __future__ import annotations

import anthropic
import httpx2 as httpx
import orjson
import pytest

from gateway import errors
from gateway.dialects.anthropic.errors import (
    from_gateway,
    is_error_body,
    read_error,
    stream_error_event,
    type_for_status,
)


@pytest.mark.parametrize(("status", "kind"), [
    (400, "invalid_request_error"), (401, "authentication_error"), (402, "billing_error"),
    (403, "permission_error"), (404, "not_found_error"), (405, "invalid_request_error"),
    (413, "request_too_large"), (429, "rate_limit_error"), (500, "api_error"),
    (502, "api_error"), (503, "api_error"), (504, "timeout_error"), (529, "overloaded_error"),
])
def test_type_for_status(status: int, kind: str) -> None:
    """Each status gets Anthropic's documented error type; others their class's default."""
    assert type_for_status(status) == kind


@pytest.mark.parametrize(("error", "status", "sdk_class"), [
    (errors.InvalidRequest("max_tokens: Field required"), 400, anthropic.BadRequestError),
    (errors.AuthenticationFailed("bad key"), 401, anthropic.AuthenticationError),
    (errors.PermissionDenied("not allowed"), 403, anthropic.PermissionDeniedError),
    (errors.ModelNotFound("model: nope"), 404, anthropic.NotFoundError),
    (errors.PayloadTooLarge("too big"), 413, anthropic.ContentTooLargeError),
    (errors.RateLimited("slow down"), 429, anthropic.RateLimitError),
    (errors.BudgetExceeded("budget"), 429, anthropic.RateLimitError),
    (errors.UpstreamUnreachable("down"), 502, anthropic.InternalServerError),
    (errors.ServiceUnavailable("draining"), 503, anthropic.ServiceUnavailableError),
    (errors.UpstreamTimeout("slow"), 504, anthropic.GatewayTimeoutError),
])
def test_gateway_errors_become_sdk_classes(error: errors.GatewayError, status: int,
                                           sdk_class: type[Exception]) -> None:
    """The body and status for each gateway error make the SDK raise its own class."""
    got_status, body = from_gateway(error, "req_gw_1")
    assert got_status == status
    parsed = orjson.loads(body)
    assert parsed["type"] == "error" and parsed["error"]["message"] == error.message
    assert parsed["request_id"] == "req_gw_1"
    response = httpx.Response(status, content=body,
                              request=httpx.Request("POST", "http://gw/v1/messages"))
    raised = anthropic.Anthropic(api_key="k")._make_status_error_from_response(response)
    assert type(raised) is sdk_class


def test_an_anthropic_upstream_error_passes_through() -> None:
    """An Anthropic upstream's error body reaches the client byte for byte (529 included)."""
    raw = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}'
    status, body = from_gateway(errors.UpstreamStatus(529, raw))
    assert (status, body) == (529, raw)


def test_an_openai_upstream_error_is_reshaped() -> None:
    """An OpenAI-shaped upstream error keeps its status and message, in Anthropic's shape."""
    raw = orjson.dumps({"error": {"message": "Rate limit reached", "type": "requests",
                                  "param": None, "code": "rate_limit_exceeded"}})
    status, body = from_gateway(errors.UpstreamStatus(429, raw))
    assert status == 429
    assert orjson.loads(body) == {"type": "error", "error": {"type": "rate_limit_error",
                                                             "message": "Rate limit reached"}}
    _, garbage = from_gateway(errors.UpstreamStatus(502, b"<html>bad gateway</html>"))
    assert orjson.loads(garbage)["error"] == {"type": "api_error",
                                              "message": "upstream answered 502"}


def test_read_error() -> None:
    """read_error finds (type, message) in Anthropic's shape only."""
    assert read_error({"type": "error", "error": {"type": "x", "message": "m"}}) == ("x", "m")
    assert read_error({"error": {"message": "m"}}) is None
    assert read_error({"type": "error", "error": "m"}) is None
    assert not is_error_body(b"not json") and not is_error_body(b'{"error": {}}')


def test_stream_error_event() -> None:
    """A mid-stream error is a named `error` event with Anthropic's body."""
    event = stream_error_event("api_error", "the upstream stream failed")
    assert event.startswith(b"event: error\ndata: ") and event.endswith(b"\n\n")
    assert orjson.loads(event.split(b"data: ", 1)[1]) == {
        "type": "error", "error": {"type": "api_error", "message": "the upstream stream failed"}}

"""Why an attempt failed, as one low-cardinality word: the fallback reason, the
retry reason and what the circuit breaker counts. Pure, no I/O.
"""

from __future__ import annotations

from typing import Final

from gateway import errors

CONNECTION_ERROR: Final = "connection_error"
TIMEOUT: Final = "timeout"
FIRST_TOKEN_TIMEOUT: Final = "first_token_timeout"
STATUS_5XX: Final = "status_5xx"
STATUS_429: Final = "status_429"
STATUS_4XX: Final = "status_4xx"  # the retryable ones: 408, 409
BAD_RESPONSE: Final = "bad_response"
NOT_CONFIGURED: Final = "provider_not_configured"
CIRCUIT_OPEN: Final = "circuit_open"
BUDGET: Final = "budget"
DIALECT: Final = "dialect_not_supported"  # the provider does not speak the call's dialect

# Reasons `retry.on` may list (the others never retry the same model).
RETRYABLE: Final = (CONNECTION_ERROR, TIMEOUT, STATUS_5XX, STATUS_429, STATUS_4XX, BAD_RESPONSE)
DEFAULT_RETRY_ON: Final = (CONNECTION_ERROR, TIMEOUT, STATUS_5XX, STATUS_429)
# Failures that say something about the upstream's health.
_BREAKER_FAILURES: Final = frozenset(
    {CONNECTION_ERROR, TIMEOUT, FIRST_TOKEN_TIMEOUT, STATUS_5XX, STATUS_429, STATUS_4XX, BAD_RESPONSE}
)
_RETRYABLE_STATUS: Final = frozenset({408, 409, 429})


class FirstTokenTimeout(errors.UpstreamTimeout):
    """No first byte (JSON) or first event (stream) within `first_token_timeout_s`."""

    code = "first_token_timeout"


class DeadlineExceeded(errors.UpstreamTimeout):
    """The request's overall deadline (`request_timeout_s`) passed before an answer."""

    code = "request_timeout"


def deadline_exceeded(request_s: float) -> DeadlineExceeded:
    return DeadlineExceeded(
        f"no model answered within the request's deadline of {request_s:g} s (request_timeout_s)")


class CircuitOpen(errors.ServiceUnavailable):
    """Every model of the chain was skipped because its circuit breaker is open."""

    code = "circuit_open"
    error_type = "circuit_open"


def classify(error: errors.GatewayError) -> str | None:
    """The reason to fall back after `error`, or None when no other model would help."""
    if isinstance(error, FirstTokenTimeout):
        return FIRST_TOKEN_TIMEOUT
    if isinstance(error, errors.UpstreamTimeout):
        return TIMEOUT
    if isinstance(error, errors.UpstreamUnreachable):
        return CONNECTION_ERROR
    if isinstance(error, errors.UpstreamBadResponse):
        return BAD_RESPONSE
    if isinstance(error, errors.ProviderNotConfigured):
        return NOT_CONFIGURED
    if isinstance(error, errors.UpstreamStatus):
        status = error.status
        if status >= 500:
            return STATUS_5XX
        if status == 429:
            return STATUS_429
        if status in _RETRYABLE_STATUS:
            return STATUS_4XX
    return None


def counts_as_failure(reason: str | None) -> bool:
    """Whether the circuit breaker should count this outcome against the upstream."""
    return reason in _BREAKER_FAILURES

"""Bounded label values for whatever an upstream or a client chooses.

A metric series exists per distinct label value, so a value taken from outside
(an upstream's HTTP status, a mid-stream error code, the model name an upstream
reports) must come from a fixed set: otherwise one hostile upstream makes a
series per random code and the metrics backend pays for each. Known values pass
as they are; anything else becomes `_OTHER` (statuses become their class).
Pure, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

OTHER: Final = "_OTHER"

# The statuses LLM APIs and the proxies in front of them answer with.
KNOWN_STATUSES: Final = frozenset({
    200, 201, 202, 204, 400, 401, 402, 403, 404, 405, 408, 409, 410, 413, 415, 422, 424, 429,
    499, 500, 501, 502, 503, 504, 520, 521, 522, 524, 529,
})
_STATUS_TEXT: Final = {status: str(status) for status in KNOWN_STATUSES}

# Error codes and types OpenAI-compatible upstreams put in error events.
KNOWN_CODES: Final = frozenset({
    "upstream_error", "server_error", "api_error", "internal_error", "internal_server_error",
    "rate_limit_exceeded", "rate_limit_error", "insufficient_quota", "overloaded",
    "overloaded_error", "service_unavailable", "timeout", "request_timeout",
    "context_length_exceeded", "invalid_request_error", "invalid_api_key",
    "authentication_error", "permission_error", "not_found_error", "model_not_found",
    "content_filter", "content_policy_violation", "bad_gateway", "connection_error",
    # Google's status names (Gemini's error chunks)
    "INVALID_ARGUMENT", "FAILED_PRECONDITION", "PERMISSION_DENIED", "NOT_FOUND",
    "RESOURCE_EXHAUSTED", "INTERNAL", "UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED",
    *_STATUS_TEXT.values(),
})

MAX_RESPONSE_MODELS: Final = 256


def status_label(status: int) -> int:
    """An HTTP status for a metric label: a known one, else its class (537 -> 500)."""
    if status in KNOWN_STATUSES:
        return status
    return max(100, min(status // 100, 9) * 100)


def status_error_type(status: int) -> str:
    """`error.type` for an upstream's error status: the status when known, else `_OTHER`."""
    return _STATUS_TEXT.get(status, OTHER)


def error_code(code: object) -> str:
    """`error.type` for an error an upstream reported mid-stream."""
    if code is None or code == "":
        return "upstream_error"
    text = code if isinstance(code, str) else str(code)
    return text if text in KNOWN_CODES else OTHER


class BoundedNames:
    """The first `limit` distinct names seen pass (cleaned once, by `clean`); later
    newcomers become `_OTHER`. One dict lookup per name already seen."""

    __slots__ = ("_clean", "_limit", "_seen")

    def __init__(self, limit: int = MAX_RESPONSE_MODELS,
                 clean: Callable[[str], str] | None = None) -> None:
        self._limit = limit
        self._clean = clean
        self._seen: dict[str, str] = {}

    def __call__(self, name: str | None) -> str | None:
        if name is None:
            return None
        known = self._seen.get(name)
        if known is not None:
            return known
        if len(self._seen) >= self._limit:
            return OTHER
        cleaned = name[:256]
        if self._clean is not None:
            cleaned = self._clean(cleaned)
        self._seen[name] = cleaned
        return cleaned

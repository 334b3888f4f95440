"""What OpenAI's two dialects (chat completions, embeddings) share: body checks,
the upstream rewrite, response attributes and OpenAI's error shapes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from gateway.dialects.bodies import json_object, required_string
from gateway.errors import GatewayError
from gateway.limits import RequestLimits, check_count
from gateway.telemetry import names as n

PASS_HEADERS = ("openai-processing-ms", "openai-version", "x-ratelimit-limit-requests",
                "x-ratelimit-limit-tokens", "x-ratelimit-remaining-requests",
                "x-ratelimit-remaining-tokens", "x-ratelimit-reset-requests",
                "x-ratelimit-reset-tokens")


def parse_json(raw: bytes) -> dict[str, Any]:
    return json_object(
        raw, "Request body is empty; expected a JSON object.",
        "We could not parse the JSON body of your request. The body must be valid JSON.",
        "The request body must be a JSON object.")


def model_of(body: Mapping[str, Any]) -> str:
    return required_string(body, "model", "you must provide a model parameter",
                           "'model' must be a non-empty string")


def check_bounds(body: Mapping[str, Any], limits: RequestLimits) -> None:
    """`max_tokens`, `max_completion_tokens` and `n` within `limits:` (else a 400)."""
    _bounded(body, "max_completion_tokens", limits.max_tokens)
    _bounded(body, "max_tokens", limits.max_tokens)
    _bounded(body, "n", limits.max_n)


def _bounded(body: Mapping[str, Any], name: str, maximum: int) -> None:
    value = body.get(name)
    if value is not None:  # most bodies set none: no call into the (interpreted) check
        check_count(name, value, maximum)


def max_tokens(body: Mapping[str, Any]) -> int | None:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def upstream_body(body: dict[str, Any], model: str, stream: bool,
                  upstream_model: str) -> tuple[dict[str, Any], bytes | None]:
    """The body with the upstream's model id, asking a stream for its usage.

    Never the client's own bytes: JSON parsers disagree on a key given twice (the
    gateway keeps the last, some upstreams the first), so the upstream gets the body
    re-serialised from what the gateway checked (model, max_tokens, n). orjson does
    that at about 0.2 us per KB, less than any scan of the bytes for duplicates."""
    if not stream and upstream_model == model:
        return body, None  # nothing to rewrite
    body = dict(body)
    body["model"] = upstream_model
    if stream:
        options = body.get("stream_options")
        options = dict(options) if isinstance(options, dict) else {}
        options["include_usage"] = True
        body["stream_options"] = options
    return body, None


def renamed(payload: dict[str, Any], served: str) -> bytes:
    """`payload` re-encoded with the gateway's model name in place of the upstream's."""
    payload["model"] = served
    return orjson.dumps(payload)


def response_attributes(payload: Mapping[str, Any]) -> dict[str, Any]:
    """gen_ai response attributes from an answer (or a stream's first chunk)."""
    attrs: dict[str, Any] = {}
    ident = payload.get("id")
    if isinstance(ident, str):
        attrs[n.GEN_AI_RESPONSE_ID] = ident
    fingerprint = payload.get("system_fingerprint")
    if isinstance(fingerprint, str):
        attrs[n.OPENAI_RESPONSE_SYSTEM_FINGERPRINT] = fingerprint
    tier = payload.get("service_tier")
    if isinstance(tier, str):
        attrs[n.OPENAI_RESPONSE_SERVICE_TIER] = tier
    return attrs


def common_request_attributes(body: Mapping[str, Any], max_tokens: int | None,
                              stream: bool) -> dict[str, Any]:
    """The request attributes both dialects read the same way."""
    attrs: dict[str, Any] = {}
    if max_tokens is not None:
        attrs[n.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
    for key, attr in _NUMERIC:
        value = body.get(key)
        # A tuple, not `int | float`: compiled, that would build a union object per test.
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            attrs[attr] = value
    seed = body.get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool):
        attrs[n.GEN_AI_REQUEST_SEED] = seed
    stop = body.get("stop")
    if isinstance(stop, str):
        attrs[n.GEN_AI_REQUEST_STOP_SEQUENCES] = (stop,)
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        attrs[n.GEN_AI_REQUEST_STOP_SEQUENCES] = tuple(stop)
    choices = body.get("n")
    if isinstance(choices, int) and not isinstance(choices, bool) and choices != 1:
        attrs[n.GEN_AI_REQUEST_CHOICE_COUNT] = choices
    if stream:
        attrs[n.GEN_AI_REQUEST_STREAM] = True
    fmt = body.get("response_format")
    if isinstance(fmt, dict):  # a parsed JSON body's objects are dicts (no ABC check)
        kind = fmt.get("type")
        if kind in ("json_object", "json_schema"):
            attrs[n.GEN_AI_OUTPUT_TYPE] = "json"
        elif kind == "text":
            attrs[n.GEN_AI_OUTPUT_TYPE] = "text"
    tier = body.get("service_tier")
    if isinstance(tier, str) and tier != "auto":
        attrs[n.OPENAI_REQUEST_SERVICE_TIER] = tier
    return attrs


_NUMERIC = (
    ("temperature", n.GEN_AI_REQUEST_TEMPERATURE),
    ("top_p", n.GEN_AI_REQUEST_TOP_P),
    ("top_k", n.GEN_AI_REQUEST_TOP_K),
    ("frequency_penalty", n.GEN_AI_REQUEST_FREQUENCY_PENALTY),
    ("presence_penalty", n.GEN_AI_REQUEST_PRESENCE_PENALTY),
)


def error_body(error: GatewayError) -> bytes:
    """`{"error": {"message", "type", "param", "code"}}`, which the openai SDK raises as
    BadRequestError, NotFoundError, ... by status."""
    return error.body_bytes()


def upstream_error(status: int, body: bytes) -> bytes:
    """An upstream error body passed through when OpenAI-shaped, else wrapped in that shape."""
    try:
        parsed = orjson.loads(body)
        shaped = isinstance(parsed, dict) and isinstance(parsed.get("error"), dict)
    except orjson.JSONDecodeError:
        shaped = False
    if shaped:
        return body
    text = body[:500].decode("utf-8", "replace")
    return GatewayError(f"upstream answered {status}: {text}").body_bytes()


def stream_error(message: str, code: str) -> bytes:
    """An SSE event the openai SDK raises as `APIError` mid-stream."""
    body = {"error": {"message": message, "type": "upstream_error", "param": None, "code": code}}
    return b"data: " + orjson.dumps(body) + b"\n\n"


def is_error_event(payload: Mapping[str, Any]) -> bool:
    """A chunk that reports an error instead of choices (OpenAI-compatible upstreams send
    `{"error": {...}}` as an event when a stream fails)."""
    return "error" in payload and not payload.get("choices")


def event_error(data: bytes) -> str | None:
    if b'"error"' not in data:
        return None
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(payload, dict) or not is_error_event(payload):
        return None
    error = payload["error"]
    if not isinstance(error, dict):
        return None
    return str(error.get("message") or "an error")[:300]


class OpenAIErrorShapes:
    """The error shapes every OpenAI dialect answers in (the `Dialect` protocol's
    `event_error`, `error_body`, `upstream_error`, `stream_error`), inherited by each."""

    def event_error(self, data: bytes) -> str | None:
        return event_error(data)

    def error_body(self, error: GatewayError) -> bytes:
        return error_body(error)

    def upstream_error(self, status: int, body: bytes) -> bytes:
        return upstream_error(status, body)

    def stream_error(self, message: str, code: str) -> bytes:
        return stream_error(message, code)

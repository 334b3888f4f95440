"""Parsing and validating client request bodies: pure, no I/O.

Only the fields the gateway needs are checked; everything else passes through
to the upstream untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.errors import InvalidRequest
from gateway.telemetry import names as n

OP_CHAT = n.OP_CHAT
OP_EMBEDDINGS = n.OP_EMBEDDINGS


@dataclass(slots=True, init=False)
class ClientRequest:
    """A validated request: the body plus what the gateway reads from it."""

    operation: str
    body: dict[str, Any]
    model: str
    stream: bool
    include_usage: bool
    raw: bytes  # the body as the client sent it

    def __init__(self, operation: str, body: dict[str, Any], model: str, stream: bool = False,
                 include_usage: bool = False, raw: bytes = b"") -> None:  # see AttemptResult
        self.operation = operation
        self.body = body
        self.model = model
        self.stream = stream
        self.include_usage = include_usage
        self.raw = raw

    @property
    def max_tokens(self) -> int | None:
        for key in ("max_completion_tokens", "max_tokens"):
            value = self.body.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        return None


def parse_json(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise InvalidRequest("Request body is empty; expected a JSON object.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest(
            "We could not parse the JSON body of your request. The body must be valid JSON."
        ) from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return body


def _model(body: Mapping[str, Any]) -> str:
    model = body.get("model")
    if model is None:
        raise InvalidRequest("you must provide a model parameter", param="model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' must be a non-empty string", param="model")
    return model


def parse_chat(raw: bytes) -> ClientRequest:
    body = parse_json(raw)
    model = _model(body)
    messages = body.get("messages")
    if messages is None:
        raise InvalidRequest("Missing required parameter: 'messages'.", param="messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array.", param="messages")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean.", param="stream")
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    return ClientRequest(n.OP_CHAT, body, model, bool(stream), include_usage, raw)


def parse_embeddings(raw: bytes) -> ClientRequest:
    body = parse_json(raw)
    model = _model(body)
    value = body.get("input")
    if value is None:
        raise InvalidRequest("Missing required parameter: 'input'.", param="input")
    if not isinstance(value, str | list) or (isinstance(value, list) and not value):
        raise InvalidRequest("'input' must be a string or a non-empty array.", param="input")
    return ClientRequest(n.OP_EMBEDDINGS, body, model, raw=raw)


_NUMERIC = (
    ("temperature", n.GEN_AI_REQUEST_TEMPERATURE),
    ("top_p", n.GEN_AI_REQUEST_TOP_P),
    ("top_k", n.GEN_AI_REQUEST_TOP_K),
    ("frequency_penalty", n.GEN_AI_REQUEST_FREQUENCY_PENALTY),
    ("presence_penalty", n.GEN_AI_REQUEST_PRESENCE_PENALTY),
)


def span_attributes(request: ClientRequest) -> dict[str, Any]:
    """The gen_ai request attributes a CLIENT span carries, for what the body has."""
    body = request.body
    attrs: dict[str, Any] = {}
    max_tokens = request.max_tokens
    if max_tokens is not None:
        attrs[n.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
    for key, attr in _NUMERIC:
        value = body.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
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
    if request.stream:
        attrs[n.GEN_AI_REQUEST_STREAM] = True
    fmt = body.get("response_format")
    if isinstance(fmt, Mapping):
        kind = fmt.get("type")
        if kind in ("json_object", "json_schema"):
            attrs[n.GEN_AI_OUTPUT_TYPE] = "json"
        elif kind == "text":
            attrs[n.GEN_AI_OUTPUT_TYPE] = "text"
    tier = body.get("service_tier")
    if isinstance(tier, str) and tier != "auto":
        attrs[n.OPENAI_REQUEST_SERVICE_TIER] = tier
    if request.operation == n.OP_CHAT:
        attrs[n.OPENAI_API_TYPE] = "chat_completions"
    else:
        encoding = body.get("encoding_format")
        if isinstance(encoding, str):
            attrs[n.GEN_AI_REQUEST_ENCODING_FORMATS] = (encoding,)
    return attrs

"""OpenAI embeddings (`POST /v1/embeddings`): JSON only, usage in `usage.prompt_tokens`."""

from __future__ import annotations

import binascii
from typing import Any

from gateway.dialects import openai_wire as wire
from gateway.dialects.base import ChunkTimer, ClientRequest, Reading, StreamWatcher
from gateway.errors import InvalidRequest
from gateway.telemetry import names as n
from gateway.usage import estimate_prompt_tokens, from_openai

NAME = "openai.embeddings"


class OpenAIEmbeddings(wire.OpenAIErrorShapes):
    """The embeddings dialect."""

    name: str = NAME
    operation: str = n.OP_EMBEDDINGS
    routes: tuple[str, ...] = ("/v1/embeddings", "/embeddings")
    upstream_path: str = "/embeddings"
    pass_headers: tuple[str, ...] = wire.PASS_HEADERS
    forward_headers: tuple[str, ...] = ()

    def parse(self, raw: bytes) -> ClientRequest:
        body = wire.parse_json(raw)
        model = wire.model_of(body)
        value = body.get("input")
        if value is None:
            raise InvalidRequest("Missing required parameter: 'input'.", param="input")
        if not isinstance(value, str | list) or (isinstance(value, list) and not value):
            raise InvalidRequest("'input' must be a string or a non-empty array.", param="input")
        return ClientRequest(self, body, model, max_tokens=wire.max_tokens(body), raw=raw)

    def estimate_prompt(self, body: dict[str, Any]) -> int:
        return estimate_prompt_tokens(body)

    def request_attributes(self, request: ClientRequest, capture: bool) -> dict[str, Any]:
        attrs = wire.common_request_attributes(request.body, request.max_tokens, request.stream)
        encoding = request.body.get("encoding_format")
        if isinstance(encoding, str):
            attrs[n.GEN_AI_REQUEST_ENCODING_FORMATS] = (encoding,)
        dimensions = request.body.get("dimensions")
        if isinstance(dimensions, int) and not isinstance(dimensions, bool):
            attrs[n.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] = dimensions
        return attrs

    def upstream_body(self, request: ClientRequest, upstream_model: str
                      ) -> tuple[dict[str, Any], bytes | None]:
        return wire.upstream_body(request.body, request.model, False, upstream_model)

    def read_answer(self, request: ClientRequest, payload: dict[str, Any], served: str,
                    rename: bool, capture: bool) -> Reading:
        response_model = payload.get("model")
        body = None
        if rename and isinstance(response_model, str):
            body = wire.renamed(payload, served)
        attributes = wire.response_attributes(payload)
        dimensions = dimension_count(payload)
        if dimensions is not None:
            attributes[n.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] = dimensions
        return Reading(from_openai(payload.get("usage")),
                       response_model if isinstance(response_model, str) else None,
                       attributes, body)

    def watch(self, request: ClientRequest, served: str, rename: bool, timer: ChunkTimer,
              capture: bool) -> StreamWatcher:
        raise InvalidRequest("embeddings are not streamed")  # parse never sets stream


def dimension_count(payload: dict[str, Any]) -> int | None:
    """The length of the first embedding in an answer: a list of floats, or base64 of
    float32s (`encoding_format: base64`)."""
    data = payload.get("data")
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        return None
    vector = data[0].get("embedding")
    if isinstance(vector, list):
        return len(vector)
    if isinstance(vector, str):
        try:
            return len(binascii.a2b_base64(vector)) // 4
        except (binascii.Error, ValueError):
            return None
    return None

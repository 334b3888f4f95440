"""Embeddings across dialects: OpenAI's `/embeddings` and Gemini's `:embedContent` /
`:batchEmbedContents`, both ways (embeddings do not pivot on chat completions).

A Gemini client of an OpenAI-format model: the texts of each `content` become `input`
(one string for embedContent, a list for batchEmbedContents), `outputDimensionality`
`dimensions`; the vectors come back as `embedding.values` / `embeddings[].values`. An
OpenAI client of a Gemini model: a string goes to embedContent, a list of strings to
batchEmbedContents (each request naming the model, as the API requires), `dimensions`
`outputDimensionality`; the vectors come back as `data[]`, as floats or, when asked
(the openai SDK's default), base64 of little-endian float32s, with the input tokens
estimated (Gemini reports none for embeddings). A list longer than batchEmbedContents
takes in one call (`BATCH_LIMIT`) is sent as several calls, a few at a time, their
vectors joined in order (`dialects.base.SplitsUpstream`). Refused (400): token arrays, non-text parts
and different dimensions within one batch. Dropped: Gemini's `taskType` and `title`,
OpenAI's `user`.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable, Mapping
from typing import Any, Final

import orjson

from gateway.dialects import openai_embeddings, openai_wire
from gateway.dialects.base import ChunkTimer, ClientRequest, Dialect, Reading, StreamWatcher
from gateway.dialects.gemini import answer as gemini_answer
from gateway.dialects.gemini import errors as gemini_errors
from gateway.dialects.gemini import generate as gemini
from gateway.errors import InvalidRequest
from gateway.telemetry import names as n
from gateway.translate.chat_turns import refuse
from gateway.translate.facing import ClientFacing
from gateway.translate.sides import google_to_openai

JSON = dict[str, Any]

_TO_OPENAI: Final = "cannot be translated to OpenAI's embeddings API"
_TO_GEMINI: Final = "cannot be translated to Gemini's embedContent API"
_EMBEDDINGS: Final = openai_embeddings.OpenAIEmbeddings()  # reads the upstream's usage
# The most requests batchEmbedContents takes in one call: more is a 400 INVALID_ARGUMENT,
# "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch".
BATCH_LIMIT: Final = 100


def _content_text(content: Any, where: str) -> str:
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list):
        raise InvalidRequest(f"{where}.parts must be a list.", param=where)
    texts: list[str] = []
    for part in parts:
        if not isinstance(part, dict) or not isinstance(part.get("text"), str):
            raise refuse(f"{where}: a part that is not text", where, _TO_OPENAI)
        texts.append(part["text"])
    return "\n".join(texts)


def gemini_to_openai_request(body: Mapping[str, Any], batch: bool) -> JSON:
    """An embedContent (or batchEmbedContents) request as an OpenAI embeddings request."""
    requests = body.get("requests") if batch else [body]
    inputs: list[str] = []
    dimensions: set[Any] = set()
    for index, request in enumerate(requests or ()):
        where = f"requests[{index}].content" if batch else "content"
        inputs.append(_content_text(request.get("content"), where))
        dimensions.add(request.get("outputDimensionality"))
    if len(dimensions) > 1:
        raise refuse("Different outputDimensionality within one batch", "requests",
                      _TO_OPENAI)
    out: JSON = {"input": inputs if batch else inputs[0], "encoding_format": "float"}
    dimension = dimensions.pop() if dimensions else None
    if dimension is not None:
        out["dimensions"] = dimension
    return out


def _vectors(payload: Mapping[str, Any]) -> list[Any]:
    data = payload.get("data")
    items = sorted((d for d in data or () if isinstance(d, dict)),
                   key=lambda d: d.get("index", 0))
    return [d.get("embedding") for d in items]


def openai_to_gemini_answer(payload: Mapping[str, Any], batch: bool) -> JSON:
    """An OpenAI embeddings answer as embedContent's (or batchEmbedContents')."""
    vectors = [{"values": v} for v in _vectors(payload)]
    if batch:
        return {"embeddings": vectors}
    return {"embedding": vectors[0] if vectors else {"values": []}}


def openai_to_gemini_request(body: Mapping[str, Any], upstream_model: str) -> JSON:
    """An OpenAI embeddings request as embedContent's (one string) or batchEmbedContents'
    (a list of strings)."""
    value = body.get("input")
    extra: JSON = {}
    if body.get("dimensions") is not None:
        extra["outputDimensionality"] = body["dimensions"]
    if isinstance(value, str):
        return {"content": {"parts": [{"text": value}]}, **extra}
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise refuse("'input' as token arrays", "input", _TO_GEMINI)
    model = f"models/{upstream_model}"
    return {"requests": [{"model": model, "content": {"parts": [{"text": v}]}, **extra}
                         for v in value]}


def batch_parts(body: Mapping[str, Any]) -> list[JSON] | None:
    """A batchEmbedContents body with more requests than one call takes, as the bodies
    of consecutive calls of BATCH_LIMIT requests at most; None when it fits in one."""
    requests = body.get("requests")
    if not isinstance(requests, list) or len(requests) <= BATCH_LIMIT:
        return None
    return [{"requests": requests[at:at + BATCH_LIMIT]}
            for at in range(0, len(requests), BATCH_LIMIT)]


def joined_batches(payloads: list[JSON]) -> JSON:
    """The answers of consecutive batchEmbedContents calls as one: the embeddings in
    order, and the prompt tokens summed when every answer counts them (Vertex AI's do;
    the Gemini API's count none, and the gateway estimates them for the whole call)."""
    embeddings: list[Any] = []
    counts: list[int] = []
    for payload in payloads:
        embeddings.extend(payload.get("embeddings") or ())
        metadata = payload.get("usageMetadata")
        count = metadata.get("promptTokenCount") if isinstance(metadata, dict) else None
        if isinstance(count, int):
            counts.append(count)
    joined: JSON = {"embeddings": embeddings}
    if payloads and len(counts) == len(payloads):
        joined["usageMetadata"] = {"promptTokenCount": sum(counts),
                                   "totalTokenCount": sum(counts)}
    return joined


def _encoded(values: Any, encoding: Any) -> Any:
    if encoding != "base64" or not isinstance(values, list):
        return values
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


def gemini_to_openai_answer(payload: Mapping[str, Any], request: Mapping[str, Any],
                            model: str, prompt_tokens: int) -> JSON:
    """embedContent's (or batchEmbedContents') answer as OpenAI's, the usage estimated."""
    single = payload.get("embedding")
    found = [single] if isinstance(single, dict) else payload.get("embeddings") or ()
    encoding = request.get("encoding_format")
    data = [{"object": "embedding", "index": i,
             "embedding": _encoded(e.get("values") if isinstance(e, dict) else None, encoding)}
            for i, e in enumerate(found)]
    return {"object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}}


class _NotStreamed:
    """Embeddings are answered whole (parse never sets `stream`)."""

    def watch(self, request: ClientRequest, served: str, rename: bool, timer: ChunkTimer,
              capture: bool) -> StreamWatcher:
        raise InvalidRequest("embeddings are not streamed")


class GeminiEmbedViaOpenAI(_NotStreamed, ClientFacing):
    """A Gemini embedContent / batchEmbedContents client served by an OpenAI-format
    upstream's `/embeddings`, whose usage is read as a native call's."""

    upstream_path = _EMBEDDINGS.upstream_path

    def __init__(self, client: Dialect) -> None:
        super().__init__(client, openai_embeddings.NAME)
        self.batch = client.name == gemini.BATCH_EMBED

    def upstream_body(self, request: ClientRequest, upstream_model: str
                      ) -> tuple[dict[str, Any], bytes | None]:
        body = gemini_to_openai_request(request.body, self.batch)
        body["model"] = upstream_model
        return body, None

    def read_answer(self, request: ClientRequest, payload: dict[str, Any], served: str,
                    rename: bool, capture: bool) -> Reading:
        reading = _EMBEDDINGS.read_answer(request, payload, served, False, capture)
        reading.body = orjson.dumps(openai_to_gemini_answer(payload, self.batch))
        return reading

    def event_error(self, data: bytes) -> str | None:
        return openai_wire.event_error(data)

    def upstream_error(self, status: int, body: bytes) -> bytes:
        return gemini_errors.upstream_error(status, body)


class EmbeddingsViaGemini(_NotStreamed, ClientFacing):
    """An OpenAI embeddings client served by a Gemini upstream (embedContent for one
    string, batchEmbedContents for a list)."""

    upstream_path = "/v1beta/models/{model}"  # the action is the call's: `upstream_route`

    def __init__(self, client: Dialect) -> None:
        super().__init__(client, gemini.EMBED)

    def upstream_route(self, request: ClientRequest, upstream_model: str) -> str:
        single = isinstance(request.body.get("input"), str)
        template = gemini.GeminiEmbed if single else gemini.GeminiBatchEmbed
        return gemini.upstream_route(template.upstream_path, upstream_model)

    def upstream_body(self, request: ClientRequest, upstream_model: str
                      ) -> tuple[dict[str, Any], bytes | None]:
        return openai_to_gemini_request(request.body, upstream_model), None

    def upstream_parts(self, body: dict[str, Any]) -> list[dict[str, Any]] | None:
        return batch_parts(body)

    def joined(self, payloads: list[dict[str, Any]]) -> dict[str, Any]:
        return joined_batches(payloads)

    def read_answer(self, request: ClientRequest, payload: dict[str, Any], served: str,
                    rename: bool, capture: bool) -> Reading:
        # The Gemini API reports no usage for embeddings: the path estimates it, as for a
        # native call, and the client is told the same estimate (or the count reported).
        usage = gemini_answer.usage_from(payload.get("usageMetadata"))
        tokens = request.prompt_tokens if usage is None else usage.input
        answer = gemini_to_openai_answer(payload, request.body, served, tokens)
        reading = Reading(usage, None, {}, orjson.dumps(answer))
        dimensions = openai_embeddings.dimension_count(answer)
        if dimensions is not None:
            reading.attributes[n.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] = dimensions
        return reading

    def event_error(self, data: bytes) -> str | None:
        return None

    def upstream_error(self, status: int, body: bytes) -> bytes:
        return openai_wire.upstream_error(status, google_to_openai(status, body))


# By client dialect name: the upstream dialect it is carried to, and the translation.
EMBEDDING_TRANSLATIONS: Final[Mapping[str, tuple[str, Callable[[Dialect], Dialect]]]] = {
    gemini.EMBED: (openai_embeddings.NAME, GeminiEmbedViaOpenAI),
    gemini.BATCH_EMBED: (openai_embeddings.NAME, GeminiEmbedViaOpenAI),
    openai_embeddings.NAME: (gemini.EMBED, EmbeddingsViaGemini),
}

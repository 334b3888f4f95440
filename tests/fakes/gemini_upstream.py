"""A fake Gemini upstream that speaks generativelanguage.googleapis.com's wire format:
`models/{model}:generateContent`, `:streamGenerateContent?alt=sse` (chunks framed with
CRLF, each with the counts so far, the last with the finish reason), `:countTokens`,
`:embedContent`, `:batchEmbedContents` (at most 100 requests a call, as the real API),
and Google's error bodies.

    async with running_gemini(Behaviour(text="Hello"), api_key="AIza-test") as up:
        ...
        assert up.state.requests[-1].headers["x-goog-api-key"] == "AIza-test"

Like the real API it wants the key in `x-goog-api-key` (or `?key=`) when `api_key` is set.
It counts the embedding requests it is answering at once, and keeps the peak
(`state.embedding_peak`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


@dataclass(frozen=True)
class Behaviour:
    """How the fake answers. `text` (default: an echo of the last user text) or
    `function_call` (name, args); usage: `prompt`, `cached`, `candidates`, `thoughts`,
    `tool_use_prompt`; `status` answers that error in Google's shape; in streams,
    `chunk_delay_s` between chunks, `chunk_words` words per chunk, `error_after_chunks`
    sends an error chunk after that many chunks and ends; `vector_of_length` makes each
    embedding's values the length of its text (so a test can tell the vectors apart), a
    batch with the text `unavailable_for` in it answers 503, and `embed_delay_s` holds each
    embedding request that long before answering (so that requests in flight overlap)."""

    text: str | None = None
    function_call: tuple[str, Mapping[str, Any]] | None = None
    prompt: int = 12
    cached: int = 0
    candidates: int = 6
    thoughts: int = 0
    tool_use_prompt: int = 0
    model_version: str = "gemini-2.5-flash"
    status: int | None = None
    chunk_words: int = 2
    chunk_delay_s: float = 0.0
    error_after_chunks: int | None = None
    vector_of_length: bool = False
    unavailable_for: str | None = None
    embed_delay_s: float = 0.0


@dataclass
class Recorded:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class State:
    behaviour: Behaviour = field(default_factory=Behaviour)
    api_key: str | None = None
    requests: list[Recorded] = field(default_factory=list)
    stream_closed: asyncio.Event = field(default_factory=asyncio.Event)
    embedding_now: int = 0  # embedding requests being answered
    embedding_peak: int = 0  # the most of them at any one moment


STATE = web.AppKey("state", State)
BATCH_LIMIT = 100  # batchEmbedContents' requests in one call
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
           404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


def error_body(code: int, message: str) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message,
                                   "status": _STATUS.get(code, "INTERNAL")}})


def _error(code: int, message: str) -> web.Response:
    return web.Response(status=code, body=error_body(code, message),
                        content_type="application/json")


def usage(b: Behaviour) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "promptTokenCount": b.prompt, "candidatesTokenCount": b.candidates,
        "totalTokenCount": b.prompt + b.candidates + b.thoughts + b.tool_use_prompt,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": b.prompt}]}
    if b.cached:
        metadata["cachedContentTokenCount"] = b.cached
    if b.thoughts:
        metadata["thoughtsTokenCount"] = b.thoughts
    if b.tool_use_prompt:
        metadata["toolUsePromptTokenCount"] = b.tool_use_prompt
    return metadata


def _last_text(body: Any) -> str:
    for content in reversed(body.get("contents") or []):
        for part in content.get("parts") or []:
            if "text" in part:
                return str(part["text"])
    return ""


def _chunk(b: Behaviour, parts: list[Any], finish: str | None, metadata: Any) -> bytes:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return orjson.dumps({"candidates": [candidate], "usageMetadata": metadata,
                         "modelVersion": b.model_version, "responseId": "resp-fake-1"})


async def generate(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    body = await request.json()
    state.requests.append(Recorded(request.path, dict(request.query),
                                   {str(k): v for k, v in request.headers.items()},
                                   body))
    key = request.headers.get("x-goog-api-key") or request.query.get("key")
    if state.api_key is not None and key != state.api_key:
        return _error(400, "API key not valid. Please pass a valid API key.")
    b = state.behaviour
    if b.status is not None:
        return _error(b.status, f"fake upstream error {b.status}")
    action = request.match_info["action"]
    if action == "countTokens":
        return web.json_response({"totalTokens": b.prompt})
    if action in ("embedContent", "batchEmbedContents"):
        state.embedding_now += 1
        state.embedding_peak = max(state.embedding_peak, state.embedding_now)
        try:
            if b.embed_delay_s:
                await asyncio.sleep(b.embed_delay_s)
            return _embed(request.match_info["model"], body, action == "batchEmbedContents", b)
        finally:
            state.embedding_now -= 1
    if b.function_call is not None:
        parts: list[Any] = [{"functionCall": {"name": b.function_call[0],
                                              "args": dict(b.function_call[1])}}]
    else:
        parts = [{"text": b.text if b.text is not None else _last_text(body)}]
    if action == "generateContent":
        return web.Response(body=_chunk(b, parts, "STOP", usage(b)),
                            content_type="application/json")
    if request.query.get("alt") != "sse":
        return _error(400, "the fake streams only with alt=sse")
    return await _stream(request, state, b, parts)


def _vector(request: Any, b: Behaviour) -> list[float]:
    """0.1, 0.2, 0.3, ... cut to the request's `outputDimensionality` (3 without one), or
    as many times its text's length with `vector_of_length`."""
    size = request.get("outputDimensionality") if isinstance(request, dict) else None
    count = size if isinstance(size, int) else 3
    if b.vector_of_length:
        return [float(len(_last_text({"contents": [request["content"]]})))] * count
    return [round(0.1 * (i + 1), 1) for i in range(count)]


def _embed(model: str, body: Any, batch: bool, b: Behaviour) -> web.Response:
    """Like the real API: at most BATCH_LIMIT requests in a batch, each content must be
    given, and each request of a batch must name the URL's model."""
    requests = body.get("requests") if batch else [body]
    if batch and len(requests or ()) > BATCH_LIMIT:
        return _error(400, "* BatchEmbedContentsRequest.requests: at most 100 requests can be "
                           "in one batch")
    if b.unavailable_for is not None and b.unavailable_for in orjson.dumps(body).decode():
        return _error(503, "The model is overloaded. Please try again later.")
    for index, request in enumerate(requests or ()):
        if not isinstance(request.get("content"), dict):
            return _error(400, f"* requests[{index}].content: content is not specified")
        if batch and request.get("model") != f"models/{model}":
            return _error(400, f"* BatchEmbedContentsRequest.requests[{index}].model: "
                               "model must be the one in the URL")
    if batch:
        return web.json_response({"embeddings": [{"values": _vector(r, b)} for r in requests]})
    return web.json_response({"embedding": {"values": _vector(body, b)}})


async def _stream(request: web.Request, state: State, b: Behaviour,
                  parts: list[Any]) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    pieces: list[Any] = parts
    if "text" in parts[0]:
        words = parts[0]["text"].split(" ")
        pieces = [{"text": (" " if i else "") + " ".join(words[i:i + b.chunk_words])}
                  for i in range(0, len(words), b.chunk_words)]
    try:
        for index, piece in enumerate(pieces):
            if b.error_after_chunks is not None and index == b.error_after_chunks:
                await response.write(b"data: " + error_body(500, "fake mid-stream failure")
                                     + b"\r\n\r\n")
                return response
            last = index == len(pieces) - 1
            metadata = usage(b) if last else {"promptTokenCount": b.prompt,
                                              "totalTokenCount": b.prompt}
            await response.write(b"data: " + _chunk(b, [piece], "STOP" if last else None,
                                                    metadata) + b"\r\n\r\n")
            if b.chunk_delay_s and not last:
                await asyncio.sleep(b.chunk_delay_s)
        await response.write_eof()
    finally:
        state.stream_closed.set()
    return response


async def unknown(request: web.Request) -> web.Response:
    return _error(404, f"no such route {request.path}")


@dataclass
class RunningGemini:
    base_url: str
    state: State


@contextlib.asynccontextmanager
async def running_gemini(behaviour: Behaviour | None = None, *,
                         api_key: str | None = None) -> AsyncIterator[RunningGemini]:
    state = State(behaviour=behaviour or Behaviour(), api_key=api_key)
    app = web.Application()
    app[STATE] = state
    app.router.add_post("/v1beta/models/{model}:{action}", generate)
    app.router.add_route("*", "/{tail:.*}", unknown)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield RunningGemini(f"http://127.0.0.1:{runner.addresses[0][1]}", state)
    finally:
        await runner.cleanup()

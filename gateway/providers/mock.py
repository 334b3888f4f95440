"""The built-in simulated provider (`kind: mock`): answers in OpenAI's exact wire
format (JSON and SSE, with usage), in the Responses API's format on its paths
(`mock_responses`), in Anthropic's Messages format on the Messages paths
(`mock_messages`) and in Gemini's on its paths (`mock_gemini`), with realistic latency
and token counts, so the gateway shows real metrics and traces with no API key. Load
tests and the demo stack use it too.

Request headers steer it (the load generator uses them): `x-mock-latency-ms`
adds latency, `x-mock-error: 429|500|503` answers that error.
"""

from __future__ import annotations

import asyncio
import base64
import random
import struct
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from gateway.config import ProviderConfig
from gateway.dialects.anthropic.request import estimate_prompt_tokens as estimate_messages_prompt
from gateway.dialects.gemini.request import estimate_prompt_tokens as estimate_gemini_prompt
from gateway.dialects.openai_responses.wire import estimate_prompt_tokens as estimate_input
from gateway.dialects.registry import SIMULATOR_NATIVE
from gateway.providers import mock_gemini, mock_messages, mock_responses
from gateway.providers.base import UpstreamRequest
from gateway.usage import estimate_prompt_tokens

_WORDS = (
    "the gateway measures every call so that teams can see tokens latency and cost "
    "before the bill arrives and a runaway loop is caught early while traces show "
    "where each second went"
).split()
_EMBEDDING_DIMS = 256
_ERRORS: Mapping[int, tuple[str, str]] = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("invalid_request_error", "invalid_api_key"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", "server_error"),
    502: ("server_error", "bad_gateway"),
    503: ("server_error", "service_unavailable"),
}


class MockResponse:
    """A simulated upstream answer, streamed with per-chunk delays."""

    def __init__(
        self,
        status: int,
        body: bytes = b"",
        chunks: list[bytes] | None = None,
        chunk_delay_s: float = 0.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self._body = body
        self._chunks = chunks
        self._delay = chunk_delay_s
        content_type = "text/event-stream" if chunks is not None else "application/json"
        self.headers: Mapping[str, str] = {
            "content-type": content_type,
            "x-request-id": f"req_{uuid.uuid4().hex}",
            **(headers or {}),
        }

    async def read(self) -> bytes:
        if self._chunks is not None:
            return b"".join([c async for c in self.iter_chunks()])
        return self._body

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        for index, chunk in enumerate(self._chunks or [self._body]):
            if index and self._delay:
                await asyncio.sleep(self._delay)
            yield chunk

    def close(self) -> None:
        self._chunks = []


class MockProvider:
    """Generates OpenAI-format answers in-process."""

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self.dialects = SIMULATOR_NATIVE
        self._random = random.Random(config.mock.seed)
        self._prompt_cache = mock_messages.PromptCache()
        self._responses = mock_responses.ResponsesSimulator()

    @property
    def server_address(self) -> str | None:
        return None

    @property
    def server_port(self) -> int | None:
        return None

    def _jittered(self, value: float) -> float:
        jitter = self.config.mock.jitter
        return max(0.0, value * (1 + self._random.uniform(-jitter, jitter)))

    async def send(self, request: UpstreamRequest) -> MockResponse:
        settings = self.config.mock
        extra_ms = _float(request.directives.get("x-mock-latency-ms"))
        latency_s = (self._jittered(settings.latency_ms) + extra_ms) / 1000
        error = _int(request.directives.get("x-mock-error"))
        if request.operation == "embeddings":
            latency_s /= 4
        if latency_s:
            await asyncio.sleep(latency_s)
        messages = request.path.endswith(("/messages", "/messages/count_tokens"))
        gemini = mock_gemini.action(request.path)
        if error:
            if gemini is not None:
                headers = {"retry-after": "1"} if error == 429 else {}
                return MockResponse(error, mock_gemini.error(error), headers=headers)
            if messages:
                headers = {"retry-after": "1"} if error == 429 else {}
                return MockResponse(error, mock_messages.error(error), headers=headers)
            return _error(error)
        if gemini is not None:
            return self._gemini(request, gemini)
        if request.operation == "embeddings":
            return MockResponse(200, orjson.dumps(self._embeddings(request.body)))
        if request.path.endswith("/messages/count_tokens"):
            return MockResponse(200, mock_messages.count_tokens(request.body))
        if messages:
            return self._messages(request)
        if request.path.startswith("/responses/"):
            status, body = self._responses.stored(request.method, request.path[11:])
            return MockResponse(status, body)
        if request.path == "/responses":
            return self._response(request)
        return self._chat(request)

    def _response(self, request: UpstreamRequest) -> MockResponse:
        body = request.body
        limit = body.get("max_output_tokens")
        words, cut = self._words(estimate_input(body), limit if isinstance(limit, int) else None)
        headers = {"x-request-id": f"req_{uuid.uuid4().hex}"}
        ms_per_chunk = self.config.mock.ms_per_chunk
        if not body.get("stream"):
            answer = self._responses.answer(body, words, cut)
            return _Delayed(200, orjson.dumps(answer), ms_per_chunk * len(words) / 1000, headers)
        return MockResponse(200, chunks=self._responses.stream(body, words, cut),
                            chunk_delay_s=ms_per_chunk / 1000, headers=headers)

    def _words(self, prompt_tokens: int, limit: int | None) -> tuple[list[str], bool]:
        """The reply's words, and whether the output limit cut them short."""
        wanted = round(self._jittered(self.config.mock.completion_tokens)) or 1
        count = min(wanted, limit) if limit else wanted
        return [_WORDS[(prompt_tokens + i) % len(_WORDS)] for i in range(count)], bool(
            limit and wanted > limit)

    def _messages(self, request: UpstreamRequest) -> MockResponse:
        body = request.body
        words, cut = self._words(estimate_messages_prompt(body), _max_tokens(body))
        answer = mock_messages.message(body, " ".join(words), len(words),
                                       "max_tokens" if cut else "end_turn", self._prompt_cache)
        headers = {"request-id": f"req_011C{uuid.uuid4().hex[:20]}"}
        ms_per_chunk = self.config.mock.ms_per_chunk
        if not body.get("stream"):
            return _Delayed(200, orjson.dumps(answer), ms_per_chunk * len(words) / 1000, headers)
        return MockResponse(200, chunks=mock_messages.stream(answer),
                            chunk_delay_s=ms_per_chunk / 1000, headers=headers)

    def _gemini(self, request: UpstreamRequest, action: str) -> MockResponse:
        body = request.body
        if action == "countTokens":
            return MockResponse(200, mock_gemini.count_tokens(body))
        if action in ("embedContent", "batchEmbedContents"):
            return MockResponse(200, mock_gemini.embed(body, action == "batchEmbedContents"))
        words, cut = self._words(estimate_gemini_prompt(body), mock_gemini.max_output(body))
        answer = mock_gemini.answer(body, request.model.upstream_id(request.model.name), words,
                                    cut)
        ms_per_chunk = self.config.mock.ms_per_chunk
        if action != "streamGenerateContent":
            return _Delayed(200, orjson.dumps(answer), ms_per_chunk * len(words) / 1000)
        return MockResponse(200, chunks=mock_gemini.stream(answer),
                            chunk_delay_s=ms_per_chunk / 1000)

    def _chat(self, request: UpstreamRequest) -> MockResponse:
        body = request.body
        settings = self.config.mock
        prompt_tokens = estimate_prompt_tokens(body)
        wanted = round(self._jittered(settings.completion_tokens)) or 1
        limit = _max_tokens(body)
        completion_tokens = min(wanted, limit) if limit else wanted
        finish = "length" if limit and wanted > limit else "stop"
        words = [_WORDS[(prompt_tokens + i) % len(_WORDS)] for i in range(completion_tokens)]
        cached = (prompt_tokens // 128) * 64 if prompt_tokens >= 1024 else 0
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        ident = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        model = str(body.get("model", request.model.upstream_model))
        fingerprint = "fp_sim0001"
        if not body.get("stream"):
            answer = {
                "id": ident,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": " ".join(words),
                            "refusal": None,
                            "annotations": [],
                        },
                        "logprobs": None,
                        "finish_reason": finish,
                    }
                ],
                "usage": usage,
                "service_tier": "default",
                "system_fingerprint": fingerprint,
            }
            # A non-streamed answer takes as long as generating all its tokens.
            delay = settings.ms_per_chunk * completion_tokens / 1000
            return _Delayed(200, orjson.dumps(answer), delay)
        options = body.get("stream_options")
        with_usage = isinstance(options, Mapping) and options.get("include_usage") is True

        def event(choices: list[dict[str, Any]], usage_value: Any) -> bytes:
            payload: dict[str, Any] = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "service_tier": "default",
                "system_fingerprint": fingerprint,
                "choices": choices,
            }
            if with_usage:
                payload["usage"] = usage_value
            return b"data: " + orjson.dumps(payload) + b"\n\n"

        def chunk(delta: dict[str, Any], finish_reason: str | None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            return event([choice], None)

        chunks = [chunk({"role": "assistant", "content": "", "refusal": None}, None)]
        for i, word in enumerate(words):
            chunks.append(chunk({"content": word if i == 0 else " " + word}, None))
        chunks.append(chunk({}, finish))
        if with_usage:
            chunks.append(event([], usage))
        chunks.append(b"data: [DONE]\n\n")
        return MockResponse(200, chunks=chunks, chunk_delay_s=settings.ms_per_chunk / 1000)

    def _embeddings(self, body: Mapping[str, Any]) -> dict[str, Any]:
        raw = body.get("input")
        inputs = raw if isinstance(raw, list) else [raw]
        as_base64 = body.get("encoding_format") == "base64"
        size = body.get("dimensions")  # as text-embedding-3 models shorten their vectors
        size = size if isinstance(size, int) and 0 < size < _EMBEDDING_DIMS else _EMBEDDING_DIMS
        data = []
        for index, item in enumerate(inputs):
            rng = random.Random(str(item))
            vector = [rng.uniform(-1, 1) for _ in range(size)]
            embedding: Any = vector
            if as_base64:
                embedding = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = estimate_prompt_tokens({"input": raw})
        return {
            "object": "list",
            "data": data,
            "model": str(body.get("model", "")),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    async def close(self) -> None:
        """Nothing to release."""


class _Delayed(MockResponse):
    """A JSON answer whose body takes `delay` seconds to arrive."""

    def __init__(self, status: int, body: bytes, delay: float,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status, body, headers=headers)
        self._wait = delay

    async def read(self) -> bytes:
        if self._wait:
            await asyncio.sleep(self._wait)
        return self._body


def _error(status: int) -> MockResponse:
    kind, code = _ERRORS.get(status, ("server_error", "server_error"))
    body = {
        "error": {
            "message": f"Simulated upstream error {status}.",
            "type": kind,
            "param": None,
            "code": code,
        }
    }
    headers = {"retry-after": "1"} if status == 429 else {}
    return MockResponse(status, orjson.dumps(body), headers=headers)


def _max_tokens(body: Mapping[str, Any]) -> int | None:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _float(value: str | None) -> float:
    try:
        return max(0.0, min(float(value), 600_000.0)) if value else 0.0
    except ValueError:
        return 0.0


def _int(value: str | None) -> int:
    try:
        number = int(value) if value else 0
    except ValueError:
        return 0
    return number if 400 <= number <= 599 else 0

"""OpenAI wire-format builders for the fake upstream: pure functions, no I/O.

Kept apart from the server so the exact shapes api.openai.com sends (ids,
usage details, chunk layout, error bodies) live in one place that tests and
the benchmark can read without an event loop.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import string
import struct
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]

_ALPHABET = string.ascii_letters + string.digits
_FILLER = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
    "incididunt ut labore et dolore magna aliqua"
).split()
REPLY_PREFIX = "This is a fake reply to:"
DEFAULT_MAX_REPLY_TOKENS = 32
MODEL_CREATED = 1_744_316_542


def _random_token(n: int) -> str:
    raw = os.urandom(n)
    return "".join(_ALPHABET[b % len(_ALPHABET)] for b in raw)


class IdFactory:
    """Makes ids shaped like OpenAI's, cheaply: a random per-process prefix plus a counter."""

    def __init__(self) -> None:
        self._prefix = _random_token(20)
        self._fingerprint = "fp_" + os.urandom(5).hex()
        self._counter = itertools.count(1)

    @property
    def system_fingerprint(self) -> str:
        return self._fingerprint

    def completion_id(self) -> str:
        return f"chatcmpl-{self._prefix}{next(self._counter):09d}"

    def request_id(self) -> str:
        return f"req_{self._prefix.lower()}{next(self._counter):012d}"


# --- token accounting -----------------------------------------------------


def _message_text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, Mapping)]
        return " ".join(str(p) for p in parts)
    return ""


def count_prompt_tokens(messages: Sequence[Any]) -> int:
    """Deterministic prompt size: whitespace words of every message, plus 3 per message, plus 3."""
    words = 0
    for message in messages:
        if isinstance(message, Mapping):
            words += len(_message_text(message).split()) + 3
    return words + 3


def last_user_text(messages: Sequence[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "user":
            return _message_text(message)
    return ""


def reply_words(messages: Sequence[Any], n_tokens: int | None) -> list[str]:
    """The reply as a list of words ("tokens"): an echo of the last user message, padded or cut.

    Without an explicit count the reply is the prefix plus the echo, capped at
    DEFAULT_MAX_REPLY_TOKENS words.
    """
    words = [*REPLY_PREFIX.split(), *last_user_text(messages).split()]
    if n_tokens is None:
        return words[:DEFAULT_MAX_REPLY_TOKENS]
    if len(words) < n_tokens:
        filler = itertools.islice(itertools.cycle(_FILLER), n_tokens - len(words))
        words.extend(filler)
    return words[:n_tokens]


def split_chunks(words: Sequence[str], n_chunks: int | None) -> list[str]:
    """Content deltas whose concatenation is ' '.join(words); one word each unless n_chunks says."""
    if not words:
        return []
    pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
    if n_chunks is None or n_chunks >= len(pieces):
        return pieces
    n = max(1, n_chunks)
    size, extra = divmod(len(pieces), n)
    out: list[str] = []
    start = 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        out.append("".join(pieces[start:end]))
        start = end
    return out


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts for one call, with OpenAI's detail breakdown."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    audio_prompt_tokens: int = 0
    audio_completion_tokens: int = 0

    def to_json(self) -> JSON:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens,
                                      "audio_tokens": self.audio_prompt_tokens},
            "completion_tokens_details": {
                "reasoning_tokens": self.reasoning_tokens,
                "audio_tokens": self.audio_completion_tokens,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }


# --- chat completions -----------------------------------------------------


def chat_completion(
    *,
    completion_id: str,
    model: str,
    content: str,
    finish_reason: str,
    usage: Usage,
    system_fingerprint: str,
    created: int | None = None,
) -> JSON:
    """A non-streaming `chat.completion` object exactly as api.openai.com returns it."""
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": content,
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": usage.to_json(),
        "service_tier": "default",
        "system_fingerprint": system_fingerprint,
    }


@dataclass(frozen=True, slots=True)
class ChunkHeader:
    """The fields every `chat.completion.chunk` of one stream shares."""

    completion_id: str
    model: str
    created: int
    system_fingerprint: str
    include_usage: bool
    obfuscate: bool


def _chunk(header: ChunkHeader, choices: list[JSON], obfuscation_len: int) -> JSON:
    chunk: JSON = {
        "id": header.completion_id,
        "object": "chat.completion.chunk",
        "created": header.created,
        "model": header.model,
        "service_tier": "default",
        "system_fingerprint": header.system_fingerprint,
        "choices": choices,
    }
    if header.include_usage:
        chunk["usage"] = None
    if header.obfuscate:
        # api.openai.com pads each chunk with random characters against
        # side-channel length analysis; deterministic here.
        chunk["obfuscation"] = ("x" * 12)[: max(1, 12 - obfuscation_len % 12)]
    return chunk


def _choice(delta: JSON, finish_reason: str | None) -> JSON:
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}


def stream_chunks(
    header: ChunkHeader, deltas: Sequence[str], finish_reason: str, usage: Usage
) -> Iterator[JSON]:
    """The chunk sequence of one streamed completion, in wire order (without [DONE])."""
    yield _chunk(header, [_choice({"role": "assistant", "content": "", "refusal": None}, None)], 0)
    for text in deltas:
        yield _chunk(header, [_choice({"content": text}, None)], len(text))
    yield _chunk(header, [_choice({}, finish_reason)], 0)
    if header.include_usage:
        final = _chunk(header, [], 0)
        final["usage"] = usage.to_json()
        yield final


SSE_DONE = b"data: [DONE]\n\n"


def sse_event(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"


# --- embeddings and models ------------------------------------------------


def count_embedding_tokens(inputs: Any) -> int:
    """Words for strings, length for token arrays; summed over a batch."""
    if isinstance(inputs, str):
        return max(1, len(inputs.split()))
    if isinstance(inputs, list):
        if inputs and all(isinstance(i, int) for i in inputs):
            return len(inputs)
        return sum(count_embedding_tokens(i) for i in inputs)
    return 0


def embedding_inputs(inputs: Any) -> list[Any]:
    """The batch items of an `input` field (a single string or token array is one item)."""
    if isinstance(inputs, list) and inputs and not all(isinstance(i, int) for i in inputs):
        return list(inputs)
    return [inputs]


def embedding_vector(item: Any, dimensions: int) -> list[float]:
    """A deterministic unit-ish vector derived from the input's hash."""
    seed = hashlib.sha256(repr(item).encode()).digest()
    stream = itertools.cycle(seed)
    return [((next(stream) / 255.0) - 0.5) for _ in range(dimensions)]


def encode_base64(vector: Sequence[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def embeddings_response(*, model: str, inputs: Any, dimensions: int, encoding_format: str) -> JSON:
    data: list[JSON] = []
    for index, item in enumerate(embedding_inputs(inputs)):
        vector = embedding_vector(item, dimensions)
        embedding: Any = encode_base64(vector) if encoding_format == "base64" else vector
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = count_embedding_tokens(inputs)
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def models_list(models: Sequence[str]) -> JSON:
    return {
        "object": "list",
        "data": [
            {"id": m, "object": "model", "created": MODEL_CREATED, "owned_by": "system"} for m in models
        ],
    }


# --- errors ---------------------------------------------------------------


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> JSON:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def mask_key(key: str) -> str:
    """How api.openai.com echoes a wrong key: first 3 and last 4 characters kept."""
    if len(key) <= 8:
        return "*" * len(key)
    return key[:3] + "*" * (len(key) - 7) + key[-4:]


def invalid_api_key(presented: str | None) -> JSON:
    if not presented:
        return error_body(
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), "
            "or as the password field (with blank username) if you're accessing the API from "
            "your browser and are prompted for a username and password. You can obtain an API "
            "key from https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
        )
    return error_body(
        f"Incorrect API key provided: {mask_key(presented)}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        code="invalid_api_key",
    )


def model_not_found(model: str) -> JSON:
    return error_body(
        f"The model `{model}` does not exist or you do not have access to it.",
        "invalid_request_error",
        code="model_not_found",
    )


def invalid_json() -> JSON:
    return error_body(
        "We could not parse the JSON body of your request. (HINT: This likely means you "
        "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but "
        "what was sent was not valid JSON.)",
        "invalid_request_error",
    )


def missing_parameter(param: str) -> JSON:
    return error_body(
        f"Missing required parameter: '{param}'.",
        "invalid_request_error",
        param=param,
        code="missing_required_parameter",
    )


def default_error_for_status(status: int, model: str = "gpt-4.1") -> JSON:
    """The body api.openai.com sends with a given error status."""
    if status == 400:
        return error_body("Invalid request.", "invalid_request_error")
    if status == 401:
        return invalid_api_key("sk-wrong-key-0000")
    if status == 403:
        return error_body(
            "Project does not have access to this model.",
            "invalid_request_error",
            code="model_not_found",
        )
    if status == 404:
        return model_not_found(model)
    if status == 429:
        return error_body(
            f"Rate limit reached for {model} in organization org-fake on requests per min "
            "(RPM): Limit 500, Used 500, Requested 1. Please try again in 120ms. Visit "
            "https://platform.openai.com/account/rate-limits to learn more.",
            "requests",
            param=None,
            code="rate_limit_exceeded",
        )
    if status == 503:
        return error_body("The server is overloaded or not ready yet.", "server_error")
    return error_body(
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
    )

"""The simulator's answers in Gemini's wire format (`models/{model}:generateContent`,
`:streamGenerateContent?alt=sse`, `:countTokens`, `:embedContent`,
`:batchEmbedContents`): JSON and SSE chunks framed as Google frames them (CRLF), usage
in `usageMetadata` with thinking tokens (unless `thinkingBudget` is 0) and cached tokens
(when the request names `cachedContent`), a `functionCall` part when the request
requires a function (`functionCallingConfig.mode: ANY`), and Google's error bodies.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping
from typing import Any, Final

import orjson

from gateway.dialects.gemini.errors import error_bytes
from gateway.dialects.gemini.request import estimate_prompt_tokens

_WORDS_PER_CHUNK: Final = 4
_EMBEDDING_DIMS: Final = 256
THOUGHTS_PER_WORD: Final = 2  # simulated thinking: two thought tokens per answer word

JSON = dict[str, Any]


def action(path: str) -> str | None:
    """The method a Gemini path calls (`generateContent`, ...), or None for another API's."""
    if "/models/" not in path:
        return None
    tail = path.rpartition("/models/")[2]
    _name, sep, rest = tail.partition(":")
    return rest.partition("?")[0] if sep else None


def thinks(body: Mapping[str, Any]) -> bool:
    config = body.get("generationConfig")
    thinking = config.get("thinkingConfig") if isinstance(config, dict) else None
    return not (isinstance(thinking, dict) and thinking.get("thinkingBudget") == 0)


def max_output(body: Mapping[str, Any]) -> int | None:
    config = body.get("generationConfig")
    limit = config.get("maxOutputTokens") if isinstance(config, dict) else None
    return limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else None


def forced_call(body: Mapping[str, Any]) -> JSON | None:
    """The functionCall part for a request that requires a function (mode ANY)."""
    config = body.get("toolConfig")
    calling = config.get("functionCallingConfig") if isinstance(config, dict) else None
    if not isinstance(calling, dict) or calling.get("mode") != "ANY":
        return None
    declarations = [d for tool in body.get("tools") or () if isinstance(tool, dict)
                    for d in tool.get("functionDeclarations") or () if isinstance(d, dict)]
    allowed = calling.get("allowedFunctionNames")
    if isinstance(allowed, list) and allowed:
        declarations = [d for d in declarations if d.get("name") in allowed] or declarations
    if not declarations:
        return None
    declaration = declarations[0]
    schema = declaration.get("parameters") or declaration.get("parametersJsonSchema")
    properties = schema.get("properties") if isinstance(schema, dict) else None
    required = schema.get("required") if isinstance(schema, dict) else None
    args = {str(name): _sample(properties.get(name) if isinstance(properties, dict) else None)
            for name in (required if isinstance(required, list) else [])}
    return {"functionCall": {"name": declaration.get("name", ""), "args": args}}


def _sample(schema: Any) -> Any:
    kind = str(schema.get("type", "")).lower() if isinstance(schema, dict) else ""
    return {"integer": 1, "number": 1.5, "boolean": True, "array": [], "object": {}}.get(
        kind, "simulated")


def usage(body: Mapping[str, Any], output: int) -> JSON:
    prompt = estimate_prompt_tokens(body)
    thoughts = output * THOUGHTS_PER_WORD if thinks(body) else 0
    metadata: JSON = {"promptTokenCount": prompt, "candidatesTokenCount": output,
                      "totalTokenCount": prompt + output + thoughts,
                      "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}]}
    if body.get("cachedContent"):
        cached = max(0, prompt - 4)
        metadata["cachedContentTokenCount"] = cached
        metadata["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": cached}]
    if thoughts:
        metadata["thoughtsTokenCount"] = thoughts
    return metadata


def answer(body: Mapping[str, Any], model: str, words: list[str], cut: bool) -> JSON:
    """A whole GenerateContentResponse."""
    call = forced_call(body)
    part: JSON = call if call is not None else {"text": " ".join(words)}
    return {
        "candidates": [{"content": {"parts": [part], "role": "model"},
                        "finishReason": "MAX_TOKENS" if cut and call is None else "STOP",
                        "index": 0}],
        "usageMetadata": usage(body, len(words)),
        "modelVersion": model,
        "responseId": uuid.uuid4().hex[:22],
    }


def stream(whole: JSON) -> list[bytes]:
    """A whole answer as the API streams it: text in chunks (a function call whole), each
    with the counts so far, the last with the finish reason and the final counts."""
    candidate = whole["candidates"][0]
    part = candidate["content"]["parts"][0]
    final = whole["usageMetadata"]
    pieces: list[JSON] = [part]
    if "text" in part:
        words = part["text"].split(" ")
        pieces = [{"text": (" " if i else "") + " ".join(words[i:i + _WORDS_PER_CHUNK])}
                  for i in range(0, len(words), _WORDS_PER_CHUNK)]
    chunks: list[bytes] = []
    sent = 0
    for index, piece in enumerate(pieces):
        last = index == len(pieces) - 1
        sent += len(str(piece.get("text", "")).split()) or 1
        metadata = dict(final) if last else {
            "promptTokenCount": final["promptTokenCount"],
            "candidatesTokenCount": min(sent, final["candidatesTokenCount"]),
            "totalTokenCount": final["promptTokenCount"] + sent}
        chunk_candidate: JSON = {"content": {"parts": [piece], "role": "model"}, "index": 0}
        if last:
            chunk_candidate["finishReason"] = candidate["finishReason"]
        chunk = {"candidates": [chunk_candidate], "usageMetadata": metadata,
                 "modelVersion": whole["modelVersion"], "responseId": whole["responseId"]}
        chunks.append(b"data: " + orjson.dumps(chunk) + b"\r\n\r\n")
    return chunks


def count_tokens(body: Mapping[str, Any]) -> bytes:
    tokens = estimate_prompt_tokens(body)
    return orjson.dumps({"totalTokens": tokens,
                         "promptTokensDetails": [{"modality": "TEXT", "tokenCount": tokens}]})


def _vector(request: Any) -> list[float]:
    """A vector seeded by the content, as long as `outputDimensionality` asks (as the API
    cuts its vectors)."""
    request = request if isinstance(request, dict) else {}
    size = request.get("outputDimensionality")
    size = size if isinstance(size, int) and 0 < size < _EMBEDDING_DIMS else _EMBEDDING_DIMS
    rng = random.Random(orjson.dumps(request.get("content")))
    return [rng.uniform(-1, 1) for _ in range(size)]


def embed(body: Mapping[str, Any], batch: bool) -> bytes:
    if batch:
        requests = body.get("requests") or []
        return orjson.dumps({"embeddings": [{"values": _vector(r)} for r in requests]})
    return orjson.dumps({"embedding": {"values": _vector(body)}})


def error(status: int) -> bytes:
    return error_bytes(status, f"Simulated upstream error {status}.")

"""Reading a Gemini request: the model from the URL (`/v1beta/models/{model}:generateContent`),
validation of what the gateway relies on (`contents`), the span attributes and the prompt
estimate. Everything else passes to the upstream untouched.

Messages follow Google's own wording where it has one and are raised as the gateway's
`InvalidRequest`, which the edge shapes as Google's `INVALID_ARGUMENT`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

from gateway.dialects.bodies import bounded_count, json_object, numbers_into, string_list
from gateway.errors import InvalidRequest
from gateway.telemetry import names as n
from gateway.usage import estimate_text_tokens

# Rough sizes for parts whose text is not in the request (Gemini bills an image at 258
# tokens per tile; files by their length, unknown here).
_MEDIA_TOKENS: Final = 258


def parse_json(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object, or InvalidRequest."""
    body = json_object(raw, "Invalid JSON payload received. The request body is empty.",
                       "Invalid JSON payload received. The body is not valid JSON.",
                       "Invalid JSON payload received. The body must be a JSON object.")
    json_names(body)
    return body


# Google's JSON parser takes a field by its proto name (`max_output_tokens`) as well as its
# JSON name (`maxOutputTokens`), and the SDK sends some nested ones so (`thinking_budget`):
# the gateway reads the JSON names, so these are renamed once, as the body is parsed.
_PROTO_NAMES: Final = frozenset({
    "generation_config", "system_instruction", "tool_config", "function_calling_config",
    "allowed_function_names", "function_declarations", "max_output_tokens", "stop_sequences",
    "top_p", "top_k", "candidate_count", "response_mime_type", "response_schema",
    "response_json_schema", "thinking_config", "thinking_budget", "include_thoughts",
    "presence_penalty", "frequency_penalty", "inline_data", "mime_type", "function_call",
    "function_response", "parameters_json_schema", "cached_content", "safety_settings",
    "file_data", "generate_content_request", "task_type", "output_dimensionality",
    "response_modalities", "thinking_level",
})
# Values that are the client's own data (arguments, results, schemas): never renamed.
_OPAQUE: Final = frozenset({"args", "response", "parameters", "parametersJsonSchema",
                            "responseSchema", "responseJsonSchema"})


def json_names(value: Any) -> Any:
    """`value` with the proto field names above renamed to their JSON names, in place."""
    if isinstance(value, dict):
        for key in [k for k in value if k in _PROTO_NAMES]:
            head, *rest = key.split("_")
            value.setdefault(head + "".join(w.title() for w in rest), value.pop(key))
        for key, item in value.items():
            if key not in _OPAQUE and isinstance(item, dict | list):
                json_names(item)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list):
                json_names(item)
    return value


def model_of(path_model: str) -> str:
    """The model named in the URL (`models/` is already the route's; a tuned model's id
    keeps its own prefix)."""
    if not path_model or not path_model.isprintable():
        raise InvalidRequest("The model name in the URL is empty or not printable.",
                             param="model")
    return path_model


def check_generate(body: Mapping[str, Any], max_tokens_limit: int) -> int | None:
    """Validate a generateContent request (contents, generationConfig's maxOutputTokens up
    to the gateway's limit); its maxOutputTokens when it sets one."""
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise InvalidRequest("* GenerateContentRequest.contents: contents is not specified",
                             param="contents")
    for index, content in enumerate(contents):
        if not isinstance(content, dict) or not isinstance(content.get("parts"), list):
            raise InvalidRequest(f"* GenerateContentRequest.contents[{index}].parts: "
                                 "contents.parts must not be empty.", param="contents")
    config = body.get("generationConfig")
    if config is None:
        return None
    if not isinstance(config, dict):
        raise InvalidRequest("Invalid JSON payload received. generationConfig must be an object.",
                             param="generationConfig")
    limit = config.get("maxOutputTokens")
    if limit is None:
        return None
    where = "* GenerateContentRequest.generation_config.max_output_tokens"
    return bounded_count(limit, max_tokens_limit, "generationConfig",
                         f"{where}: must be a positive integer",
                         f"{where}: must be at most {max_tokens_limit}")


def check_count_tokens(body: Mapping[str, Any]) -> None:
    """countTokens takes `contents` or a whole `generateContentRequest`."""
    inner = body.get("generateContentRequest")
    if isinstance(inner, dict):
        check_generate(inner, 1 << 62)
    elif body.get("contents") is not None:
        check_generate(body, 1 << 62)


def check_embed(body: Mapping[str, Any], batch: bool) -> None:
    """embedContent takes one `content`; batchEmbedContents a list of such `requests`."""
    if batch:
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests or not all(
                isinstance(r, dict) and isinstance(r.get("content"), dict) for r in requests):
            raise InvalidRequest("* BatchEmbedContentsRequest.requests: each request needs a "
                                 "content", param="requests")
    elif not isinstance(body.get("content"), dict):
        raise InvalidRequest("* EmbedContentRequest.content: content is not specified",
                             param="content")


_NUMERIC: Final = (
    ("temperature", n.GEN_AI_REQUEST_TEMPERATURE),
    ("topP", n.GEN_AI_REQUEST_TOP_P),
    ("topK", n.GEN_AI_REQUEST_TOP_K),
    ("presencePenalty", n.GEN_AI_REQUEST_PRESENCE_PENALTY),
    ("frequencyPenalty", n.GEN_AI_REQUEST_FREQUENCY_PENALTY),
    ("seed", n.GEN_AI_REQUEST_SEED),
)


def span_attributes(body: Mapping[str, Any], stream: bool) -> dict[str, Any]:
    """The gen_ai request attributes of a generateContent request's CLIENT span."""
    attrs: dict[str, Any] = {}
    config = body.get("generationConfig")
    if isinstance(config, dict):
        limit = config.get("maxOutputTokens")
        if isinstance(limit, int) and not isinstance(limit, bool):
            attrs[n.GEN_AI_REQUEST_MAX_TOKENS] = limit
        numbers_into(attrs, config, _NUMERIC)
        stops = string_list(config.get("stopSequences"))
        if stops is not None:
            attrs[n.GEN_AI_REQUEST_STOP_SEQUENCES] = stops
        count = config.get("candidateCount")
        if isinstance(count, int) and not isinstance(count, bool) and count != 1:
            attrs[n.GEN_AI_REQUEST_CHOICE_COUNT] = count
        mime = config.get("responseMimeType")
        if mime == "application/json":
            attrs[n.GEN_AI_OUTPUT_TYPE] = "json"
        elif mime == "text/plain":
            attrs[n.GEN_AI_OUTPUT_TYPE] = "text"
    if stream:
        attrs[n.GEN_AI_REQUEST_STREAM] = True
    return attrs


def estimate_prompt_tokens(body: Mapping[str, Any]) -> int:
    """Rough input tokens of a Gemini request: system instruction, contents and tools
    (of a countTokens request's inner request, or of embedding requests)."""
    inner = body.get("generateContentRequest")
    if isinstance(inner, dict):
        body = inner
    total = _content_tokens(body.get("systemInstruction"))
    contents = body.get("contents")
    if isinstance(contents, list):
        for content in contents:
            total += 4 + _content_tokens(content)
    total += _content_tokens(body.get("content"))  # embedContent
    requests = body.get("requests")  # batchEmbedContents
    if isinstance(requests, list):
        for request in requests:
            if isinstance(request, dict):
                total += _content_tokens(request.get("content"))
    tools = body.get("tools")
    if isinstance(tools, list) and tools:
        total += estimate_text_tokens(orjson.dumps(tools).decode())
    return max(1, total)


def _content_tokens(content: Any) -> int:
    if not isinstance(content, dict):
        return 0
    parts = content.get("parts")
    if not isinstance(parts, list):
        return 0
    total = 0
    for part in parts:
        if not isinstance(part, dict):
            continue
        text = part.get("text")
        if isinstance(text, str):
            total += estimate_text_tokens(text)
        elif "inlineData" in part or "fileData" in part:
            total += _MEDIA_TOKENS
        elif "functionCall" in part or "functionResponse" in part:
            total += estimate_text_tokens(orjson.dumps(part).decode())
    return total

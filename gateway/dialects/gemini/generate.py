"""Gemini's generativelanguage API as dialects of the request path: `generateContent`
(JSON), `streamGenerateContent?alt=sse`, `countTokens`, `embedContent` and
`batchEmbedContents`, each served under `/v1beta/models/{model}:...` and `/v1/...`
(the `google-genai` SDK's default version with a custom base URL).

The model is in the URL, not the body (`parse_routed`), so the upstream's path is the
call's own too (`upstream_route`); a native upstream is always called on `/v1beta`,
which accepts every `/v1` request. The body goes upstream re-serialised as parsed.
Usage is `usageMetadata`; errors take Google's shape, so the SDK raises its own
`ClientError` / `ServerError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

import orjson

from gateway.dialects.base import ChunkTimer, ClientRequest, Reading, python_class
from gateway.dialects.gemini import errors as wire_errors
from gateway.dialects.gemini import request as wire
from gateway.dialects.gemini.answer import response_attributes, response_model, texts, usage_from
from gateway.dialects.gemini.stream import GeminiWatcher, event_error
from gateway.errors import GatewayError, InvalidRequest
from gateway.limits import DEFAULT_LIMITS, RequestLimits
from gateway.telemetry import content
from gateway.telemetry import names as n
from gateway.usage import Usage, estimate_text_tokens

NAME: Final = "gemini.generate_content"
STREAM: Final = "gemini.stream_generate_content"
COUNT_TOKENS: Final = "gemini.count_tokens"
EMBED: Final = "gemini.embed_content"
BATCH_EMBED: Final = "gemini.batch_embed_contents"
# The upstream response headers Google's clients read.
PASS_HEADERS: Final = ("retry-after",)
# Where a Gemini client may put its key instead of `x-goog-api-key`: the `key` query
# parameter (the edge moves it into that header before authenticating; never logged).
QUERY_KEY: Final = ("key", "x-goog-api-key")


def _routes(action: str) -> tuple[str, ...]:
    return (f"/v1beta/models/{{model}}:{action}", f"/v1/models/{{model}}:{action}")


def _upstream(action: str) -> str:
    return f"/v1beta/models/{{model}}:{action}"


def upstream_route(template: str, upstream_model: str) -> str:
    """`template`'s path for one model (its id quoted as a path segment)."""
    return template.replace("{model}", quote(upstream_model, safe=""), 1)


@python_class
class GeminiGenerate:
    """`models/{model}:generateContent`, answered as one JSON body. The dialects of this
    module subclass it, and the translations read their paths on the class."""

    name: str = NAME
    operation: str = n.OP_GENERATE_CONTENT
    routes: tuple[str, ...] = _routes("generateContent")
    upstream_path: str = _upstream("generateContent")
    pass_headers: tuple[str, ...] = PASS_HEADERS
    forward_headers: tuple[str, ...] = ()
    query_key: tuple[str, str] = QUERY_KEY
    streams: bool = False

    def __init__(self, limits: RequestLimits = DEFAULT_LIMITS) -> None:
        self.limits = limits  # the bound on maxOutputTokens (`limits:` in the config)

    def parse(self, raw: bytes) -> ClientRequest:
        raise InvalidRequest("A Gemini request names its model in the URL: "
                             "POST /v1beta/models/{model}:generateContent.")

    def parse_routed(self, raw: bytes, path: Mapping[str, str],
                     query: Mapping[str, str]) -> ClientRequest:
        """The canonical call from the body and the route's `{model}` (and query)."""
        model = wire.model_of(path.get("model", ""))
        body = wire.parse_json(raw)
        max_tokens = self.check(body, query)
        return ClientRequest(self, body, model, stream=self.streams, max_tokens=max_tokens,
                             raw=raw)

    def check(self, body: dict[str, Any], query: Mapping[str, str]) -> int | None:
        return wire.check_generate(body, self.limits.max_tokens)

    def upstream_route(self, request: ClientRequest, upstream_model: str) -> str:
        return upstream_route(self.upstream_path, upstream_model)

    def estimate_prompt(self, body: dict[str, Any]) -> int:
        return wire.estimate_prompt_tokens(body)

    def request_attributes(self, request: ClientRequest, capture: bool) -> dict[str, Any]:
        attrs = wire.span_attributes(request.body, request.stream)
        if capture:
            attrs.update(captured_input(request.body))
        return attrs

    def upstream_body(self, request: ClientRequest, upstream_model: str
                      ) -> tuple[dict[str, Any], bytes | None]:
        return request.body, None

    def read_answer(self, request: ClientRequest, payload: dict[str, Any], served: str,
                    rename: bool, capture: bool) -> Reading:
        model = response_model(payload)
        body = None
        if rename and model is not None:
            payload["modelVersion"] = served
            body = orjson.dumps(payload)
        reading = Reading(usage_from(payload.get("usageMetadata")), model,
                          response_attributes(payload), body)
        if reading.usage is None or capture:
            found = texts(payload)
            reading.output_tokens = sum(estimate_text_tokens(t) for t in found.values())
            if capture and found:
                reasons = reading.attributes.get(n.GEN_AI_RESPONSE_FINISH_REASONS) or [""]
                reading.output_messages = content.output_messages(
                    found, dict.fromkeys(found, str(reasons[0])))
        return reading

    def watch(self, request: ClientRequest, served: str, rename: bool, timer: ChunkTimer,
              capture: bool) -> GeminiWatcher:
        return GeminiWatcher(served if rename else None, timer, capture)

    def event_error(self, data: bytes) -> str | None:
        return event_error(data)

    def error_body(self, error: GatewayError) -> bytes:
        return wire_errors.from_gateway(error)

    def upstream_error(self, status: int, body: bytes) -> bytes:
        return wire_errors.upstream_error(status, body)

    def stream_error(self, message: str, code: str) -> bytes:
        return wire_errors.stream_error_event(_stream_error_code(code), message)


@python_class
class GeminiStream(GeminiGenerate):
    """`models/{model}:streamGenerateContent?alt=sse`: the answer as SSE chunks."""

    name: str = STREAM
    routes: tuple[str, ...] = _routes("streamGenerateContent")
    upstream_path: str = _upstream("streamGenerateContent") + "?alt=sse"
    streams: bool = True

    def check(self, body: dict[str, Any], query: Mapping[str, str]) -> int | None:
        if query.get("alt") != "sse":
            raise InvalidRequest("The gateway streams Gemini answers as server-sent events "
                                 "only: add ?alt=sse to the URL.", param="alt")
        return wire.check_generate(body, self.limits.max_tokens)


@python_class
class GeminiCountTokens(GeminiGenerate):
    """`models/{model}:countTokens`: forwarded to a native upstream (answered from the
    gateway's estimate when the model's provider is not one). Costs nothing."""

    name: str = COUNT_TOKENS
    operation: str = "count_tokens"
    routes: tuple[str, ...] = _routes("countTokens")
    upstream_path: str = _upstream("countTokens")

    def check(self, body: dict[str, Any], query: Mapping[str, str]) -> int | None:
        wire.check_count_tokens(body)
        return None

    def request_attributes(self, request: ClientRequest, capture: bool) -> dict[str, Any]:
        return {}

    def read_answer(self, request: ClientRequest, payload: dict[str, Any], served: str,
                    rename: bool, capture: bool) -> Reading:
        return Reading(Usage(), None, {})

    def local_answer(self, request: ClientRequest) -> bytes:
        return orjson.dumps({"totalTokens": request.prompt_tokens})


@python_class
class GeminiEmbed(GeminiGenerate):
    """`models/{model}:embedContent`: one embedding. The Gemini API reports no usage for
    embeddings, so the input is the gateway's estimate."""

    name: str = EMBED
    operation: str = n.OP_EMBEDDINGS
    routes: tuple[str, ...] = _routes("embedContent")
    upstream_path: str = _upstream("embedContent")
    batch: bool = False

    def check(self, body: dict[str, Any], query: Mapping[str, str]) -> int | None:
        wire.check_embed(body, self.batch)
        return None

    def request_attributes(self, request: ClientRequest, capture: bool) -> dict[str, Any]:
        return {}

    def read_answer(self, request: ClientRequest, payload: dict[str, Any], served: str,
                    rename: bool, capture: bool) -> Reading:
        return Reading(usage_from(payload.get("usageMetadata")), None, {})


@python_class
class GeminiBatchEmbed(GeminiEmbed):
    """`models/{model}:batchEmbedContents` (what the SDK's `embed_content` calls). Each
    request names its model too, and the API wants the URL's: the upstream's id."""

    name: str = BATCH_EMBED
    routes: tuple[str, ...] = _routes("batchEmbedContents")
    upstream_path: str = _upstream("batchEmbedContents")
    batch: bool = True

    def upstream_body(self, request: ClientRequest, upstream_model: str
                      ) -> tuple[dict[str, Any], bytes | None]:
        if upstream_model == request.model:
            return request.body, None
        named = f"models/{upstream_model}"
        body = dict(request.body)
        body["requests"] = [{**r, "model": named} if "model" in r else r
                            for r in body["requests"]]
        return body, None


def _stream_error_code(code: str) -> int:
    if code in (n.ERROR_TIMEOUT, "first_token_timeout"):
        return 504
    if code in ("429", "rate_limit_exceeded", "RESOURCE_EXHAUSTED"):
        return 429
    return 500


def captured_input(body: Mapping[str, Any]) -> dict[str, Any]:
    """gen_ai.input.messages and gen_ai.system_instructions of a Gemini request."""
    messages: list[dict[str, Any]] = []
    system = body.get("systemInstruction")
    if isinstance(system, dict):
        messages.append({"role": "system", "content": _text(system)})
    for item in body.get("contents") or ():
        if isinstance(item, dict):
            role = "assistant" if item.get("role") == "model" else "user"
            messages.append({"role": role, "content": _text(item)})
    captured, instructions = content.input_messages(messages)
    attrs: dict[str, Any] = {n.GEN_AI_INPUT_MESSAGES: captured}
    if instructions is not None:
        attrs[n.GEN_AI_SYSTEM_INSTRUCTIONS] = instructions
    return attrs


def _text(item: Mapping[str, Any]) -> str:
    parts = item.get("parts")
    return "".join(str(p.get("text", "")) for p in parts or () if isinstance(p, dict))

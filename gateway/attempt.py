"""One upstream attempt: send the rewritten request, record it as a GenAI CLIENT
span, and turn the answer into a client response (JSON, or an SSE relay).

`prepare` runs everything before commit (send, then wait for the whole JSON body
or the first SSE event) under one `Deadline` (`asyncio.timeout_at` on coarse
timers) driven by the attempt's deadlines, and fails by raising `AttemptFailed`
so the dispatcher may retry or fall back. `respond`/`stream` commit: once the first byte is sent, a failure
ends the stream with an SSE error event instead.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from gateway import errors
from gateway.call import AttemptResult, Call
from gateway.config import GatewayConfig, ModelConfig
from gateway.pricing import cost_usd
from gateway.providers.base import Provider, UpstreamRequest, UpstreamResponse
from gateway.redact import scrub
from gateway.relay import StreamRelay
from gateway.request import span_attributes
from gateway.resilience.deadline import AttemptDeadlines
from gateway.resilience.outcome import classify
from gateway.sse import event_data
from gateway.telemetry import content, tracecontext
from gateway.telemetry import names as n
from gateway.telemetry.recorder import AttemptRecorder, response_attributes
from gateway.telemetry.setup import Telemetry
from gateway.telemetry.tracecontext import trace_headers
from gateway.timers import Deadline
from gateway.usage import Usage, estimate_prompt_tokens, estimate_text_tokens, from_openai

_PATHS = {n.OP_CHAT: "/chat/completions", n.OP_EMBEDDINGS: "/embeddings"}
_PASS_HEADERS = ("openai-processing-ms", "openai-version", "x-ratelimit-limit-requests",
                 "x-ratelimit-limit-tokens", "x-ratelimit-remaining-requests",
                 "x-ratelimit-remaining-tokens", "x-ratelimit-reset-requests",
                 "x-ratelimit-reset-tokens")
_RETRY_HEADERS = ("retry-after", "retry-after-ms")
_SSE_BOUNDARY = re.compile(rb"\r\n\r\n|\n\n|\r\r")  # as gateway.sse splits events


class AttemptFailed(Exception):
    """An attempt that failed before anything was sent to the client."""

    def __init__(self, error: errors.GatewayError, result: AttemptResult) -> None:
        super().__init__(error.message)
        self.error = error
        self.result = result
        self.reason = classify(error)

    @property
    def retryable(self) -> bool:
        """Worth another attempt or a fallback (transport failures, timeouts, 5xx, 429)."""
        return self.reason is not None


@dataclass(slots=True, init=False)
class Prepared:
    """An attempt whose answer has started, with nothing sent to the client yet."""

    model: ModelConfig
    provider: Provider
    recorder: AttemptRecorder
    response: UpstreamResponse | None
    chunks: AsyncIterator[bytes] | None
    first: bytes  # streams: the bytes up to the first data event
    body: bytes | None  # JSON answers: the whole body
    first_seen: bool
    result: AttemptResult | None  # streams: set once the relay ended, however it ended

    def __init__(self, model: ModelConfig, provider: Provider,
                 recorder: AttemptRecorder) -> None:  # see gateway.call.AttemptResult
        self.model = model
        self.provider = provider
        self.recorder = recorder
        self.response = None
        self.chunks = None
        self.first = b""
        self.body = None
        self.first_seen = False
        self.result = None

    def close(self) -> None:
        if self.response is not None:
            self.response.close()


def status_error_type(status: int) -> str:
    return str(status)


class AttemptRunner:
    """Runs attempts against the configured providers."""

    def __init__(
        self,
        config: GatewayConfig,
        providers: Mapping[str, Provider],
        telemetry: Telemetry,
    ) -> None:
        self.config = config
        self.providers = providers
        self.telemetry = telemetry
        self._secrets = [
            p.api_key.value for p in config.providers.values() if p.api_key is not None
        ]

    def provider_for(self, model: ModelConfig) -> Provider:
        return self.providers[self.config.provider_for(model).name]

    def upstream_request(self, call: Call, model: ModelConfig, provider: Provider) -> UpstreamRequest:
        client = call.client
        raw: bytes | None = None
        if not client.stream and model.upstream_model == client.model and client.raw:
            body = client.body  # nothing to rewrite: forward the client's own bytes
            raw = client.raw
        else:
            body = dict(client.body)
            body["model"] = model.upstream_model
        if call.client.stream:
            options = body.get("stream_options")
            options = dict(options) if isinstance(options, dict) else {}
            options["include_usage"] = True
            body["stream_options"] = options
        directives: dict[str, str] = {}
        if provider.config.kind == "mock":  # only the simulator reads them
            directives = {k: v for k, v in call.headers.items() if k.startswith("x-mock-")}
        return UpstreamRequest(
            operation=call.operation,
            path=_PATHS[call.operation],
            body=body,
            stream=call.client.stream,
            model=model,
            headers={"x-request-id": call.request_id},
            directives=directives,
            raw=raw,
        )

    def start_recorder(self, call: Call, model: ModelConfig, provider: Provider,
                       attempt_number: int) -> AttemptRecorder:
        extra: dict[str, Any] = {
            n.GATEWAY_KEY_ALIAS: call.principal.alias,
            n.GATEWAY_TEAM: call.principal.team,
            n.GATEWAY_MODEL_REQUESTED: call.model.name,
            n.GATEWAY_MODEL_SERVED: model.name,
            n.GATEWAY_REQUEST_ID: call.request_id,
            n.GATEWAY_ATTEMPT: attempt_number,
        }
        if call.fallback_reason is not None and model is not call.model:
            extra[n.GATEWAY_FALLBACK_REASON] = call.fallback_reason
        mode = self.telemetry.content
        if mode.on_span and call.operation == n.OP_CHAT:
            messages, system = content.input_messages(call.client.body.get("messages"))
            extra[n.GEN_AI_INPUT_MESSAGES] = messages
            if system is not None:
                extra[n.GEN_AI_SYSTEM_INSTRUCTIONS] = system
        return AttemptRecorder(
            self.telemetry,
            call.server_context,
            operation=call.operation,
            provider_name=provider.config.provider_name,
            model=model.name,
            server_address=provider.server_address,
            server_port=provider.server_port,
            request_attributes=span_attributes(call.client),
            extra_attributes=extra,
        )

    async def prepare(self, call: Call, model: ModelConfig, attempt_number: int,
                      deadlines: AttemptDeadlines) -> Prepared:
        """Send the attempt and wait until its answer starts (the whole JSON body, or the
        first SSE event), all before anything reaches the client; raises AttemptFailed."""
        provider = self.provider_for(model)
        recorder = self.start_recorder(call, model, provider, attempt_number)
        if not provider.config.usable:
            variable = provider.config.api_key_missing
            raise self.fail(call, model, provider, recorder, errors.ProviderNotConfigured(
                f"provider '{provider.config.name}' for model '{model.name}' is not configured: "
                f"its API key variable {variable} is not set"))
        request = self.upstream_request(call, model, provider)
        request.context = recorder.context
        tracecontext.inject(request.headers, recorder.span, recorder.context)
        prepared = Prepared(model, provider, recorder)
        started = time.perf_counter()
        deadline = Deadline(deadlines.start)
        try:
            await self._answer_start(call, model, request, prepared, deadline, deadlines)
        except BaseException as caught:
            exc = deadline.leave(caught) or caught  # TimeoutError when the deadline cut it short
            prepared.close()
            await _close_chunks(prepared.chunks)
            error = self._prepare_error(exc, model, deadline, deadlines, prepared.first_seen)
            if error is None:  # cancelled: the client left or the server is stopping
                recorder.finish(response_model=None, usage=None, cost=None,
                                error_type=n.ERROR_CLIENT_DISCONNECT,
                                error_message="the request was cancelled")
                raise
            raise self.fail(call, model, provider, recorder, error) from None
        else:
            deadline.leave(None)
        finally:
            call.upstream_wait_s += time.perf_counter() - started
        return prepared

    async def _answer_start(self, call: Call, model: ModelConfig, request: UpstreamRequest,
                            prepared: Prepared, timer: Deadline,
                            deadlines: AttemptDeadlines) -> None:
        response = await prepared.provider.send(request)
        prepared.response = response
        if response.status >= 400:
            raw = await response.read()
            raise self._status_error(response, raw)
        if call.client.stream:
            if "text/event-stream" not in response.headers.get("content-type", ""):
                raise errors.UpstreamBadResponse(
                    f"the upstream for model '{model.name}' did not answer with an event stream")
            prepared.chunks = response.iter_chunks()
            prepared.first = await _first_event(prepared.chunks, model)
            prepared.first_seen = True
        else:
            if deadlines.first_token_at is None:
                prepared.body = await response.read()
            else:
                prepared.body = await self._read_timed(response, prepared, timer, deadlines)
            response.close()  # already released to the pool once read; this only makes sure

    async def _read_timed(self, response: UpstreamResponse, prepared: Prepared,
                          timer: Deadline, deadlines: AttemptDeadlines) -> bytes:
        """Read a JSON body chunk by chunk: the first byte under the first-token
        deadline, the rest under the attempt's own."""
        chunks = response.iter_chunks()
        prepared.chunks = chunks
        parts: list[bytes] = []
        async for chunk in chunks:
            if not prepared.first_seen:
                prepared.first_seen = True
                timer.reschedule(deadlines.answer_at)
            parts.append(chunk)
        return b"".join(parts)

    def _prepare_error(self, exc: BaseException, model: ModelConfig, timeout: Deadline,
                       deadlines: AttemptDeadlines, first_seen: bool) -> errors.GatewayError | None:
        if isinstance(exc, Exception) and timeout.expired():
            return deadlines.expired(first_seen)
        if isinstance(exc, errors.GatewayError):
            return exc
        if isinstance(exc, Exception):  # aiohttp payload and transport errors
            return _transport_error(exc, model)
        return None

    def _status_error(self, response: UpstreamResponse, raw: bytes) -> errors.UpstreamStatus:
        body = scrub(raw, self._secrets)
        try:
            parsed = orjson.loads(body)
            shaped = isinstance(parsed, dict) and isinstance(parsed.get("error"), dict)
        except orjson.JSONDecodeError:
            shaped = False
        if not shaped:
            text = body[:500].decode("utf-8", "replace")
            body = errors.GatewayError(
                f"upstream answered {response.status}: {text}"
            ).body_bytes()
        headers = {name: value for name in _RETRY_HEADERS
                   if (value := response.headers.get(name)) is not None}
        return errors.UpstreamStatus(
            response.status, body, headers=headers, error_type=status_error_type(response.status)
        )

    def fail(self, call: Call, model: ModelConfig, provider: Provider, recorder: AttemptRecorder,
             error: errors.GatewayError) -> AttemptFailed:
        """Record a failed, uncommitted attempt and wrap its error."""
        recorder.finish(response_model=None, usage=None, cost=None,
                        error_type=error.error_type, error_message=error.message)
        result = AttemptResult(model=model, provider_name=provider.config.provider_name,
                               usage=None, cost=cost_usd(Usage(), model.price),
                               error_type=error.error_type,
                               status=getattr(error, "status", None))
        return AttemptFailed(error, result)

    def response_headers(self, call: Call, model: ModelConfig,
                         upstream: Mapping[str, str]) -> dict[str, str]:
        headers = {name: value for name in _PASS_HEADERS if (value := upstream.get(name))}
        headers.update(call_headers(call))
        headers["x-gateway-model"] = model.name
        return headers

    def respond(self, call: Call, prepared: Prepared) -> tuple[web.Response, AttemptResult]:
        """Build the client's response from a whole JSON answer (still before commit)."""
        model, provider, recorder = prepared.model, prepared.provider, prepared.recorder
        response = prepared.response
        assert response is not None and prepared.body is not None
        raw = prepared.body
        try:
            payload = orjson.loads(raw)
            if not isinstance(payload, dict):
                raise ValueError
        except ValueError:
            raise self.fail(call, model, provider, recorder, errors.UpstreamBadResponse(
                f"the upstream for model '{model.name}' sent a body that is not JSON")) from None
        usage = from_openai(payload.get("usage"))
        if usage is None:
            usage = _estimate_json_usage(call, payload)
        cost = cost_usd(usage, model.price)
        response_model = payload.get("model")
        if model.upstream_model != model.name and isinstance(response_model, str):
            payload["model"] = model.name
            raw = orjson.dumps(payload)
        attrs = response_attributes(payload)
        choices = payload.get("choices")
        if isinstance(choices, list):
            reasons = [c.get("finish_reason") or "" for c in choices if isinstance(c, dict)]
            attrs[n.GEN_AI_RESPONSE_FINISH_REASONS] = reasons
            if self.telemetry.content.enabled:
                texts = {i: str((c.get("message") or {}).get("content") or "")
                         for i, c in enumerate(choices) if isinstance(c, dict)}
                finishes = dict(enumerate(reasons))
                _record_output(recorder, self.telemetry.content, texts, finishes)
        recorder.finish(
            response_model=response_model if isinstance(response_model, str) else None,
            usage=usage, cost=cost, response_attributes=attrs,
        )
        result = AttemptResult(model=model, provider_name=provider.config.provider_name,
                               usage=usage, cost=cost, status=response.status, committed=True)
        headers = self.response_headers(call, model, response.headers)
        headers["x-gateway-overhead-ms"] = f"{overhead_s(call) * 1000:.3f}"
        return web.Response(body=raw, status=response.status, headers=headers,
                            content_type="application/json"), result

    async def stream(self, call: Call, prepared: Prepared, http_request: web.Request
                     ) -> tuple[web.StreamResponse, AttemptResult]:
        """Commit to the client and relay the stream to its end."""
        model, recorder = prepared.model, prepared.recorder
        response, chunks = prepared.response, prepared.chunks
        assert response is not None and chunks is not None
        headers = self.response_headers(call, model, response.headers)
        headers["content-type"] = "text/event-stream; charset=utf-8"
        headers["cache-control"] = "no-cache"
        out = web.StreamResponse(status=200, headers=headers)
        relay = StreamRelay(
            call=call, model=model, recorder=recorder, capture=self.telemetry.content.enabled
        )
        try:
            await relay.run(http_request, out, response, chunks, prepared.first)
        finally:
            await _close_chunks(chunks)
            result = self._finish_stream(prepared, relay)
        return out, result

    def _finish_stream(self, prepared: Prepared, relay: StreamRelay) -> AttemptResult:
        model, recorder = prepared.model, prepared.recorder
        usage = relay.usage_or_estimate
        cost = cost_usd(usage, model.price)
        attrs = dict(relay.response_attributes)
        attrs[n.GATEWAY_STREAM_END] = relay.end
        if self.telemetry.content.enabled and relay.texts:
            _record_output(recorder, self.telemetry.content, relay.texts, relay.finish_reasons)
        recorder.finish(response_model=relay.response_model, usage=usage, cost=cost,
                        error_type=relay.error_type, error_message=relay.error_message,
                        response_attributes=attrs)
        prepared.result = AttemptResult(
            model=model, provider_name=prepared.provider.config.provider_name, usage=usage,
            cost=cost, error_type=relay.error_type, status=200, committed=True)
        return prepared.result


async def _first_event(chunks: AsyncIterator[bytes], model: ModelConfig) -> bytes:
    """Bytes up to and including the stream's first data event (comments and
    keep-alives alone do not count as a first token). An error reported as the
    first event fails the attempt while it can still fall back."""
    buffered = b""
    while True:
        try:
            chunk = await anext(chunks)
        except StopAsyncIteration:
            raise errors.UpstreamBadResponse(
                f"the upstream for model '{model.name}' closed the stream before any data"
            ) from None
        buffered += chunk
        data = _first_data(buffered)
        if data is not None:
            _raise_if_error(data, model)
            return buffered


def _first_data(buffered: bytes) -> bytes | None:
    """The data of the first complete event that has any, without splitting the rest."""
    start = 0
    while (boundary := _SSE_BOUNDARY.search(buffered, start)) is not None:
        data = event_data(buffered[start:boundary.start()])
        if data is not None:
            return data
        start = boundary.end()
    return None


def _raise_if_error(data: bytes, model: ModelConfig) -> None:
    if b'"error"' not in data:
        return
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError:
        return
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict) \
            and not payload.get("choices"):
        message = str(payload["error"].get("message") or "an error")[:300]
        raise errors.UpstreamBadResponse(
            f"the upstream for model '{model.name}' reported {message!r} before its first token")


async def _close_chunks(chunks: AsyncIterator[bytes] | None) -> None:
    """Finish an upstream body iterator now rather than in a finalizer task later."""
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()


def _transport_error(exc: BaseException, model: ModelConfig) -> errors.GatewayError:
    if isinstance(exc, TimeoutError):
        return errors.UpstreamTimeout(f"the upstream for model '{model.name}' stalled")
    return errors.UpstreamUnreachable(
        f"the connection to the upstream for model '{model.name}' failed: {type(exc).__name__}")


def _estimate_json_usage(call: Call, payload: Mapping[str, Any]) -> Usage:
    output = 0
    choices = payload.get("choices")
    if isinstance(choices, list):
        for choice in choices:
            message = choice.get("message") if isinstance(choice, dict) else None
            text = message.get("content") if isinstance(message, dict) else None
            if isinstance(text, str):
                output += estimate_text_tokens(text)
    return Usage(input=estimate_prompt_tokens(call.client.body), output=output, estimated=True)


def _record_output(recorder: AttemptRecorder, mode: content.ContentMode,
                   texts: Mapping[int, str], finishes: Mapping[int, str]) -> None:
    output = content.output_messages(texts, finishes)
    if mode.on_span:
        recorder.set_attributes({n.GEN_AI_OUTPUT_MESSAGES: output})
    if mode.as_event:
        recorder.add_event(n.GEN_AI_CONTENT_EVENT, {n.GEN_AI_OUTPUT_MESSAGES: output})


def call_headers(call: Call) -> dict[str, str]:
    """`x-request-id` and the W3C `traceresponse` of the server span."""
    return trace_headers(call.server_span, call.request_id)


def overhead_s(call: Call) -> float:
    return max(0.0, time.perf_counter() - call.started - call.upstream_wait_s)

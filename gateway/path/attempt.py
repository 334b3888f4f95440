"""One upstream attempt: send the call rewritten by its dialect, record it as a
GenAI CLIENT span, and hand up a framework-neutral answer (`path/answer.py`).

Everything before commit (send, then wait for the whole JSON body or the first
SSE event) runs under one `Deadline` (`asyncio.timeout_at` on coarse timers)
driven by the attempt's deadlines, and fails by raising `AttemptFailed` so the
chain may retry or fall back. A JSON answer comes back accounted for; a stream
comes back with its first event read, and `finish_stream` accounts for it once
the relay has run it to its end. This module never sees the client's HTTP
request or response, and never imports the chain above it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode

import orjson

from gateway import errors
from gateway.call import AttemptResult, Call
from gateway.clock import Clock, LoopClock
from gateway.config import GatewayConfig, ModelConfig, ProviderConfig
from gateway.dialects.base import Dialect, RoutesUpstream, SplitsUpstream
from gateway.fastpaths import BodyTooLarge, Deadline
from gateway.path.answer import EventStream, JsonAnswer
from gateway.pricing import cost_usd
from gateway.providers.base import Provider, UpstreamRequest, UpstreamResponse
from gateway.redact import Scrubber
from gateway.resilience.deadline import AttemptDeadlines
from gateway.resilience.outcome import classify
from gateway.telemetry import names as n
from gateway.telemetry import tracecontext
from gateway.telemetry.logs import within
from gateway.telemetry.recorder import AttemptRecorder
from gateway.telemetry.setup import Telemetry
from gateway.telemetry.vocabulary import BoundedNames, status_error_type
from gateway.translate.dialects import translation
from gateway.usage import Usage

_NO_COST = Decimal(0)  # a failed attempt's, with no usage
_RETRY_HEADERS = ("retry-after", "retry-after-ms")
_CLIENT_ENDS = frozenset((n.ERROR_CLIENT_DISCONNECT, n.ERROR_CANCELLED))  # not the upstream's doing
# A split call's parts in flight at once: enough that a long call takes a fraction of the
# sum of its parts' times, few enough that one call (2,048 inputs: 21 parts of 100) does
# not spend the upstream key's concurrent requests all at the same moment.
PARTS_AT_ONCE = 4
_log = logging.getLogger("gateway.upstream")


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
class _Started:
    """An attempt whose answer is arriving, with nothing sent to the client yet."""

    response: UpstreamResponse | None
    chunks: AsyncIterator[bytes] | None  # a JSON body read chunk by chunk, or a stream's
    stream: EventStream | None
    body: bytes | None  # JSON answers: the whole body
    first_seen: bool
    parts: list[dict[str, Any]] | None  # a split call's bodies (dialects.base.SplitsUpstream)

    def __init__(self) -> None:  # written out: see gateway.call.AttemptResult
        self.response = None
        self.chunks = None
        self.stream = None
        self.body = None
        self.first_seen = False
        self.parts = None


class ModelRoute:
    """What every attempt on a model reads of its config (a pydantic dataclass, whose
    properties run interpreted) and of its provider, worked out once per model."""

    __slots__ = ("key_missing", "mock", "provider", "provider_name", "renames", "server_address",
                 "server_port", "upstream", "upstream_id")

    def __init__(self, config: GatewayConfig, model: ModelConfig,
                 providers: Mapping[str, Provider]) -> None:
        # Its provider's config (`GatewayConfig.provider_for`), and the variable its API key
        # should come from when that is not set (else None).
        self.provider: ProviderConfig = config.provider_for(model)
        self.provider_name: str = self.provider.provider_name  # gen_ai.provider.name
        self.key_missing: str | None = self.provider.api_key_missing
        self.mock: bool = self.provider.kind == "mock"  # only the simulator reads x-mock-*
        # The provider that sends its attempts, and where it sends them (span attributes).
        self.upstream: Provider = providers[self.provider.name]
        self.server_address: str | None = self.upstream.server_address
        self.server_port: int | None = self.upstream.server_port
        # The id sent upstream ("" for a pattern entry: each id as the client asked).
        self.upstream_id: str = model.upstream_id("")
        self.renames: bool = model.renames


class AttemptRunner:
    """Runs attempts against the configured providers."""

    def __init__(
        self,
        config: GatewayConfig,
        providers: Mapping[str, Provider],
        telemetry: Telemetry,
        clock: Clock | None = None,
        scrubber: Scrubber | None = None,
    ) -> None:
        self.config = config
        self.providers = providers
        self.telemetry = telemetry
        self.clock: Clock = clock if clock is not None else LoopClock.running()
        self.scrubber = scrubber or Scrubber(
            secret for p in config.providers.values() for secret in p.secrets)
        # Upstream-reported model names become metric labels: bounded, and scrubbed once.
        self.response_models = BoundedNames(clean=self.scrubber.text)
        # model name -> its route: the config is frozen, so worked out once per model
        # instead of on every attempt.
        self._route_of: dict[str, ModelRoute] = {}

    def route(self, model: ModelConfig) -> ModelRoute:
        found = self._route_of.get(model.name)
        if found is None:
            found = self._route_of[model.name] = ModelRoute(self.config, model, self.providers)
        return found

    def provider_for(self, model: ModelConfig) -> Provider:
        return self.route(model).upstream

    def dialect_for(self, client: Dialect, provider: Provider) -> Dialect:
        """The client's dialect when the provider speaks it, else the translation that
        carries it to one the provider speaks (the chain checked there is one)."""
        if client.name in provider.dialects:
            return client
        translated = translation(client, provider.dialects)
        if translated is None:
            raise errors.DialectNotSupported(
                f"provider '{provider.config.name}' does not speak the {client.name} API")
        return translated

    def upstream_request(self, call: Call, model: ModelConfig, route: ModelRoute,
                         dialect: Dialect) -> UpstreamRequest:
        client = call.client
        upstream_id = route.upstream_id or client.model
        body, raw = dialect.upstream_body(client, upstream_id)
        directives: dict[str, str] = {}
        if route.mock:  # only the simulator reads them
            directives = {k: v for k, v in call.headers.items() if k.startswith("x-mock-")}
        headers = {"x-request-id": call.request_id}
        for name in dialect.forward_headers:
            value = call.headers.get(name)
            if value is not None:
                headers[name] = value
        query = ""
        if call.query:  # rare: clients of the OpenAI dialects send none
            query = forwarded_query(call.query, getattr(dialect, "forward_query", ()))
        path = dialect.upstream_path
        if "{" in path:  # the call's own path (see dialects.base.RoutesUpstream)
            path = cast(RoutesUpstream, dialect).upstream_route(client, upstream_id)
        return UpstreamRequest(
            operation=call.operation,
            path=path,
            body=body,
            stream=client.stream,
            model=model,
            headers=headers,
            directives=directives,
            raw=raw,
            query=query,
        )

    def start_recorder(self, call: Call, model: ModelConfig, route: ModelRoute,
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
        client = call.client
        content = call.content
        return AttemptRecorder(
            self.telemetry,
            call.server_context,
            operation=call.operation,
            provider_name=route.provider_name,
            model=model.name,
            server_address=route.server_address,
            server_port=route.server_port,
            request_attributes=client.dialect.request_attributes(client, content.enabled),
            extra_attributes=extra,
            content=content,
        )

    async def run(self, call: Call, model: ModelConfig, attempt_number: int,
                  deadlines: AttemptDeadlines) -> JsonAnswer | EventStream:
        """Send the attempt and wait until its answer starts (the whole JSON body, or the
        first SSE event), all before anything reaches the client; raises AttemptFailed."""
        route = self.route(model)
        provider = route.upstream
        variable = route.key_missing
        recorder = self.start_recorder(call, model, route, attempt_number)
        if variable is not None:  # the provider is not usable
            raise self.fail(call, model, provider, recorder, errors.ProviderNotConfigured(
                f"provider '{provider.config.name}' for model '{model.name}' is not configured: "
                f"its API key variable {variable} is not set"))
        try:  # a translation refuses what it cannot carry (a built-in tool, say)
            dialect = self.dialect_for(call.client.dialect, provider)
            request = self.upstream_request(call, model, route, dialect)
        except errors.GatewayError as refused:
            raise self.fail(call, model, provider, recorder, refused) from None
        request.context = recorder.context
        tracecontext.inject(request.headers, recorder.span, recorder.context)
        started = _Started()
        if dialect is not call.client.dialect and not call.client.stream:
            split = getattr(dialect, "upstream_parts", None)  # see SplitsUpstream
            if split is not None:
                started.parts = split(request.body)
        began = time.perf_counter()
        deadline = Deadline(deadlines.start, self.clock)
        try:
            await self._answer_start(call, dialect, model, provider, recorder, request, started,
                                     deadline, deadlines)
        except BaseException as caught:
            exc = deadline.leave(caught) or caught  # TimeoutError when the deadline cut it short
            await _close(started)
            error = self._prepare_error(exc, model, deadline, deadlines, started.first_seen)
            if error is None:  # cancelled: the client left or the server is stopping
                recorder.finish(response_model=None, usage=None, cost=None,
                                error_type=n.ERROR_CLIENT_DISCONNECT,
                                error_message="the request was cancelled")
                raise caught  # by name, not a bare raise after an await
            raise self.fail(call, model, provider, recorder, error) from None
        else:
            deadline.leave(None)
        finally:
            call.upstream_wait_s += time.perf_counter() - began
        if started.stream is not None:
            return started.stream
        response, body = started.response, started.body
        assert response is not None and body is not None
        return self._json_answer(call, dialect, model, provider, recorder, response, body)

    async def _answer_start(self, call: Call, dialect: Dialect, model: ModelConfig,
                            provider: Provider, recorder: AttemptRecorder,
                            request: UpstreamRequest, started: _Started, timer: Deadline,
                            deadlines: AttemptDeadlines) -> None:
        if started.parts is not None:
            await self._answer_parts(dialect, provider, request, started, timer, deadlines)
            return
        response = await provider.send(request)
        started.response = response
        if response.status >= 400:
            raw = await response.read()
            raise self._status_error(dialect, response, raw)
        if call.client.stream:
            if "text/event-stream" not in response.headers.get("content-type", ""):
                raise errors.UpstreamBadResponse(
                    f"the upstream for model '{model.name}' did not answer with an event stream")
            watcher = dialect.watch(call.client, model.name, self.route(model).renames,
                                    recorder, recorder.content.enabled)
            stream = EventStream(dialect, model, provider, recorder, response, watcher,
                                 provider.config.max_event_bytes, self.scrubber)
            started.chunks = stream.chunks
            await stream.first_event()
            started.first_seen = True
            started.stream = stream
        else:
            if deadlines.first_token_at is None:
                started.body = await response.read()  # capped by the provider
            else:
                started.body = await self._read_timed(response, started, timer, deadlines,
                                                      provider.config.max_response_bytes)
            response.close()  # already released to the pool once read; this only makes sure

    async def _answer_parts(self, dialect: Dialect, provider: Provider,
                            request: UpstreamRequest, started: _Started, timer: Deadline,
                            deadlines: AttemptDeadlines) -> None:
        """A split call: its parts sent in order, no more than PARTS_AT_ONCE of them in
        flight, the answers joined in order into `started.body`; the first part (in order)
        that fails fails the attempt, and the others are cancelled (the ones still waiting
        for their turn are never sent)."""
        bodies = started.parts or []
        turns = asyncio.Semaphore(PARTS_AT_ONCE)
        tasks = [asyncio.ensure_future(self._part(dialect, provider, _part_of(request, body),
                                                  started, timer, deadlines, turns))
                 for body in bodies]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            failures = [task.exception() for task in tasks
                        if task.done() and not task.cancelled()]
            for failure in failures:
                if failure is not None:
                    raise failure
        except BaseException as exc:  # a part failed, or the call was cancelled
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise exc  # by name, not a bare raise after an await: see docs/architecture.md
        answers = [task.result() for task in tasks]
        started.response = answers[0][0]
        joined = cast(SplitsUpstream, dialect).joined([payload for _, payload in answers])
        started.body = orjson.dumps(joined)

    async def _part(self, dialect: Dialect, provider: Provider, request: UpstreamRequest,
                    started: _Started, timer: Deadline, deadlines: AttemptDeadlines,
                    turns: asyncio.Semaphore) -> tuple[UpstreamResponse, dict[str, Any]]:
        """One part of a split call, sent once its turn comes: its answer, read whole and
        parsed."""
        async with turns:
            response = await provider.send(request)
            if not started.first_seen:  # the upstream is answering: the first-token rule is met
                started.first_seen = True
                if deadlines.first_token_at is not None and not timer.expired():
                    timer.reschedule(deadlines.answer_at)
            try:
                raw = await response.read()  # capped by the provider
            finally:
                response.close()
        if response.status >= 400:
            raise self._status_error(dialect, response, raw)
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            payload = None
        if not isinstance(payload, dict):
            raise errors.UpstreamBadResponse(
                f"the upstream for model '{request.model.name}' sent a body that is not JSON")
        return response, payload

    async def _read_timed(self, response: UpstreamResponse, started: _Started,
                          timer: Deadline, deadlines: AttemptDeadlines, limit: int) -> bytes:
        """Read a JSON body chunk by chunk: the first byte under the first-token
        deadline, the rest under the attempt's own; no more than `limit` bytes."""
        chunks = response.iter_chunks()
        started.chunks = chunks
        parts: list[bytes] = []
        size = 0
        async for chunk in chunks:
            if not started.first_seen:
                started.first_seen = True
                timer.reschedule(deadlines.answer_at)
            size += len(chunk)
            if size > limit:
                parts.clear()
                raise BodyTooLarge(limit)
            parts.append(chunk)
        return b"".join(parts)

    def _prepare_error(self, exc: BaseException, model: ModelConfig, timeout: Deadline,
                       deadlines: AttemptDeadlines, first_seen: bool) -> errors.GatewayError | None:
        if isinstance(exc, Exception) and timeout.expired():
            return deadlines.expired(first_seen)
        if isinstance(exc, errors.GatewayError):
            return exc
        if isinstance(exc, Exception):  # transport errors of the HTTP client
            return _transport_error(exc, model)
        return None

    def _status_error(self, dialect: Dialect, response: UpstreamResponse,
                      raw: bytes) -> errors.UpstreamStatus:
        body = dialect.upstream_error(response.status, self.scrubber.bytes(raw))
        headers = {name: value for name in _RETRY_HEADERS
                   if (value := response.headers.get(name)) is not None}
        return errors.UpstreamStatus(
            response.status, body, headers=headers, error_type=status_error_type(response.status)
        )

    def fail(self, call: Call, model: ModelConfig, provider: Provider,
             recorder: AttemptRecorder, error: errors.GatewayError) -> AttemptFailed:
        """Record a failed, uncommitted attempt and wrap its error (its message scrubbed: it
        may quote the upstream; with content capture off the span gets the error's
        content-free telemetry message), and log it in the CLIENT span's context."""
        error.message = self.scrubber.text(error.message)
        message = (error.message if recorder.content.enabled
                   else self.scrubber.text(error.telemetry_message))
        recorder.finish(response_model=None, usage=None, cost=None,
                        error_type=error.error_type, error_message=message)
        status = getattr(error, "status", None)
        with within(recorder.context):  # never the message: it may quote the prompt
            _log.warning("request %s: attempt on model %s (provider %s) failed: %s, status %s",
                         call.request_id, model.name, provider.config.name, error.error_type,
                         status)
        result = AttemptResult(model=model, provider_name=provider.config.provider_name,
                               usage=None, cost=_NO_COST,
                               error_type=error.error_type,
                               status=getattr(error, "status", None))
        return AttemptFailed(error, result)

    def _json_answer(self, call: Call, dialect: Dialect, model: ModelConfig,
                     provider: Provider, recorder: AttemptRecorder, response: UpstreamResponse,
                     raw: bytes) -> JsonAnswer:
        """Account for a whole JSON answer (still before commit)."""
        try:
            payload = orjson.loads(raw)
            if not isinstance(payload, dict):
                raise ValueError
        except ValueError:
            raise self.fail(call, model, provider, recorder, errors.UpstreamBadResponse(
                f"the upstream for model '{model.name}' sent a body that is not JSON")) from None
        client = call.client
        route = self.route(model)
        reading = dialect.read_answer(client, payload, model.name, route.renames,
                                      recorder.content.enabled)
        usage = reading.usage
        if usage is None:
            usage = estimated_usage(call, reading.output_tokens)
        pricing = model.pricing
        cost = cost_usd(usage, pricing)
        if reading.output_messages is not None:
            recorder.record_output(reading.output_messages)
        recorder.finish(response_model=self.response_models(reading.response_model), usage=usage,
                        cost=cost if pricing.priced else None, unpriced=not pricing.priced,
                        response_attributes=reading.attributes)
        result = AttemptResult(model=model, provider_name=route.provider_name,
                               usage=usage, cost=cost, status=response.status, committed=True)
        body = reading.body if reading.body is not None else raw
        return JsonAnswer(response.status, body, response.headers, model, result,
                          time.perf_counter())

    def finish_stream(self, call: Call, stream: EventStream) -> AttemptResult:
        """Account for a stream the relay has run to its end, however it ended."""
        watcher, recorder, model = stream.watcher, stream.recorder, stream.model
        call.upstream_wait_s += stream.wait_s
        usage = watcher.usage
        if usage is None:
            usage = estimated_usage(call, watcher.output_tokens())
        pricing = model.pricing
        cost = cost_usd(usage, pricing)
        ending = stream.ending
        attrs = dict(watcher.response_attributes)
        attrs[n.GATEWAY_STREAM_END] = "done" if ending is None else ending.end
        output = watcher.output_messages()
        if output is not None:
            recorder.record_output(output)
        error_type = None if ending is None else ending.error_type
        if ending is not None and ending.end not in _CLIENT_ENDS:
            with within(recorder.context):
                _log.warning("request %s: stream from model %s (provider %s) ended early: %s, %s",
                             call.request_id, model.name, stream.provider.config.name,
                             ending.end, ending.error_type)
        recorder.finish(response_model=self.response_models(watcher.response_model), usage=usage,
                        cost=cost if pricing.priced else None, unpriced=not pricing.priced,
                        error_type=error_type,
                        error_message=None if ending is None else ending.message,
                        response_attributes=attrs)
        return AttemptResult(model=model, provider_name=stream.provider.config.provider_name,
                             usage=usage, cost=cost, error_type=error_type, status=200,
                             committed=True, first_chunk_s=recorder.first_chunk_s)


def _part_of(request: UpstreamRequest, body: dict[str, Any]) -> UpstreamRequest:
    """One part of a split call: the call's request with a body of its own."""
    return UpstreamRequest(request.operation, request.path, body, False, request.model,
                           dict(request.headers), request.directives, None, request.context,
                           request.query)


def forwarded_query(query: str, names: tuple[str, ...]) -> str:
    """The parameters of a client's query string named in `names` (a dialect's
    `forward_query`), re-encoded; "" when there are none."""
    if not names:
        return ""
    return urlencode([(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k in names])


def estimated_usage(call: Call, output_tokens: int) -> Usage:
    """Usage when the upstream reported none: the dialect's prompt estimate and output count."""
    return Usage(input=call.client.prompt_tokens, output=output_tokens, estimated=True)


async def _close(started: _Started) -> None:
    """Release an attempt that failed before commit, body iterator included."""
    if started.stream is not None:
        await started.stream.aclose()
        return
    if started.response is not None:
        started.response.close()
    aclose = getattr(started.chunks, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()


def _transport_error(exc: BaseException, model: ModelConfig) -> errors.GatewayError:
    if isinstance(exc, BodyTooLarge):
        return errors.UpstreamTooLarge(
            f"the upstream for model '{model.name}' sent an answer larger than {exc.limit} bytes "
            "(its provider's max_response_bytes); the gateway stopped reading it")
    if isinstance(exc, TimeoutError):
        return errors.UpstreamTimeout(f"the upstream for model '{model.name}' stalled")
    return errors.UpstreamUnreachable(
        f"the connection to the upstream for model '{model.name}' failed: {type(exc).__name__}")

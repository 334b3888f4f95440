"""A fake OpenAI-compatible upstream that speaks api.openai.com's exact wire format.

Tests point the gateway (or the openai SDK) at it to assert on what was
forwarded and to inject faults; the benchmark runs it as the instant
upstream, so the default path does as little as possible per request.

    async with running_upstream(Behaviour(completion_tokens=5)) as up:
        client = AsyncOpenAI(base_url=up.base_url, api_key="sk-test")
        ...
        assert up.state.requests[0].headers["traceparent"]

Run it standalone (the benchmark does): ``python -m tests.fakes.openai_upstream --port 0``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import ssl
import struct
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from aiohttp import web

from tests.fakes import openai_wire as wire

DEFAULT_MODELS: tuple[str, ...] = (
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-5",
    "gpt-5-mini",
    "o3",
    "o4-mini",
    "text-embedding-3-small",
    "text-embedding-3-large",
    "text-embedding-ada-002",
)

GARBAGE_SSE = b'data: {"id": "chatcmpl-garbage", "choices": [{"delta": \n\n'
MALFORMED_JSON = b'{"id": "chatcmpl-malformed", "object": "chat.completion", "choices": [{"ind'


@dataclass(frozen=True)
class Behaviour:
    """How the fake answers one request. Every fault is off by default.

    Content and usage: `content` fixes the reply text (otherwise an echo of the
    last user message, see openai_wire.reply_words); `prompt_tokens` and
    `completion_tokens` override the derived counts; `cached_tokens` and
    `reasoning_tokens` fill the usage details (reasoning tokens are part of
    completion_tokens, as with OpenAI), and so do `audio_prompt_tokens` and
    `audio_completion_tokens` (parts of prompt and completion); `chunks` is the number of content
    deltas in a stream (default one per word).

    Timing: `latency_s` before the response headers (every response);
    `stall_s` after the headers and before the first body byte (JSON body or
    first SSE event); `first_chunk_delay_s` in streams between the role chunk
    and the first content chunk; `chunk_delay_s` between later stream events.

    Faults: `status` (with `body`, default OpenAI's body for that status) answers
    an error instead; `retry_after` adds a Retry-After header; `headers` are
    added to any response; `malformed_json` sends a truncated JSON body with
    200; in streams, event indexes count SSE events from 0 (0 is the role
    chunk): `reset_after_events` aborts the TCP connection with RST after that
    many events, `close_after_events` ends the body cleanly without [DONE],
    `garbage_at_event` writes a malformed SSE event before that event,
    `error_event_at` writes OpenAI's in-stream `{"error": ...}` event there and
    ends, and `fragment_events` splits every event across two writes.
    """

    content: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    audio_prompt_tokens: int = 0
    audio_completion_tokens: int = 0
    chunks: int | None = None
    finish_reason: str = "stop"
    response_model: str | None = None
    embedding_dimensions: int = 1536

    latency_s: float = 0.0
    stall_s: float = 0.0
    first_chunk_delay_s: float = 0.0
    chunk_delay_s: float = 0.0

    status: int | None = None
    body: bytes | Mapping[str, Any] | None = None
    retry_after: float | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    malformed_json: bool = False
    reset_after_events: int | None = None
    close_after_events: int | None = None
    garbage_at_event: int | None = None
    error_event_at: int | None = None
    error_event: Mapping[str, Any] | None = None  # that event's body (default OpenAI's 500)
    fragment_events: bool = False

    @classmethod
    def error(
        cls,
        status: int,
        *,
        retry_after: float | None = None,
        body: bytes | Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Behaviour:
        """Answer every request with this error status (OpenAI's body unless given)."""
        return cls(status=status, retry_after=retry_after, body=body, **kwargs)

    def with_(self, **changes: Any) -> Behaviour:
        return replace(self, **changes)

    @property
    def shapes_stream(self) -> bool:
        """Whether any per-event timing or fault applies (else a stream is one write)."""
        return bool(
            self.first_chunk_delay_s
            or self.chunk_delay_s
            or self.fragment_events
            or self.reset_after_events is not None
            or self.close_after_events is not None
            or self.garbage_at_event is not None
            or self.error_event_at is not None
        )


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake received it; header names are lower-cased."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes
    received_at: float
    query: str = ""  # the query string as received


@dataclass
class UpstreamState:
    """Everything a test sets or reads: behaviours in, recorded requests and counters out.

    Behaviour is chosen per request: the next item of `queue` if any (so a
    test can script "fail twice, then answer"), else `per_model[model]`, else
    `behaviour`. `api_key`, when set, must match the `Authorization: Bearer`
    header or the answer is 401. `models` is the catalogue (None accepts any
    model); unknown models get 404 model_not_found.
    """

    behaviour: Behaviour = field(default_factory=Behaviour)
    per_model: dict[str, Behaviour] = field(default_factory=dict)
    queue: deque[Behaviour] = field(default_factory=deque)
    api_key: str | None = None
    models: tuple[str, ...] | None = DEFAULT_MODELS
    record: bool = True

    requests: list[RecordedRequest] = field(default_factory=list)
    in_flight: int = 0
    total_requests: int = 0
    client_disconnects: int = 0
    ids: wire.IdFactory = field(default_factory=wire.IdFactory)

    def behaviour_for(self, model: str | None) -> Behaviour:
        if self.queue:
            return self.queue.popleft()
        if model is not None and model in self.per_model:
            return self.per_model[model]
        return self.behaviour

    @property
    def last_request(self) -> RecordedRequest:
        return self.requests[-1]

    def bodies(self, path_suffix: str = "/chat/completions") -> list[Any]:
        return [r.body for r in self.requests if r.path.endswith(path_suffix)]


STATE_KEY = web.AppKey("upstream_state", UpstreamState)

_STATIC_HEADERS = {
    "openai-organization": "org-fake",
    "openai-project": "proj_fake",
    "openai-version": "2020-10-01",
    "x-ratelimit-limit-requests": "10000",
    "x-ratelimit-limit-tokens": "30000000",
    "x-ratelimit-remaining-requests": "9999",
    "x-ratelimit-remaining-tokens": "29999000",
    "x-ratelimit-reset-requests": "6ms",
    "x-ratelimit-reset-tokens": "2ms",
    "x-content-type-options": "nosniff",
    "access-control-expose-headers": "X-Request-ID",
}
_JSON_TYPE = "application/json"
_SSE_TYPE = "text/event-stream; charset=utf-8"


class _Call:
    """Per-request context: the state, the start time and the response headers."""

    __slots__ = ("headers", "started", "state")

    def __init__(self, state: UpstreamState, behaviour_headers: Mapping[str, str]) -> None:
        self.state = state
        self.started = time.perf_counter()
        self.headers = dict(_STATIC_HEADERS)
        self.headers["x-request-id"] = state.ids.request_id()
        if behaviour_headers:
            self.headers.update(behaviour_headers)

    def finish_headers(self, content_type: str) -> dict[str, str]:
        elapsed_ms = int((time.perf_counter() - self.started) * 1000)
        self.headers["openai-processing-ms"] = str(elapsed_ms)
        self.headers["content-type"] = content_type
        return self.headers

    def json(self, payload: Mapping[str, Any] | bytes, status: int = 200) -> web.Response:
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        return web.Response(body=body, status=status, headers=self.finish_headers(_JSON_TYPE))


async def _read_request(request: web.Request, state: UpstreamState) -> tuple[Any, bool]:
    """Parse and record the body; returns (body, parsed_ok)."""
    raw = await request.read()
    try:
        body: Any = orjson.loads(raw) if raw else None
        ok = raw != b""
    except orjson.JSONDecodeError:
        body, ok = None, False
    if state.record:
        headers = {k.lower(): v for k, v in request.headers.items()}
        state.requests.append(
            RecordedRequest(request.method, request.path, headers, body, raw, time.monotonic(),
                            request.query_string)
        )
    return body, ok


def _auth_error(request: web.Request, state: UpstreamState) -> dict[str, Any] | None:
    if state.api_key is None:
        return None
    header = request.headers.get("Authorization", "")
    presented = header[7:] if header.startswith("Bearer ") else header
    if presented == state.api_key:
        return None
    return wire.invalid_api_key(presented or None)


def _error_response(call: _Call, behaviour: Behaviour, model: str) -> web.Response:
    assert behaviour.status is not None
    status = behaviour.status
    if behaviour.retry_after is not None:
        call.headers["retry-after"] = f"{behaviour.retry_after:g}"
    if status == 429:
        call.headers["x-ratelimit-remaining-requests"] = "0"
    body = behaviour.body
    if body is None:
        body = wire.default_error_for_status(status, model)
    return call.json(body if isinstance(body, bytes) else dict(body), status=status)


def _validate(body: Any, ok: bool, state: UpstreamState, required: str) -> tuple[dict[str, Any], int] | None:
    """OpenAI's validation errors for a parsed body, or None when it is fine."""
    if not ok or not isinstance(body, dict):
        return wire.invalid_json(), 400
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return wire.error_body("you must provide a model parameter", "invalid_request_error"), 400
    if required not in body:
        return wire.missing_parameter(required), 400
    if state.models is not None and model not in state.models:
        return wire.model_not_found(model), 404
    return None


@contextlib.contextmanager
def _tracked(state: UpstreamState) -> Iterator[None]:
    state.in_flight += 1
    state.total_requests += 1
    try:
        yield
    except (asyncio.CancelledError, ConnectionResetError):
        state.client_disconnects += 1
        raise
    finally:
        state.in_flight -= 1


async def _prelude(
    request: web.Request, required: str
) -> tuple[_Call, Behaviour, dict[str, Any]] | web.Response:
    """Shared start of every POST: read, record, authenticate, validate, pick behaviour."""
    state = request.app[STATE_KEY]
    body, ok = await _read_request(request, state)
    auth = _auth_error(request, state)
    if auth is not None:
        return _Call(state, {}).json(auth, status=401)
    invalid = _validate(body, ok, state, required)
    if invalid is not None:
        return _Call(state, {}).json(invalid[0], status=invalid[1])
    behaviour = state.behaviour_for(body["model"])
    call = _Call(state, behaviour.headers)
    if behaviour.latency_s:
        await asyncio.sleep(behaviour.latency_s)
    if behaviour.status is not None:
        return _error_response(call, behaviour, body["model"])
    return call, behaviour, body


def _usage(behaviour: Behaviour, messages: list[Any], visible_tokens: int) -> wire.Usage:
    prompt = behaviour.prompt_tokens
    if prompt is None:
        prompt = wire.count_prompt_tokens(messages)
    completion = behaviour.completion_tokens
    if completion is None:
        completion = visible_tokens + behaviour.reasoning_tokens
    return wire.Usage(prompt, completion, behaviour.cached_tokens, behaviour.reasoning_tokens,
                      behaviour.audio_prompt_tokens, behaviour.audio_completion_tokens)


def _reply(behaviour: Behaviour, messages: list[Any]) -> list[str]:
    if behaviour.content is not None:
        return behaviour.content.split(" ") if behaviour.content else []
    visible = None
    if behaviour.completion_tokens is not None:
        visible = max(0, behaviour.completion_tokens - behaviour.reasoning_tokens)
    return wire.reply_words(messages, visible)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    with _tracked(state):
        started = await _prelude(request, "messages")
        if isinstance(started, web.Response):
            return started
        call, behaviour, body = started
        messages = body["messages"] if isinstance(body["messages"], list) else []
        words = _reply(behaviour, messages)
        usage = _usage(behaviour, messages, len(words))
        model = behaviour.response_model or body["model"]
        if body.get("stream") is True:
            return await _stream(request, call, behaviour, body, model, words, usage)
        if behaviour.malformed_json:
            return call.json(MALFORMED_JSON)
        payload = wire.chat_completion(
            completion_id=state.ids.completion_id(),
            model=model,
            content=" ".join(words),
            finish_reason=behaviour.finish_reason,
            usage=usage,
            system_fingerprint=state.ids.system_fingerprint,
        )
        if not behaviour.stall_s:
            return call.json(payload)
        return await _stalled_json(request, call, behaviour, orjson.dumps(payload))


async def _stalled_json(
    request: web.Request, call: _Call, behaviour: Behaviour, body: bytes
) -> web.StreamResponse:
    response = web.StreamResponse(headers=call.finish_headers(_JSON_TYPE))
    response.content_length = len(body)
    await response.prepare(request)
    await asyncio.sleep(behaviour.stall_s)
    await response.write(body)
    await response.write_eof()
    return response


def _stream_events(
    state: UpstreamState,
    behaviour: Behaviour,
    body: dict[str, Any],
    model: str,
    words: list[str],
    usage: wire.Usage,
) -> list[bytes]:
    options = body.get("stream_options")
    options = options if isinstance(options, dict) else {}
    header = wire.ChunkHeader(
        completion_id=state.ids.completion_id(),
        model=model,
        created=int(time.time()),
        system_fingerprint=state.ids.system_fingerprint,
        include_usage=options.get("include_usage") is True,
        obfuscate=options.get("include_obfuscation", True) is not False,
    )
    deltas = wire.split_chunks(words, behaviour.chunks)
    chunks = wire.stream_chunks(header, deltas, behaviour.finish_reason, usage)
    return [wire.sse_event(orjson.dumps(c)) for c in chunks]


def _reset(request: web.Request) -> None:
    """Abort with RST (SO_LINGER 0) so the client sees a connection reset, not a clean EOF."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def _stream(
    request: web.Request,
    call: _Call,
    behaviour: Behaviour,
    body: dict[str, Any],
    model: str,
    words: list[str],
    usage: wire.Usage,
) -> web.StreamResponse:
    events = _stream_events(call.state, behaviour, body, model, words, usage)
    response = web.StreamResponse(headers=call.finish_headers(_SSE_TYPE))
    await response.prepare(request)
    if behaviour.stall_s:
        await asyncio.sleep(behaviour.stall_s)
    if not behaviour.shapes_stream:
        await response.write(b"".join(events) + wire.SSE_DONE)
        await response.write_eof()
        return response
    for index, event in enumerate(events):
        if await _stream_fault(request, response, behaviour, index):
            return response
        await _pause(behaviour, index)
        await _write_event(response, event, behaviour.fragment_events)
    if await _stream_fault(request, response, behaviour, len(events)):
        return response
    await response.write(wire.SSE_DONE)
    await response.write_eof()
    return response


async def _pause(behaviour: Behaviour, index: int) -> None:
    if index == 1 and behaviour.first_chunk_delay_s:
        await asyncio.sleep(behaviour.first_chunk_delay_s)
    elif index > 0 and behaviour.chunk_delay_s:
        await asyncio.sleep(behaviour.chunk_delay_s)


async def _write_event(response: web.StreamResponse, event: bytes, fragment: bool) -> None:
    if not fragment:
        await response.write(event)
        return
    half = len(event) // 2
    await response.write(event[:half])
    await asyncio.sleep(0.001)  # separate TCP segments, so the reader sees a split event
    await response.write(event[half:])


async def _stream_fault(
    request: web.Request, response: web.StreamResponse, behaviour: Behaviour, index: int
) -> bool:
    """Apply the fault scheduled before event `index`; True when the stream is over."""
    if behaviour.garbage_at_event == index:
        await response.write(GARBAGE_SSE)
    if behaviour.reset_after_events == index:
        _reset(request)
        return True
    if behaviour.error_event_at == index:
        error = behaviour.error_event or wire.default_error_for_status(500)
        await response.write(wire.sse_event(orjson.dumps(error)))
        response.force_close()
        await response.write_eof()
        return True
    if behaviour.close_after_events == index:
        response.force_close()
        await response.write_eof()
        return True
    return False


async def embeddings(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    with _tracked(state):
        started = await _prelude(request, "input")
        if isinstance(started, web.Response):
            return started
        call, behaviour, body = started
        if behaviour.malformed_json:
            return call.json(MALFORMED_JSON)
        dimensions = body.get("dimensions")
        if not isinstance(dimensions, int) or dimensions <= 0:
            dimensions = behaviour.embedding_dimensions
        encoding = "base64" if body.get("encoding_format") == "base64" else "float"
        payload = wire.embeddings_response(
            model=behaviour.response_model or body["model"],
            inputs=body["input"],
            dimensions=dimensions,
            encoding_format=encoding,
        )
        if behaviour.prompt_tokens is not None:
            payload["usage"] = {
                "prompt_tokens": behaviour.prompt_tokens,
                "total_tokens": behaviour.prompt_tokens,
            }
        if not behaviour.stall_s:
            return call.json(payload)
        return await _stalled_json(request, call, behaviour, orjson.dumps(payload))


async def list_models(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    with _tracked(state):
        await _read_request(request, state)
        call = _Call(state, state.behaviour.headers)
        auth = _auth_error(request, state)
        if auth is not None:
            return call.json(auth, status=401)
        return call.json(wire.models_list(state.models or DEFAULT_MODELS))


async def unknown_route(request: web.Request) -> web.Response:
    """api.openai.com answers any other method or path with a 404 in its error shape."""
    state = request.app[STATE_KEY]
    await _read_request(request, state)
    message = f"Invalid URL ({request.method} {request.path})"
    return _Call(state, {}).json(wire.error_body(message, "invalid_request_error"), status=404)


def create_upstream_app(state: UpstreamState | None = None) -> web.Application:
    """The fake upstream as an aiohttp app; its state is under STATE_KEY."""
    app = web.Application()
    app[STATE_KEY] = state if state is not None else UpstreamState()
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/embeddings", embeddings)
    app.router.add_get("/v1/models", list_models)
    app.router.add_route("*", "/{tail:.*}", unknown_route)
    return app


@dataclass
class RunningUpstream:
    """A started fake upstream: where it listens and its live state."""

    base_url: str
    state: UpstreamState
    runner: web.AppRunner

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1].split("/", 1)[0])

    @property
    def open_connections(self) -> int:
        """TCP connections currently open to the fake (idle keep-alive ones included)."""
        server = self.runner.server
        return 0 if server is None else len(server.connections)


@contextlib.asynccontextmanager
async def running_upstream(
    behaviour: Behaviour | None = None,
    *,
    state: UpstreamState | None = None,
    api_key: str | None = None,
    per_model: Mapping[str, Behaviour] | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[RunningUpstream]:
    """Serve the fake on host:port (0 picks a free port) for the duration of the block,
    over TLS with `ssl_context`."""
    if state is None:
        state = UpstreamState(api_key=api_key, per_model=dict(per_model or {}))
    if behaviour is not None:
        state.behaviour = behaviour
    runner = web.AppRunner(create_upstream_app(state), handler_cancellation=True, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
        await site.start()
        bound_port = runner.addresses[0][1]
        scheme = "https" if ssl_context is not None else "http"
        yield RunningUpstream(f"{scheme}://{host}:{bound_port}/v1", state, runner)
    finally:
        await runner.cleanup()


# --- standalone process (the benchmark's upstream) ------------------------


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Fake OpenAI-compatible upstream.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=None, help="require this bearer key")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0)
    parser.add_argument("--completion-tokens", type=int, default=None)
    parser.add_argument("--chunks", type=int, default=None)
    parser.add_argument("--record", action="store_true", help="keep every request in memory")
    parser.add_argument("--any-model", action="store_true", help="accept every model name")
    parser.add_argument(
        "--model-behaviour",
        action="append",
        default=[],
        metavar='NAME={"chunk_delay_s": 0.002}',
        help="Behaviour fields as JSON for one model name (repeatable)",
    )
    parser.add_argument("--no-uvloop", action="store_true")
    return parser.parse_args(argv)


def _per_model(specs: list[str]) -> dict[str, Behaviour]:
    per_model: dict[str, Behaviour] = {}
    for spec in specs:
        name, _, fields = spec.partition("=")
        per_model[name] = Behaviour(**orjson.loads(fields or "{}"))
    return per_model


async def _serve(args: argparse.Namespace) -> None:
    behaviour = Behaviour(
        latency_s=args.latency_ms / 1000,
        chunk_delay_s=args.chunk_delay_ms / 1000,
        completion_tokens=args.completion_tokens,
        chunks=args.chunks,
    )
    state = UpstreamState(
        behaviour=behaviour,
        per_model=_per_model(args.model_behaviour),
        api_key=args.api_key,
        record=args.record,
        models=None if args.any_model else DEFAULT_MODELS,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with running_upstream(state=state, host=args.host, port=args.port) as up:
        print(f"listening {up.base_url}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    if not args.no_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            uvloop.run(_serve(args))
            return
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main(sys.argv[1:])

"""A fake Anthropic upstream that speaks api.anthropic.com's wire format: the Messages
API (JSON and named SSE events), count_tokens, Anthropic's error bodies and headers
(`request-id`, `anthropic-ratelimit-*`, `retry-after`).

    async with running_anthropic(Behaviour(text="Hello"), api_key="sk-ant-test") as up:
        client = anthropic.AsyncAnthropic(base_url=up.base_url, api_key="sk-ant-test")
        ...
        assert up.state.last_request.headers["anthropic-version"] == "2023-06-01"

Like the real API it requires `anthropic-version`, and the key in `x-api-key` (or
`Authorization: Bearer`) when `api_key` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from aiohttp import web

from tests.fakes import anthropic_wire as wire


@dataclass(frozen=True)
class Behaviour:
    """How the fake answers one request. Every fault is off by default.

    Content: `text` (default: an echo of the last user message), `tool_call` (name,
    input) answered as a tool_use block with stop reason tool_use (also when the request
    forces a tool with tool_choice any/tool), `thinking` prepended as a thinking block.
    Usage: `input_tokens` (uncached; default derived from the prompt), `output_tokens`
    (default: one per 4 characters of content), `cache_write_5m`, `cache_write_1h`,
    `cache_read`; `full_delta_usage` repeats the input counts in message_delta.
    Timing: `latency_s` before the headers, `chunk_delay_s` between stream events,
    `first_delta_delay_s` before the first content delta (after message_start, as when the
    model is slow to its first token).
    Faults: `status` answers that error in Anthropic's shape (`retry_after` adds the
    header); in streams, `error_event_at` sends an `error` event (`error_type`) before
    that event index and ends, `reset_after_events` aborts the connection with RST and
    `close_after_events` ends the body cleanly without message_stop.
    """

    text: str | None = None
    tool_call: tuple[str, Mapping[str, Any]] | None = None
    thinking: str | None = None
    stop_reason: str | None = None
    response_model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_write_5m: int = 0
    cache_write_1h: int = 0
    cache_read: int = 0
    full_delta_usage: bool = False
    chunk_chars: int = 12

    latency_s: float = 0.0
    chunk_delay_s: float = 0.0
    first_delta_delay_s: float = 0.0

    status: int | None = None
    message: str | None = None
    retry_after: float | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    error_event_at: int | None = None
    error_type: str = "overloaded_error"
    reset_after_events: int | None = None
    close_after_events: int | None = None

    @classmethod
    def error(cls, status: int, **kwargs: Any) -> Behaviour:
        return cls(status=status, **kwargs)

    def with_(self, **changes: Any) -> Behaviour:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake received it; header names are lower-cased."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any


@dataclass
class UpstreamState:
    """Behaviours in (the next of `queue`, else `behaviour`), recorded requests out."""

    behaviour: Behaviour = field(default_factory=Behaviour)
    queue: deque[Behaviour] = field(default_factory=deque)
    api_key: str | None = None
    requests: list[RecordedRequest] = field(default_factory=list)
    client_disconnects: int = 0
    ids: wire.IdFactory = field(default_factory=wire.IdFactory)

    def next_behaviour(self) -> Behaviour:
        return self.queue.popleft() if self.queue else self.behaviour

    @property
    def last_request(self) -> RecordedRequest:
        return self.requests[-1]


STATE_KEY = web.AppKey("anthropic_state", UpstreamState)
_SSE_TYPE = "text/event-stream; charset=utf-8"


def _headers(state: UpstreamState, extra: Mapping[str, str]) -> dict[str, str]:
    reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
    headers = {
        "request-id": state.ids.request_id(),
        "anthropic-organization-id": "00000000-0000-4000-8000-000000000000",
        "anthropic-ratelimit-requests-limit": "4000",
        "anthropic-ratelimit-requests-remaining": "3999",
        "anthropic-ratelimit-requests-reset": reset,
        "anthropic-ratelimit-input-tokens-limit": "2000000",
        "anthropic-ratelimit-input-tokens-remaining": "2000000",
        "anthropic-ratelimit-input-tokens-reset": reset,
        "anthropic-ratelimit-output-tokens-limit": "400000",
        "anthropic-ratelimit-output-tokens-remaining": "400000",
        "anthropic-ratelimit-output-tokens-reset": reset,
        "anthropic-ratelimit-tokens-limit": "2400000",
        "anthropic-ratelimit-tokens-remaining": "2400000",
        "anthropic-ratelimit-tokens-reset": reset,
        "via": "1.1 google",
        "cf-cache-status": "DYNAMIC",
        "x-robots-tag": "none",
    }
    headers.update(extra)
    return headers


def _json(state: UpstreamState, payload: Any, status: int = 200,
          extra: Mapping[str, str] | None = None) -> web.Response:
    headers = _headers(state, extra or {})
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return web.Response(body=body, status=status, headers=headers,
                        content_type="application/json")


def _error(state: UpstreamState, status: int, message: str | None = None,
           extra: Mapping[str, str] | None = None) -> web.Response:
    headers = dict(extra or {})
    request_id = state.ids.request_id()
    headers["request-id"] = request_id
    if status in (429, 529) or status >= 500:
        headers.setdefault("x-should-retry", "true")
    return _json(state, wire.error_body(status, message, request_id), status, headers)


async def _prelude(request: web.Request) -> tuple[UpstreamState, Any] | web.Response:
    state = request.app[STATE_KEY]
    raw = await request.read()
    try:
        body: Any = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        body = None
    headers = {k.lower(): v for k, v in request.headers.items()}
    state.requests.append(RecordedRequest(request.method, request.path, request.query_string,
                                          headers, body))
    if state.api_key is not None:
        bearer = headers.get("authorization", "")
        presented = headers.get("x-api-key") or bearer.removeprefix("Bearer ")
        if presented != state.api_key:
            return _error(state, 401)
    if "anthropic-version" not in headers:
        return _error(state, 400, "anthropic-version: header is required")
    if not isinstance(body, dict):
        return _error(state, 400, "There was an issue with the request body: invalid JSON")
    if not isinstance(body.get("model"), str):
        return _error(state, 400, "model: Field required")
    if not isinstance(body.get("messages"), list):
        return _error(state, 400, "messages: Field required")
    return state, body


def _content(state: UpstreamState, behaviour: Behaviour, body: Mapping[str, Any]) -> list[Any]:
    blocks: list[Any] = []
    if behaviour.thinking is not None:
        blocks.append(wire.thinking_block(behaviour.thinking, "EqQBCgIYAhIM" + "a" * 40))
    choice = body.get("tool_choice")
    forced = isinstance(choice, dict) and choice.get("type") in ("any", "tool")
    call = behaviour.tool_call
    if call is None and forced and body.get("tools"):
        tool = body["tools"][0]
        name = choice.get("name") if choice.get("type") == "tool" else tool.get("name")
        call = (str(name), {"location": "Paris"})
    if call is not None:
        blocks.append(wire.tool_use_block(state.ids.tool_use_id(), call[0], call[1]))
    else:
        text = behaviour.text
        if text is None:
            text = "This is a fake reply to: " + wire.last_user_text(body)
        blocks.append(wire.text_block(text))
    return blocks


def _usage(behaviour: Behaviour, body: Mapping[str, Any], content: list[Any]) -> wire.Usage:
    input_tokens = behaviour.input_tokens
    if input_tokens is None:
        total = wire.count_input_tokens(body)
        cached = behaviour.cache_read + behaviour.cache_write_5m + behaviour.cache_write_1h
        input_tokens = max(1, total - cached)
    output = behaviour.output_tokens
    if output is None:
        output = max(1, len(orjson.dumps(content)) // 16)
    return wire.Usage(input_tokens, output, behaviour.cache_write_5m, behaviour.cache_write_1h,
                      behaviour.cache_read)


async def messages(request: web.Request) -> web.StreamResponse:
    started = await _prelude(request)
    if isinstance(started, web.Response):
        return started
    state, body = started
    behaviour = state.next_behaviour()
    if behaviour.latency_s:
        await asyncio.sleep(behaviour.latency_s)
    if behaviour.status is not None:
        extra = dict(behaviour.headers)
        if behaviour.retry_after is not None:
            extra["retry-after"] = f"{behaviour.retry_after:g}"
        return _error(state, behaviour.status, behaviour.message, extra)
    content = _content(state, behaviour, body)
    usage = _usage(behaviour, body, content)
    stop = behaviour.stop_reason or (
        "tool_use" if any(b["type"] == "tool_use" for b in content) else "end_turn")
    model = behaviour.response_model or body["model"]
    ident = state.ids.message_id()
    if body.get("stream") is not True:
        answer = wire.message(ident=ident, model=model, content=content, stop_reason=stop,
                              usage=usage)
        return _json(state, answer, extra=behaviour.headers)
    events = wire.stream_events(ident=ident, model=model, content=content, stop_reason=stop,
                                usage=usage, chunk_chars=behaviour.chunk_chars,
                                full_delta_usage=behaviour.full_delta_usage)
    return await _stream(request, state, behaviour, events)


async def _stream(request: web.Request, state: UpstreamState, behaviour: Behaviour,
                  events: list[bytes]) -> web.StreamResponse:
    headers = _headers(state, {"cache-control": "no-cache", **behaviour.headers})
    headers["content-type"] = _SSE_TYPE
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    try:
        for index, event in enumerate(events):
            if behaviour.error_event_at == index:
                error = wire.error_body(529 if behaviour.error_type == "overloaded_error" else 500)
                error["error"]["type"] = behaviour.error_type
                await response.write(wire.event("error", {"error": error["error"]}))
                break
            if behaviour.reset_after_events == index:
                _reset(request)
                return response
            if behaviour.close_after_events == index:
                break
            if index and behaviour.chunk_delay_s:
                await asyncio.sleep(behaviour.chunk_delay_s)
            if behaviour.first_delta_delay_s and event.startswith(b"event: content_block_delta"):
                await asyncio.sleep(behaviour.first_delta_delay_s)
                behaviour = behaviour.with_(first_delta_delay_s=0.0)
            await response.write(event)
        await response.write_eof()
    except (ConnectionResetError, asyncio.CancelledError):
        state.client_disconnects += 1
        raise
    return response


def _reset(request: web.Request) -> None:
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def count_tokens(request: web.Request) -> web.Response:
    started = await _prelude(request)
    if isinstance(started, web.Response):
        return started
    state, body = started
    return _json(state, {"input_tokens": wire.count_input_tokens(body)})


async def root(request: web.Request) -> web.Response:
    """Claude Code's first request is `HEAD /` (a reachability check)."""
    return web.Response(status=200)


async def unknown_route(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    return _error(state, 404, f"Invalid URL ({request.method} {request.path})")


def create_app(state: UpstreamState | None = None) -> web.Application:
    app = web.Application()
    app[STATE_KEY] = state if state is not None else UpstreamState()
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/messages/count_tokens", count_tokens)
    app.router.add_route("HEAD", "/", root)
    app.router.add_route("*", "/{tail:.*}", unknown_route)
    return app


@dataclass
class RunningAnthropic:
    """A started fake: `base_url` is what the anthropic SDK takes (no /v1)."""

    base_url: str
    state: UpstreamState

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.state.requests


@contextlib.asynccontextmanager
async def running_anthropic(behaviour: Behaviour | None = None, *, api_key: str | None = None,
                            state: UpstreamState | None = None) -> AsyncIterator[RunningAnthropic]:
    """Serve the fake on 127.0.0.1 on a free port for the duration of the block."""
    state = state if state is not None else UpstreamState(api_key=api_key)
    if behaviour is not None:
        state.behaviour = behaviour
    runner = web.AppRunner(create_app(state), handler_cancellation=True, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        yield RunningAnthropic(f"http://127.0.0.1:{port}", state)
    finally:
        await runner.cleanup()


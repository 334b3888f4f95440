"""The request path without sockets: the lifecycle and the chain that `create_app`
builds, in front of in-memory providers, on a fake clock.

`PathRig.chat` does for one request what the edge does (open, admit, dispatch,
relay a stream to a collecting sink, settle, close), minus HTTP. The upstream
is a handler speaking OpenAI's wire format (`Upstream`: behaviours per upstream
model id), so the dialect, the attempt, the relay and the telemetry all run for
real; only the sockets and the waiting are gone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from gateway import errors
from gateway.call import Call
from gateway.config import GatewayConfig, load
from gateway.dialects.openai_chat import OpenAIChat
from gateway.hooks import Authenticator, CallHook, OpenAccess
from gateway.path.answer import JsonAnswer
from gateway.path.attempt import AttemptRunner
from gateway.path.chain import Chain
from gateway.path.lifecycle import Lifecycle
from gateway.path.relay import relay
from gateway.providers.base import Provider
from gateway.resilience.ratelimit import build_rate_limit_hook
from gateway.router import FallbackRouter
from gateway.testing import FakeClock, MemoryProvider, MemoryRequest, Reply
from tests.fakes import openai_wire as wire
from tests.resilience.rig import MESSAGES, chain_config
from tests.support.telemetry import TestTelemetry, make_test_telemetry

UPSTREAM_KEY = "sk-upstream-in-memory"
Behave = Callable[[MemoryRequest], "Reply | Awaitable[Reply]"]
_ids = wire.IdFactory()


# --- what the upstream answers ----------------------------------------------------


def _usage(prompt: int, completion: int) -> wire.Usage:
    return wire.Usage(prompt_tokens=prompt, completion_tokens=completion)


def _stream_events(request: MemoryRequest, content: str, usage: wire.Usage) -> list[bytes]:
    body = request.json()
    options = body.get("stream_options") or {}
    header = wire.ChunkHeader(_ids.completion_id(), body["model"], 1_700_000_000,
                              _ids.system_fingerprint, bool(options.get("include_usage")), False)
    deltas = wire.split_chunks(content.split(), None)
    chunks = wire.stream_chunks(header, deltas, "stop", usage)
    return [wire.sse_event(orjson.dumps(chunk)) for chunk in chunks]


def ok(content: str = "hello from upstream", prompt: int = 12, completion: int = 3) -> Behave:
    """A chat completion, as JSON or as a stream, the way the request asked."""
    def answer(request: MemoryRequest) -> Reply:
        usage = _usage(prompt, completion)
        if request.stream:
            return Reply(200, [*_stream_events(request, content, usage), wire.SSE_DONE])
        body = wire.chat_completion(completion_id=_ids.completion_id(), model=request.json()["model"],
                                    content=content, finish_reason="stop", usage=usage,
                                    system_fingerprint=_ids.system_fingerprint)
        return Reply(200, orjson.dumps(body))
    return answer


def status(code: int, **headers: str) -> Behave:
    """An error status with OpenAI's body for it (`retry_after="7"` adds Retry-After)."""
    extra = {name.replace("_", "-"): value for name, value in headers.items()}
    return lambda request: Reply(code, orjson.dumps(wire.default_error_for_status(code)), extra)


def raises(exc: BaseException) -> Behave:
    """A transport failure before any answer (connect refused, reset)."""
    def fail(request: MemoryRequest) -> Reply:
        raise exc
    return fail


def after(clock: FakeClock, seconds: float, then: Behave) -> Behave:
    """`then`, once `seconds` of the fake clock have passed (a slow upstream)."""
    async def slow(request: MemoryRequest) -> Reply:
        await clock.sleep(seconds)
        answer = then(request)
        return await answer if isinstance(answer, Awaitable) else answer
    return slow


def broken_stream(content: str, events: int, exc: BaseException | None = None) -> Behave:
    """A stream whose connection fails (`exc`, default a reset) after `events` events."""
    def answer(request: MemoryRequest) -> Reply:
        sent = _stream_events(request, content, _usage(12, len(content.split())))[:events]

        async def chunks() -> AsyncIterator[bytes]:
            for chunk in sent:
                yield chunk
            raise exc or ConnectionResetError("reset by peer")
        return Reply(200, chunks())
    return answer


@dataclass
class Upstream:
    """The handler of every provider: behaviours by upstream model id (`queue` first, then
    `by_model`, else `ok()`), recording the model id of every request received."""

    by_model: dict[str, Behave] = field(default_factory=dict)
    queue: list[Behave] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    clock: FakeClock | None = None

    async def __call__(self, request: MemoryRequest) -> Reply:
        model = request.json()["model"]
        self.seen.append(model)
        if self.clock is not None:
            self.times.append(self.clock.time())
        behave = self.queue.pop(0) if self.queue else self.by_model.get(model, ok())
        answer = behave(request)
        return await answer if isinstance(answer, Awaitable) else answer


# --- the gateway's side -----------------------------------------------------------


@dataclass
class Outcome:
    """What the client would receive: status, body bytes (JSON, error, or the stream's
    events) and the serving model (`x-gateway-model`)."""

    status: int
    body: bytes
    served: str | None
    call: Call | None
    headers: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return orjson.loads(self.body)

    def events(self) -> list[Any]:
        """The data of each SSE event, parsed ([DONE] as the string)."""
        out: list[Any] = []
        for block in self.body.split(b"\n\n"):
            for line in block.split(b"\n"):
                if line.startswith(b"data: "):
                    data = line[6:]
                    out.append("[DONE]" if data == b"[DONE]" else orjson.loads(data))
        return out

    def text(self) -> str:
        """The assistant's text: the message of a JSON answer, the deltas of a stream."""
        if self.body.startswith(b"{"):
            return str(self.json()["choices"][0]["message"]["content"])
        return "".join(event["choices"][0]["delta"].get("content") or ""
                       for event in self.events()
                       if isinstance(event, dict) and event.get("choices"))


class _Sink:
    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.ended = False

    async def write(self, data: bytes) -> None:
        self.parts.append(data)

    async def write_eof(self) -> None:
        self.ended = True


class _Transport:
    def is_closing(self) -> bool:
        return False


class _Peer:
    transport = _Transport()


async def _commit() -> None:
    """Sending the status line and headers: nothing to do without a socket."""


class PathRig:
    """The gateway's request path on `clock`, every provider answered by `upstream`."""

    def __init__(self, clock: FakeClock, upstream: Upstream | None = None, *,
                 config: GatewayConfig | None = None, hooks: Sequence[CallHook] = (),
                 authenticator: Authenticator | None = None,
                 environ: Mapping[str, str] | None = None, **config_kwargs: Any) -> None:
        self.clock = clock
        self.upstream = upstream or Upstream()
        self.upstream.clock = clock
        env = {"UPSTREAM_KEY": UPSTREAM_KEY} if environ is None else environ
        self.config = config or load(chain_config("http://upstream.invalid/v1", **config_kwargs),
                                     env)
        self.tt: TestTelemetry = make_test_telemetry()
        tel = self.tt.telemetry
        self.providers: dict[str, MemoryProvider] = {
            name: MemoryProvider(provider, self.upstream)
            for name, provider in self.config.providers.items()}
        as_providers: dict[str, Provider] = dict(self.providers)
        runner = AttemptRunner(self.config, as_providers, tel, clock)
        all_hooks = list(hooks)
        limits = build_rate_limit_hook(self.config, tel.instruments, clock)
        if limits is not None:
            all_hooks.insert(0, limits)
        self.chain = Chain(runner, FallbackRouter(self.config), all_hooks)
        self.lifecycle = Lifecycle(self.config, tel, authenticator or OpenAccess(), all_hooks)
        self.dialect = OpenAIChat()

    async def chat(self, model: str = "primary", *, stream: bool = False,
                   headers: Mapping[str, str] | None = None, **body: Any) -> Outcome:
        """One chat completion through the path, as the edge would serve it."""
        raw = orjson.dumps({"model": model, "messages": MESSAGES, "stream": stream, **body})
        heads = dict(headers or {})
        life = self.lifecycle
        visit = life.open(heads, self.dialect, "/v1/chat/completions")
        status_code, error_type = 500, None
        try:
            await life.authenticate(visit, heads)
            call = life.admit(visit, raw, heads)
            answer = await self.chain.dispatch(call)
            if isinstance(answer, JsonAnswer):
                status_code, error_type = answer.status, answer.result.error_type
                return Outcome(answer.status, answer.body, answer.model.name, call,
                               dict(answer.upstream_headers))
            status_code = 200
            sink = _Sink()
            try:
                refused = await call.held() if call.holds is not None else None
                if refused is not None:
                    raise refused
                await relay(answer, sink, _commit(), _Peer())
            except BaseException:
                await self.chain.settle(call, answer, aborted=True)
                raise
            await self.chain.settle(call, answer, aborted=False)
            error_type = call.attempts[-1].error_type
            return Outcome(200, b"".join(sink.parts), answer.model.name, call)
        except errors.GatewayError as exc:
            status_code, error_type = exc.status, exc.error_type
            return Outcome(exc.status, self.dialect.error_body(exc), None, visit.call,
                           exc.headers)
        finally:
            await life.close(visit, status_code, error_type)
            if visit.call is not None:
                await visit.call.held()

    # --- reading telemetry --------------------------------------------------------

    def client_spans(self) -> list[ReadableSpan]:
        spans = [s for s in self.tt.finished_spans() if s.kind is SpanKind.CLIENT]
        return sorted(spans, key=lambda s: s.start_time or 0)

    def server_spans(self) -> list[ReadableSpan]:
        return [s for s in self.tt.finished_spans() if s.kind is SpanKind.SERVER]

    def counter(self, name: str, **labels: Any) -> float:
        """Sum of the points of `name` whose attributes include `labels`."""
        return sum(point.value for point in self.tt.points(name)
                   if labels.items() <= dict(point.attributes).items())

    def gauge(self, name: str, **labels: Any) -> float | None:
        for point in self.tt.points(name):
            if labels.items() <= dict(point.attributes).items():
                return float(point.value)
        return None

    def unclosed(self) -> int:
        """Upstream answers not released (every attempt must close its answer)."""
        return sum(provider.unclosed for provider in self.providers.values())


def upstream_ids(seen: Sequence[str]) -> list[str]:
    """The gateway models behind upstream ids, for readable assertions."""
    names = {"gpt-4.1": "primary", "gpt-4.1-mini": "backup", "gpt-4.1-nano": "last",
             "gpt-4o": "solo"}
    return [names.get(model, model) for model in seen]


__all__ = ["Outcome", "PathRig", "Upstream", "after", "broken_stream", "ok",
           "raises", "status", "upstream_ids"]

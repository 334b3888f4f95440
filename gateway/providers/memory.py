"""An in-memory provider, for tests (the gateway's and yours): in the spirit of
httpx's `MockTransport`, a handler function answers every upstream request with
what an upstream would send (status, headers, and a body of bytes or a list or
async iterator of SSE chunks), with no socket in between.

    def handler(request: MemoryRequest) -> Reply:
        return Reply(200, orjson.dumps(completion))          # a JSON answer
        return Reply(200, [b"data: {...}\\n\\n", b"data: [DONE]\\n\\n"])  # a stream
        raise ConnectionResetError                            # a transport failure

    create_app(config, providers={"up": MemoryProvider(config.providers["up"], handler)})

The handler may be a coroutine function (to wait on a `FakeClock`, say); an async
iterator body may raise mid-stream, as a reset connection does. The bytes are the
dialect's own wire format: the gateway reads them exactly as it reads an upstream's.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.config import ProviderConfig
from gateway.dialects.registry import OPENAI_NATIVE
from gateway.providers.base import UpstreamRequest

Body = bytes | Sequence[bytes] | AsyncIterable[bytes]


@dataclass(frozen=True, slots=True)
class MemoryRequest:
    """What the upstream receives: the path, headers and body bytes of one attempt."""

    path: str  # relative to the provider's base URL, e.g. "/chat/completions"
    headers: Mapping[str, str]
    content: bytes
    stream: bool

    def json(self) -> Any:
        return orjson.loads(self.content)


@dataclass(slots=True)
class Reply:
    """An upstream's answer: `body` as bytes is a whole body (content-type JSON unless
    `headers` say otherwise), a list or async iterator of chunks is an event stream."""

    status: int = 200
    body: Body = b""
    headers: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[MemoryRequest], "Reply | Awaitable[Reply]"]


class MemoryResponse:
    """A `Reply` seen through the `UpstreamResponse` interface."""

    def __init__(self, reply: Reply, on_close: Callable[[], None]) -> None:
        self.status = reply.status
        self._body = reply.body
        self._on_close: Callable[[], None] | None = on_close
        kind = "application/json" if isinstance(reply.body, bytes) else "text/event-stream"
        self.headers: Mapping[str, str] = {"content-type": kind, **reply.headers}

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.iter_chunks()])

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        body = self._body
        if isinstance(body, bytes):
            if body:
                yield body
            return
        if not isinstance(body, AsyncIterable):
            for chunk in body:
                yield chunk
            return
        source = aiter(body)
        try:
            async for chunk in source:
                yield chunk
        finally:
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                await aclose()

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()
            self._on_close = None


class MemoryProvider:
    """A provider whose upstream is `handler`; `unclosed` counts answers not yet released."""

    def __init__(self, config: ProviderConfig, handler: Handler,
                 dialects: frozenset[str] = OPENAI_NATIVE) -> None:
        self.config = config
        self.dialects = dialects
        self.handler = handler
        self.unclosed = 0

    @property
    def server_address(self) -> str | None:
        return None

    @property
    def server_port(self) -> int | None:
        return None

    async def send(self, request: UpstreamRequest) -> MemoryResponse:
        content = request.raw if request.raw is not None else orjson.dumps(request.body)
        headers = {"content-type": "application/json", **request.headers}
        answer = self.handler(MemoryRequest(request.path, headers, content, request.stream))
        reply = await answer if inspect.isawaitable(answer) else answer
        assert isinstance(reply, Reply), f"the handler answered {reply!r}, not a Reply"
        self.unclosed += 1
        return MemoryResponse(reply, self._closed)

    def _closed(self) -> None:
        self.unclosed -= 1

    async def close(self) -> None:
        """Nothing to release."""

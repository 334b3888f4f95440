"""A hostile upstream for the threat-model tests: a real HTTP server on port 0 whose
chat completions route is whatever handler a test gives it, speaking the wire
format (SSE bytes, JSON and error bodies, headers) the way a broken or malicious
provider might."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Hostile:
    """A running hostile upstream: its base URL and what it saw."""

    base_url: str
    requests: int = 0
    disconnects: list[float] = field(default_factory=list)  # loop times a client left
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


@contextlib.asynccontextmanager
async def hostile_upstream(handler: Handler) -> AsyncIterator[Hostile]:
    """Serve `handler` on /v1/chat/completions (and /v1/embeddings); a handler cut short
    by its client leaving is recorded in `disconnects`."""
    state = Hostile("")

    async def route(request: web.Request) -> web.StreamResponse:
        state.requests += 1
        await request.read()
        state.arrived.set()
        try:
            return await handler(request)
        except (asyncio.CancelledError, ConnectionError):
            state.disconnects.append(asyncio.get_running_loop().time())
            raise

    app = web.Application()
    app.router.add_post("/v1/chat/completions", route)
    app.router.add_post("/v1/embeddings", route)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    try:
        yield state
    finally:
        await runner.cleanup()


def chunk_event(content: str, finish: str | None = None, model: str = "gpt-4.1") -> bytes:
    """One chat completion chunk as an SSE event."""
    reason = "null" if finish is None else f'"{finish}"'
    return (f'data: {{"id":"c1","object":"chat.completion.chunk","model":"{model}",'
            f'"choices":[{{"index":0,"delta":{{"content":"{content}"}},'
            f'"finish_reason":{reason}}}]}}\n\n').encode()


async def sse_response(request: web.Request, *parts: bytes,
                       headers: dict[str, str] | None = None) -> web.StreamResponse:
    """An event stream written part by part."""
    out = web.StreamResponse(headers={"content-type": "text/event-stream", **(headers or {})})
    await out.prepare(request)
    for part in parts:
        await out.write(part)
    await out.write_eof()
    return out

"""Relays an upstream SSE stream (`EventStream`) to the client event by event,
never buffering the answer; called by the edge once the chain has an answer.

The stream ends in exactly one of: `done` (the dialect's end seen),
`upstream_reset`, `upstream_incomplete` (closed before its end), `malformed`,
`upstream_error`, `too_large` (an event past the size limit), `timeout`,
`client_disconnect` or `cancelled` (server
shutdown). Failures after commit become the dialect's mid-stream error event.
The relay closes the upstream in every case. It writes to anything with
`write`/`write_eof` and never imports the HTTP server's types.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable
from typing import Any, Protocol

from gateway.dialects.base import StreamEnd
from gateway.path.answer import EventStream, too_large
from gateway.telemetry import names as n

_CLIENT_GONE = StreamEnd("client_disconnect", n.ERROR_CLIENT_DISCONNECT, "the client disconnected")
_STOPPED = StreamEnd("cancelled", n.ERROR_CANCELLED, "the gateway stopped the stream")


class ClientStream(Protocol):
    """The client's side of a committed stream (aiohttp's StreamResponse is one)."""

    async def write(self, data: bytes) -> None: ...

    async def write_eof(self) -> None: ...


class Peer(Protocol):
    """The client's connection, asked whether it is still there."""

    @property
    def transport(self) -> asyncio.BaseTransport | None: ...


async def relay(stream: EventStream, out: ClientStream, opening: Awaitable[Any],
                peer: Peer) -> None:
    """Send the stream's events to `out` until its end; `opening` commits the response
    (sends status and headers). The upstream's answer is closed however it ends."""
    try:
        await _send(stream, out, opening, peer)
    except BaseException as exc:  # cancelled: closed, and the cancellation goes on
        await stream.aclose()
        raise exc  # by name, not a bare raise after an await: see docs/architecture.md
    await stream.aclose()


async def _send(stream: EventStream, out: ClientStream, opening: Awaitable[Any],
                peer: Peer) -> None:
    chunks = stream.chunks
    waited = 0.0
    try:
        await opening
        data = stream.first()
        if data:
            await out.write(data)
        while not stream.done:
            started = time.perf_counter()
            try:
                chunk: bytes | None = await anext(chunks)
            except StopAsyncIteration:
                chunk = None
            finally:
                waited += time.perf_counter() - started
            if chunk is None:
                break
            data = stream.feed(chunk)
            if data:
                await out.write(data)
        tail = stream.feed_end()
        if tail:
            await out.write(tail)
        await out.write_eof()
    except (ConnectionResetError, ConnectionError) as exc:
        if _client_gone(peer):
            stream.cut_short(_CLIENT_GONE)
        else:
            await _upstream_failed(stream, out, "upstream_reset", "connection_reset", exc)
    except asyncio.CancelledError as cancelled:
        if _client_gone(peer):
            stream.cut_short(_CLIENT_GONE)
        else:  # the server is stopping (shutdown deadline passed): tell the client why
            stream.cut_short(_STOPPED)
            event = stream.error_event("the gateway is shutting down", n.ERROR_CANCELLED)
            await _last_words(out, event)
        raise cancelled  # by name, not a bare raise after an await
    except TimeoutError as exc:
        await _upstream_failed(stream, out, "timeout", n.ERROR_TIMEOUT, exc)
    except Exception as exc:  # the HTTP client's payload and transport failures, limits
        if too_large(exc):
            await _upstream_failed(stream, out, "too_large", n.ERROR_TOO_LARGE, exc, str(exc))
        else:
            await _upstream_failed(stream, out, "upstream_reset", "connection_reset", exc)
    finally:
        stream.wait_s = waited


async def _upstream_failed(stream: EventStream, out: ClientStream, end: str, error_type: str,
                           exc: BaseException, detail: str | None = None) -> None:
    message = f"the upstream stream failed: {detail or type(exc).__name__}"
    stream.cut_short(StreamEnd(end, error_type, message))
    try:
        await out.write(stream.error_event(message, error_type))
        await out.write_eof()
    except (ConnectionError, RuntimeError):
        stream.cut_short(_CLIENT_GONE)


async def _last_words(out: ClientStream, event: bytes) -> None:
    """Best effort, bounded: one error event to a client whose stream is being cut."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(1.0):
            await out.write(event)


def _client_gone(peer: Peer) -> bool:
    transport = peer.transport
    return transport is None or transport.is_closing()

"""One upstream response: status and headers, then its body as it arrives.

The connection feeds it (`feed`, `finish`, `fail`) from the event loop's
protocol callbacks; the request path reads it (`read` for a whole JSON body,
`iter_chunks` for a stream). A wait for more body bytes is bounded by the
provider's read timeout, like aiohttp's `sock_read`. The bytes it holds are
capped (`max_body`: the whole body for `read`, the unread part for a stream),
counted after decompression, which runs a bounded piece at a time, so neither a
body that never ends nor a gzip bomb can take the process's memory.
"""

from __future__ import annotations

import asyncio
import zlib
from collections import deque
from typing import Final, Protocol

from gateway.fastpaths.httpclient.errors import BodyTooLarge, UpstreamProtocolError
from gateway.fastpaths.timers import timers

# Past this many unread bytes the connection stops reading until the reader catches up.
HIGH_WATER: Final = 1 << 20
LOW_WATER: Final = HIGH_WATER // 4
PIECE: Final = 256 * 1024  # the most one decompression step may produce
UNLIMITED: Final = 1 << 62


class BodySource(Protocol):
    """What a response needs from its connection."""

    def pause(self, response: HttpResponse) -> None: ...

    def resume(self, response: HttpResponse) -> None: ...

    def abort(self, response: HttpResponse) -> None: ...


class HttpResponse:
    __slots__ = ("_chunks", "_decoder", "_done", "_error", "_loop", "_max_body", "_paused",
                 "_read_timeout", "_size", "_source", "_waiter", "_whole", "headers", "status")

    def __init__(self, source: BodySource, status: int, headers: dict[str, str],
                 read_timeout: float | None, loop: asyncio.AbstractEventLoop,
                 max_body: int = UNLIMITED) -> None:
        self.status = status
        self._max_body = max_body
        self.headers = headers
        self._source = source
        self._loop = loop
        self._read_timeout = read_timeout
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._done = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._whole = False  # read() wants the whole body: no flow control
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding in ("gzip", "x-gzip", "deflate"):
            self._decoder: zlib._Decompress | None = zlib.decompressobj(wbits=47)  # gzip or zlib
        elif encoding in ("", "identity"):
            self._decoder = None
        else:
            self._decoder = None
            self._error = UpstreamProtocolError(f"unsupported content-encoding {encoding!r}")
            self._done = True

    @property
    def complete(self) -> bool:
        return self._done

    # Fed by the connection.

    def feed(self, data: bytes) -> None:
        if self._done:
            return
        if self._decoder is not None:
            self._inflate(data)
            return
        self._chunks.append(data)
        self._size += len(data)
        if self._size > HIGH_WATER:
            self._over_high_water()
        self._wake()

    def _inflate(self, data: bytes) -> None:
        """Decompress a piece at a time, so a bomb stops at the limit, not in memory."""
        decoder = self._decoder
        assert decoder is not None
        while data and not self._done:
            try:
                piece = decoder.decompress(data, PIECE)
            except zlib.error:
                self.fail(UpstreamProtocolError("the upstream body did not decompress"))
                self._source.abort(self)
                return
            data = decoder.unconsumed_tail
            if piece:
                self._add(piece)

    def _add(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        if self._size > HIGH_WATER:
            self._over_high_water()
        self._wake()

    def _over_high_water(self) -> None:
        """Past the high-water mark: past the limit, fail; else pause a stream's reading."""
        if self._size > self._max_body:
            self._too_large()
        elif not self._paused and not self._whole:
            self._paused = True
            self._source.pause(self)

    def _too_large(self) -> None:
        self._chunks.clear()  # let the memory go now
        self._size = 0
        self.fail(BodyTooLarge(self._max_body))
        self._source.abort(self)

    def finish(self) -> None:
        if self._done:
            return
        if self._decoder is not None:
            tail = self._decoder.flush()  # at most one piece: `_inflate` consumed the rest
            if tail:
                self._add(tail)
                if self._done:
                    return
        self._done = True
        self._wake()

    def fail(self, error: BaseException) -> None:
        if self._done:
            return
        self._error = error
        self._done = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # Read by the request path.

    async def read(self) -> bytes:
        """The whole body; raises the transport failure (or TimeoutError) that cut it short."""
        # All of it is buffered anyway: a paused connection would never bring the rest.
        self._whole = True
        if self._paused:
            self._paused = False
            self._source.resume(self)
        while not self._done:
            await self._wait()
        if self._error is not None:
            raise self._error
        data = b"".join(self._chunks)
        self._chunks.clear()
        self._size = 0
        return data

    def iter_chunks(self) -> BodyChunks:
        """The body's chunks as they arrive; raises what cut it short."""
        return BodyChunks(self)

    async def next_chunk(self) -> bytes | None:
        """The next piece of the body as it arrives, None at its end; raises the transport
        failure (or TimeoutError) that cut it short. A paused connection resumes once
        the unread part is down to the low-water mark."""
        chunks = self._chunks
        while True:
            if chunks:
                chunk = chunks.popleft()
                self._size -= len(chunk)
                if self._paused and self._size <= LOW_WATER:
                    self._paused = False
                    self._source.resume(self)
                return chunk
            if self._done:
                if self._error is not None:
                    raise self._error
                return None
            await self._wait()

    async def _wait(self) -> None:
        waiter = self._loop.create_future()
        self._waiter = waiter
        timer = None
        if self._read_timeout is not None:
            timer = timers(self._loop).call_later(self._read_timeout, self._timed_out)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def _timed_out(self) -> None:
        if not self._done:
            self.fail(TimeoutError("the upstream sent nothing within its read timeout"))
            self._source.abort(self)

    def close(self) -> None:
        """Release the response; a body not read to its end costs the connection."""
        if not self._done:
            self.fail(ConnectionResetError("the response was closed before its end"))
            self._source.abort(self)
        self._chunks.clear()


class BodyChunks:
    """`iter_chunks`: an async iterator written out (mypyc compiles no async generators),
    that ends, like a generator, at the body's end, at the first error it raises, or at
    `aclose`."""

    __slots__ = ("_ended", "_response")

    def __init__(self, response: HttpResponse) -> None:
        self._response = response
        self._ended = False

    def __aiter__(self) -> BodyChunks:
        return self

    async def __anext__(self) -> bytes:
        if not self._ended:
            try:
                chunk = await self._response.next_chunk()
            except BaseException:
                self._ended = True
                raise
            if chunk is not None:
                return chunk
            self._ended = True
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Stop iterating (the response itself stays open: `HttpResponse.close` releases it)."""
        self._ended = True

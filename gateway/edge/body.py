"""Reading a client's request body: a size cap on the wire, a size cap once inflated,
and a deadline for each pause while it arrives.

aiohttp's own inflation is off (`gateway.edge.listener`), so a compressed body arrives
as sent: `max_body_bytes` bounds what crosses the wire and
`max_inflated_body_bytes` what it becomes. Inflation is incremental (zlib's
`max_length`): no step produces more than `STEP` bytes, the event loop runs other
requests between steps, and the first byte over the cap ends it with 413. A gzip
bomb therefore costs milliseconds of CPU, not seconds, and never stalls the loop.

The common case (an uncompressed body already received whole) is taken from aiohttp's
buffer as it is: no timer, no copy, and none of `request.read()`'s calls (two reads of
the stream and a copy into a bytearray and out of it).
"""

from __future__ import annotations

import asyncio
import zlib
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from gateway import errors

STEP = 64 * 1024  # inflated bytes per step between yields to the event loop
# wbits: 16 + 15 reads gzip; 15 the zlib format HTTP calls "deflate"; -15 raw deflate,
# which some clients send as "deflate" (told apart by the first byte, as browsers do).
_GZIP, _ZLIB, _RAW = 31, 15, -15


class Decompressor(Protocol):
    """What the gateway uses of a `zlib.decompressobj`."""

    @property
    def unconsumed_tail(self) -> bytes: ...

    @property
    def eof(self) -> bool: ...

    # No defaults: a compiled module evaluates them (and `...` is not an int).
    def decompress(self, data: bytes, max_length: int, /) -> bytes: ...

    def flush(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class BodyLimits:
    max_bytes: int  # as received
    max_inflated_bytes: int
    timeout_s: float  # longest pause between two reads of the body


async def read_body(request: web.Request, limits: BodyLimits) -> bytes:
    """The body, inflated if it was sent compressed; raises a GatewayError (413, 408,
    415, 400) instead of reading, waiting or inflating past a limit."""
    headers = request.headers
    length = headers.get("content-length")  # digits only: aiohttp's parser checked it
    if length is not None and int(length) > limits.max_bytes:
        raise too_large(limits.max_bytes)
    encoding = headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        content = request.content
        if content.is_eof():  # all here already: taken as it is, no timer, no copy
            body = content.read_nowait()
            if len(body) > limits.max_bytes:  # chunked, so no length to check first
                raise too_large(limits.max_bytes)
            return body
        return b"".join(await _receive(request, limits, None))
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise errors.UnsupportedEncoding(
            f"Content-Encoding '{encoding[:40]}' is not supported; send the body as is, or "
            "with gzip or deflate.")
    inflater = Inflater(encoding, limits.max_inflated_bytes)
    out = await _receive(request, limits, inflater)
    inflater.finish(out)
    return b"".join(out)


async def _receive(request: web.Request, limits: BodyLimits,
                   inflater: Inflater | None) -> list[bytes]:
    out: list[bytes] = []
    received = 0
    content = request.content
    while True:
        try:
            async with asyncio.timeout(limits.timeout_s):
                chunk = await content.readany()
        except TimeoutError:
            raise errors.RequestTimeout(
                f"The request body stopped arriving for {limits.timeout_s:g} s.") from None
        if not chunk:
            return out
        received += len(chunk)
        if received > limits.max_bytes:
            raise too_large(limits.max_bytes)
        if inflater is None:
            out.append(chunk)
        else:
            await inflater.feed(chunk, out)


class Inflater:
    """Incremental gzip/deflate inflation with a cap on the inflated size."""

    def __init__(self, encoding: str, cap: int) -> None:
        self._encoding = encoding
        self._cap = cap
        self._zlib: Decompressor | None = None
        self.size = 0

    def _start(self, first: int) -> Decompressor:
        if self._encoding != "deflate":
            wbits = _GZIP
        else:
            wbits = _ZLIB if first & 0x0F == 8 else _RAW
        self._zlib = zlib.decompressobj(wbits)
        return self._zlib

    async def feed(self, data: bytes, out: list[bytes]) -> None:
        inflate = self._zlib or self._start(data[0])
        pending = data
        while pending:
            try:
                piece = inflate.decompress(pending, STEP)
            except zlib.error:
                raise self._corrupt() from None
            self._take(piece, out)
            pending = inflate.unconsumed_tail
            if pending:
                await asyncio.sleep(0)  # other requests run between steps

    def finish(self, out: list[bytes]) -> None:
        if self._zlib is None:
            return  # an empty body
        try:
            self._take(self._zlib.flush(), out)
        except zlib.error:
            raise self._corrupt() from None
        if not self._zlib.eof:
            raise self._corrupt()

    def _take(self, piece: bytes, out: list[bytes]) -> None:
        self.size += len(piece)
        if self.size > self._cap:
            raise errors.PayloadTooLarge(
                f"The request body inflates to more than the gateway's limit of {self._cap} "
                "bytes.")
        out.append(piece)

    def _corrupt(self) -> errors.InvalidRequest:
        return errors.InvalidRequest(
            f"The request body is not valid {self._encoding} data (Content-Encoding).")


def too_large(limit: int) -> errors.PayloadTooLarge:
    return errors.PayloadTooLarge(
        f"The request body is larger than the gateway's limit of {limit} bytes.")

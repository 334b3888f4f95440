"""Reading a client's body at the edge: whole bodies as sent, the size cap whether or not
the client said the length, over a real socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway import errors
from gateway.edge.body import BodyLimits, read_body

pytestmark = pytest.mark.integration  # a real socket: the slow tier

LIMITS = BodyLimits(max_bytes=64, max_inflated_bytes=256, timeout_s=5.0)


async def _echo(request: web.Request) -> web.Response:
    try:
        body = await read_body(request, LIMITS)
    except errors.GatewayError as exc:
        return web.Response(status=exc.status, text=exc.message)
    return web.Response(body=body)


@pytest.fixture
async def address() -> AsyncIterator[tuple[str, int]]:
    app = web.Application()
    app.router.add_post("/", _echo)
    async with TestServer(app, host="127.0.0.1") as server:
        assert server.port is not None
        yield server.host, server.port


async def _send(address: tuple[str, int], head: bytes, body: bytes) -> bytes:
    """One request written at once (head and body), and the whole answer."""
    reader, writer = await asyncio.open_connection(*address)
    writer.write(b"POST / HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n" + head + b"\r\n" + body)
    answer = await reader.read()
    writer.close()
    return answer


def _chunked(body: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n"


@pytest.mark.parametrize("body", [b"", b"hello", b"x" * 64])
async def test_a_body_within_the_limit_is_read_as_sent(address: tuple[str, int],
                                                       body: bytes) -> None:
    """With a length or chunked, an empty body, a short one and one of exactly the limit
    come back byte for byte."""
    for head, raw in ((b"Content-Length: %d\r\n" % len(body), body),
                      (b"Transfer-Encoding: chunked\r\n", _chunked(body))):
        answer = await _send(address, head, raw)
        assert answer.startswith(b"HTTP/1.1 200")
        assert answer.split(b"\r\n\r\n", 1)[1] == body


async def test_a_body_over_the_limit_is_413_with_or_without_a_length(
        address: tuple[str, int]) -> None:
    """One byte over the limit is refused with 413, whether the length was sent first or the
    body came chunked (so only its size says)."""
    body = b"x" * 65
    for head, raw in ((b"Content-Length: 65\r\n", body),
                      (b"Transfer-Encoding: chunked\r\n", _chunked(body))):
        answer = await _send(address, head, raw)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:60]
        assert b"larger than the gateway's limit of 64 bytes" in answer

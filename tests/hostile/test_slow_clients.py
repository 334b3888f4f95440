"""Threat: slow clients (slowloris). A client that sends its request head one byte at a
time, stops half-way through a body, or opens connections and never uses them, holds
a socket and a file descriptor for as long as the server lets it; enough of them and
no one else can connect. aiohttp alone has no deadline for a request head or a body
and keeps idle connections for 3,630 s.

The gateway closes a connection whose request head has not arrived within
`server.header_timeout_s` (default 60 s), answers 408 when a body pauses for longer
than `server.body_timeout_s` (60 s), and closes idle keep-alive connections after
`server.keepalive_timeout_s` (75 s). These tests run a real gateway process with the
deadlines shortened and attack it over raw sockets.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.config import ServerConfig
from tests.hostile.wire import connect, sim_config
from tests.support.process import gateway_process

pytestmark = pytest.mark.integration  # sockets or processes: the slow tier

SHORT = sim_config(header_timeout_s=1, body_timeout_s=1, keepalive_timeout_s=2)
HEAD = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\n"
        b"Content-Type: application/json\r\nX-Padding: " + b"a" * 200 + b"\r\n")


def test_defaults_are_nginx_like() -> None:
    """Without settings: 60 s for a request head, 60 s for each pause in a body, 75 s idle."""
    server = ServerConfig()
    assert (server.header_timeout_s, server.body_timeout_s, server.keepalive_timeout_s) == (
        60.0, 60.0, 75.0)


async def test_a_head_dribbled_byte_by_byte_is_cut_at_the_header_timeout() -> None:
    """A client sending its headers a byte every 0.1 s (which would take 25 s) is
    disconnected about a second in, while other clients are served."""
    async with gateway_process(SHORT) as gw:
        conn = await connect(gw.root)
        started = time.monotonic()

        async def dribble() -> None:
            for byte in HEAD:
                await conn.send(bytes([byte]))
                await asyncio.sleep(0.1)

        sender = asyncio.create_task(dribble())
        try:
            closed = await conn.closed_after(10)
        finally:
            sender.cancel()
            conn.close()
        elapsed = time.monotonic() - started
        assert closed < 5 and 0.8 < elapsed < 5
        healthy = await connect(gw.root)
        await healthy.send(b"GET /health HTTP/1.1\r\nHost: gateway\r\n\r\n")
        assert await healthy.status_line() == b"HTTP/1.1 200 OK"
        healthy.close()


async def test_an_idle_keep_alive_connection_is_closed_at_the_idle_timeout() -> None:
    """After answering, an unused keep-alive connection is closed at the idle timeout."""
    async with gateway_process(SHORT) as gw:
        conn = await connect(gw.root)
        await conn.send(b"GET /health HTTP/1.1\r\nHost: gateway\r\n\r\n")
        assert await conn.status_line() == b"HTTP/1.1 200 OK"
        closed = await conn.closed_after(10)
        conn.close()
        assert 1.0 < closed < 6


async def test_a_body_that_stops_arriving_gets_408() -> None:
    """A body announced as 1,000 bytes that stops after 10 is answered 408 in OpenAI's
    shape at the body timeout, not waited for."""
    async with gateway_process(SHORT) as gw:
        conn = await connect(gw.root)
        started = time.monotonic()
        await conn.send(HEAD + b"Content-Length: 1000\r\n\r\n" + b'{"model": "')
        assert await conn.status_line() == b"HTTP/1.1 408 Request Timeout"
        body = await conn.reader.read(4096)
        conn.close()
        assert b'"code":"request_timeout"' in body
        assert 0.8 < time.monotonic() - started < 5


async def test_a_connection_that_never_sends_is_closed_at_the_idle_timeout() -> None:
    """A connection opened and left silent is closed at the idle timeout, not kept."""
    async with gateway_process(SHORT) as gw:
        conn = await connect(gw.root)
        closed = await conn.closed_after(10)
        conn.close()
        assert 1.0 < closed < 6

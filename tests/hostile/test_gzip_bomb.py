"""Threat: a request body that is small on the wire and huge once inflated (a gzip
bomb). Checked against its compressed length alone, a 4 MB body of gzipped zeros
passes an 8 MB limit and inflates to about 4 GB; inflated in one go on the event
loop, it costs seconds of CPU while every other request waits.

The gateway inflates request bodies itself, incrementally, at most 64 KiB per step
with the event loop free between steps, and stops at the first byte over
`server.max_inflated_body_bytes` (default 8 MiB) with 413. Measured before the fix
on a 2-core VM: 4.0 s of CPU for one such request and /health stalled up to 0.45 s
(8.5 s and 2.6 s where the problem was first found); after: a few tens of ms and no
stall.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import time
import zlib

import orjson
import pytest

from tests.hostile.wire import connect, cpu_seconds, sim_config
from tests.support.process import gateway_process

pytestmark = pytest.mark.integration  # sockets or processes: the slow tier

CHAT = orjson.dumps({"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]})


def gzip_bomb(compressed_bytes: int) -> bytes:
    """Gzipped zeros, `compressed_bytes` long (about 1,000 times that inflated)."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = io.BytesIO()
    zeros = b"\0" * (1 << 20)
    while out.tell() < compressed_bytes:
        out.write(deflate.compress(zeros))
    out.write(deflate.flush())
    return out.getvalue()


def post(body: bytes, encoding: str) -> bytes:
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\n"
            b"Content-Type: application/json\r\nContent-Encoding: " + encoding.encode() +
            b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


async def _health_latencies(root: str, stop: asyncio.Event, out: list[float]) -> None:
    conn = await connect(root)
    try:
        while not stop.is_set():
            started = time.monotonic()
            await conn.send(b"GET /health HTTP/1.1\r\nHost: gateway\r\n\r\n")
            await conn.status_line()
            await conn.reader.readuntil(b'{"status": "ok"}')
            out.append(time.monotonic() - started)
            await asyncio.sleep(0.02)
    finally:
        conn.close()


async def test_a_4_mb_gzip_bomb_gets_413_for_milliseconds_of_cpu() -> None:
    """A 4 MB gzip bomb (about 4 GB inflated), sent whole, is answered 413 with
    little CPU spent, and /health keeps answering meanwhile."""
    bomb = gzip_bomb(4 * 1024 * 1024)
    async with gateway_process(sim_config()) as gw:
        before = cpu_seconds(gw.proc.pid)
        stop, latencies = asyncio.Event(), []
        health = asyncio.create_task(_health_latencies(gw.root, stop, latencies))
        conn = await connect(gw.root)
        conn.writer.write(post(bomb, "gzip"))
        status = await conn.status_line()
        body = await conn.reader.readuntil(b"}}")
        # Keep sending what is left, as the attacker would: none of it is inflated.
        await conn.writer.drain()
        await asyncio.sleep(1.0)
        stop.set()
        await health
        spent = cpu_seconds(gw.proc.pid) - before
        conn.close()
    assert status == b"HTTP/1.1 413 Request Entity Too Large"
    assert b'"code":"request_too_large"' in body and b"inflates to more than" in body
    assert spent < 1.0, f"{spent:.2f} s of CPU"
    assert latencies and max(latencies) < 1.0


async def test_gzip_and_deflate_bodies_within_the_limits_are_served() -> None:
    """A compressed body under the limits is inflated and served as if sent plainly."""
    async with gateway_process(sim_config()) as gw:
        for encoding, body in (("gzip", gzip.compress(CHAT)), ("deflate", zlib.compress(CHAT))):
            conn = await connect(gw.root)
            await conn.send(post(body, encoding))
            assert await conn.status_line() == b"HTTP/1.1 200 OK", encoding
            conn.close()


async def test_broken_and_unknown_encodings_are_refused_clearly() -> None:
    """A truncated gzip body gets 400, an encoding the gateway does not inflate 415."""
    async with gateway_process(sim_config()) as gw:
        conn = await connect(gw.root)
        await conn.send(post(gzip.compress(CHAT)[:-12], "gzip"))
        assert await conn.status_line() == b"HTTP/1.1 400 Bad Request"
        conn.close()
        conn = await connect(gw.root)
        await conn.send(post(CHAT, "br"))
        assert await conn.status_line() == b"HTTP/1.1 415 Unsupported Media Type"
        conn.close()


async def test_inflated_limit_is_configurable() -> None:
    """`server.max_inflated_body_bytes` caps the inflated size independently of the wire size."""
    padded = orjson.dumps({"model": "gpt-4.1", "messages": [{"role": "user",
                                                             "content": "x" * 20_000}]})
    async with gateway_process(sim_config(max_inflated_body_bytes=10_000)) as gw:
        conn = await connect(gw.root)
        await conn.send(post(gzip.compress(padded), "gzip"))
        assert await conn.status_line() == b"HTTP/1.1 413 Request Entity Too Large"
        conn.close()

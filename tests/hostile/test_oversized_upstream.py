"""Threat: a hostile or broken upstream freezes or bloats the gateway by sending too
much: megabytes of SSE comments before any data, one enormous event, a JSON body
that never ends, a gzip bomb. Before the limits, 64 MB of comments cost seconds of
CPU with /health stalled and a 2 GB body stayed in memory after the 504.

The gateway splits events in linear time, caps one event (`max_event_bytes`) and one
body after decompression (`max_response_bytes`), decompresses a piece at a time,
and ends the attempt as an upstream failure (a 502 the chain may retry or fall back
from before commit; an error event after) with the memory let go.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from aiohttp import web

from gateway.fastpaths.httpclient.errors import BodyTooLarge
from gateway.fastpaths.httpclient.response import HttpResponse
from gateway.sse import EventTooLarge, SSESplitter
from tests.conftest import UPSTREAM_KEY
from tests.fakes.openai_upstream import running_upstream
from tests.hostile.upstream import Hostile, chunk_event, hostile_upstream, sse_response
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.telemetry import attrs
from tests.support.waiting import eventually

KIB = 1024
MIB = 1024 * KIB
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def _config(hostile: str, good: str, fallback: bool) -> str:
    return f"""
providers:
  bad:
    kind: openai
    base_url: "{hostile}"
    api_key: "${{BAD_KEY}}"
    timeout_s: 10
    max_event_bytes: {64 * KIB}
    max_response_bytes: {1 * MIB}
  good:
    kind: openai
    base_url: "{good}"
    api_key: "${{UPSTREAM_KEY}}"
models:
  m:
    provider: bad
    price_per_mtok: {{input: 1, output: 1}}
    {"fallbacks: [ok]" if fallback else ""}
  ok:
    provider: good
    upstream_model: gpt-4.1
    price_per_mtok: {{input: 1, output: 1}}
"""


@contextlib.asynccontextmanager
async def _gateway(hostile: Hostile, client: str, fallback: bool = False
                   ) -> AsyncIterator[RunningGateway]:
    async with running_upstream(api_key=UPSTREAM_KEY) as good, running_gateway(
            _config(hostile.base_url, good.base_url, fallback),
            environ={"BAD_KEY": "sk-bad-0123456789", "UPSTREAM_KEY": UPSTREAM_KEY,
                     "GATEWAY_HTTP_CLIENT": client}) as gw:
        yield gw


CLIENTS = pytest.mark.parametrize("client", ["own", "aiohttp"])


def test_splitting_is_linear_in_the_bytes_fed() -> None:
    """64 MB of one unterminated event in 16 KB chunks is split in well under a second
    (re-scanning the growing buffer took minutes)."""
    splitter = SSESplitter()
    chunk = b": padding line\n" * 1000
    began = time.process_time()
    for _ in range(64 * MIB // len(chunk)):
        assert splitter.feed(chunk) == []
    events = splitter.feed(b"\ndata: x\n\n")
    assert time.process_time() - began < 2.0
    assert len(events) == 2 and events[1] == b"data: x"


def test_an_event_past_the_limit_raises_and_frees_the_buffer() -> None:
    """An event longer than `max_event` raises EventTooLarge, and the splitter holds
    nothing afterwards."""
    splitter = SSESplitter(max_event=64 * KIB)
    with pytest.raises(EventTooLarge):
        for _ in range(100):
            splitter.feed(b"x" * 1000)
    assert splitter.pending == b""


def test_a_gzip_bomb_stops_at_the_limit_not_in_memory() -> None:
    """A 256 MB gzip body (a quarter megabyte on the wire) fails with BodyTooLarge once
    4 MiB are decompressed, and decompressing it holds a few MB, not 256."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = b"".join([packer.compress(b"\0" * MIB) for _ in range(256)] + [packer.flush()])

    class Source:
        aborted = False

        def pause(self, response: HttpResponse) -> None: ...

        def resume(self, response: HttpResponse) -> None: ...

        def abort(self, response: HttpResponse) -> None:
            self.aborted = True

    source = Source()
    loop = asyncio.new_event_loop()
    try:
        response = HttpResponse(source, 200, {"content-encoding": "gzip"}, None, loop,
                                max_body=4 * MIB)
        tracemalloc.start()
        response.feed(bomb)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        with pytest.raises(BodyTooLarge):
            loop.run_until_complete(response.read())
    finally:
        loop.close()
    assert source.aborted
    assert peak < 12 * MIB, peak  # the limit, one piece, the input's unconsumed tail


@pytest.mark.integration  # sockets: the slow tier
@CLIENTS
async def test_comments_before_any_data_end_the_attempt_and_fall_back(client: str) -> None:
    """Megabytes of comment lines before the first event end the attempt as
    `response_too_large`, and the call falls back to the next model."""
    async def comments(request: web.Request) -> web.StreamResponse:
        return await sse_response(request, *[b": padding padding padding\n" * 4000] * 200)

    async with hostile_upstream(comments) as hostile:
        async with _gateway(hostile, client, fallback=True) as gw:
            async with aiohttp.ClientSession() as http:
                body = {**CHAT, "stream": True}
                async with http.post(f"{gw.base_url}/chat/completions", json=body) as r:
                    text = await r.text()
                    assert r.status == 200
                    assert r.headers["x-gateway-model"] == "ok"
                    assert "[DONE]" in text
            failed = [s for s in gw.telemetry.spans_named("chat m")]
            assert attrs(failed[0])["error.type"] == "response_too_large"


@pytest.mark.integration  # sockets: the slow tier
@CLIENTS
async def test_an_enormous_event_mid_stream_ends_it_with_an_error_event(client: str) -> None:
    """One event past the limit after commit ends the stream with the dialect's error
    event (code `response_too_large`), quickly."""
    async def enormous(request: web.Request) -> web.StreamResponse:
        out = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await out.prepare(request)
        await out.write(chunk_event("hi"))
        await asyncio.sleep(0.2)  # committed to the client before the enormous event
        await out.write(b'data: {"choices":[{"delta":{"content":"')
        for _ in range(200):
            await out.write(b"y" * (16 * KIB))
        return out

    async with hostile_upstream(enormous) as hostile:
        async with _gateway(hostile, client) as gw:
            async with aiohttp.ClientSession() as http:
                async with http.post(f"{gw.base_url}/chat/completions",
                                     json={**CHAT, "stream": True}) as r:
                    text = await r.text()
            last = orjson.loads(text.strip().rsplit("data: ", 1)[1])
            assert last["error"]["code"] == "response_too_large"
            span = gw.telemetry.spans_named("chat m")[0]
            assert attrs(span)["gateway.stream.end"] == "too_large"


@pytest.mark.integration  # sockets: the slow tier
@CLIENTS
@pytest.mark.parametrize("encoding", ["identity", "gzip"])
async def test_a_body_past_the_limit_is_a_502_and_the_upstream_is_cut(client: str,
                                                                       encoding: str) -> None:
    """A JSON answer that keeps growing (plain or gzip) gets a 502
    `upstream_response_too_large` once past `max_response_bytes`, long before its end;
    the gateway hangs up on a plain one (a gzip one is on the wire in full at once)."""
    async def endless(request: web.Request) -> web.StreamResponse:
        headers = {"content-type": "application/json"}
        if encoding == "gzip":
            headers["content-encoding"] = "gzip"
        out = web.StreamResponse(headers=headers)
        await out.prepare(request)
        packer = zlib.compressobj(6, zlib.DEFLATED, 31)
        await out.write(b'{"choices":[{"message":{"content":"' if encoding == "identity"
                        else packer.compress(b'{"choices":[{"message":{"content":"'))
        for _ in range(4000):  # 256 MB, unless the gateway hangs up
            block = b"z" * (64 * KIB)
            await out.write(block if encoding == "identity"
                            else packer.compress(block) + packer.flush(zlib.Z_SYNC_FLUSH))
        return out

    async with hostile_upstream(endless) as hostile:
        async with _gateway(hostile, client) as gw:
            async with aiohttp.ClientSession() as http:
                began = time.perf_counter()
                async with http.post(f"{gw.base_url}/chat/completions", json=CHAT) as r:
                    body = await r.json()
                    assert r.status == 502
                assert time.perf_counter() - began < 15  # 256 MB would take far longer
            assert body["error"]["code"] == "upstream_response_too_large"
            if encoding == "gzip":
                return
            assert await eventually(lambda: hostile.disconnects, timeout=3), \
                "the upstream kept sending"


def test_the_limits_default_to_a_careful_operators_choice() -> None:
    """Without settings a provider's limits are 8 MiB per event and 64 MiB per body."""
    from gateway.config import load

    config = load("""
providers:
  p: {kind: openai, base_url: "http://x/v1"}
models:
  m: {provider: p, price_per_mtok: {input: 1, output: 1}}
""", {})
    assert config.providers["p"].max_event_bytes == 8 * MIB
    assert config.providers["p"].max_response_bytes == 64 * MIB

"""The upstream response's body iterator, in memory: a source that records what the
response asks of its connection stands in for the socket. `iter_chunks` is an async
iterator written out (so that mypyc compiles it) and must end as the async generator
it replaced did: at the body's end, after the one error it raises, and at `aclose`."""

from __future__ import annotations

import asyncio

import pytest

from gateway.fastpaths.httpclient.response import HIGH_WATER, LOW_WATER, HttpResponse


class Source:
    """What a connection does for its response, recorded."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause(self, response: HttpResponse) -> None:
        self.calls.append("pause")

    def resume(self, response: HttpResponse) -> None:
        self.calls.append("resume")

    def abort(self, response: HttpResponse) -> None:
        self.calls.append("abort")


def response(source: Source) -> HttpResponse:
    return HttpResponse(source, 200, {"content-type": "text/event-stream"}, None,
                        asyncio.get_running_loop())


async def test_chunks_come_in_order_and_the_end_stays_the_end() -> None:
    """Chunks fed before and while reading come out in order; after the body's end every
    further `anext` raises StopAsyncIteration."""
    answer = response(Source())
    answer.feed(b"data: 1\n\n")
    chunks = answer.iter_chunks()
    assert await anext(chunks) == b"data: 1\n\n"
    waiting = asyncio.ensure_future(anext(chunks))
    await asyncio.sleep(0)
    answer.feed(b"data: 2\n\n")
    assert await waiting == b"data: 2\n\n"
    answer.finish()
    for _ in range(2):
        with pytest.raises(StopAsyncIteration):
            await anext(chunks)
    assert [chunk async for chunk in answer.iter_chunks()] == []


async def test_a_failure_is_raised_once_after_what_arrived() -> None:
    """A body cut short yields what did arrive, raises the failure, then ends."""
    answer = response(Source())
    answer.feed(b"part")
    answer.fail(ConnectionResetError("reset"))
    chunks = answer.iter_chunks()
    assert await anext(chunks) == b"part"
    with pytest.raises(ConnectionResetError):
        await anext(chunks)
    with pytest.raises(StopAsyncIteration):
        await anext(chunks)


async def test_aclose_ends_the_iteration_but_not_the_response() -> None:
    """`aclose` ends that iterator; the response stays open until `close`, which aborts a
    body not read to its end."""
    source = Source()
    answer = response(source)
    answer.feed(b"a")
    chunks = answer.iter_chunks()
    await chunks.aclose()
    with pytest.raises(StopAsyncIteration):
        await anext(chunks)
    assert source.calls == []
    answer.close()
    assert source.calls == ["abort"]


async def test_reading_resumes_a_paused_connection_at_the_low_water_mark() -> None:
    """Past the high-water mark the connection is paused; reading resumes it once the
    unread part is down to the low-water mark, not before."""
    source = Source()
    answer = response(source)
    piece = b"x" * (HIGH_WATER // 4)
    for _ in range(5):
        answer.feed(piece)
    assert source.calls == ["pause"]
    chunks = answer.iter_chunks()
    unread = 5 * len(piece)
    while unread - len(piece) > LOW_WATER:
        await anext(chunks)
        unread -= len(piece)
        assert source.calls == ["pause"]
    await anext(chunks)
    assert source.calls == ["pause", "resume"]

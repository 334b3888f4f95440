"""MemoryProvider: a handler's reply seen as an upstream response (JSON body, list or
async iterator of SSE chunks, headers), the request as the upstream would get it,
and every answer released."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest

from gateway.config import load
from gateway.providers.base import UpstreamRequest
from gateway.testing import MemoryProvider, MemoryRequest, Reply

CONFIG = load("""
providers:
  up: {kind: openai, base_url: "http://upstream.invalid/v1", api_key: "${KEY}"}
models:
  m: {provider: up, upstream_model: up-m, price_per_mtok: {input: 1, output: 1}}
""", {"KEY": "sk-x"})


def _request(stream: bool = False, raw: bytes | None = None) -> UpstreamRequest:
    return UpstreamRequest(operation="chat", path="/chat/completions",
                           body={"model": "up-m", "stream": stream}, stream=stream,
                           model=CONFIG.models["m"], headers={"x-request-id": "r1"}, raw=raw)


async def test_json_reply_and_the_request_the_handler_saw() -> None:
    """A bytes body is a JSON answer; the handler sees path, headers and body bytes."""
    seen: list[MemoryRequest] = []

    def handler(request: MemoryRequest) -> Reply:
        seen.append(request)
        return Reply(201, b'{"ok": true}', {"x-upstream": "yes"})

    provider = MemoryProvider(CONFIG.providers["up"], handler)
    response = await provider.send(_request())
    assert (response.status, await response.read()) == (201, b'{"ok": true}')
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-upstream"] == "yes"
    (request,) = seen
    assert request.path == "/chat/completions" and request.headers["x-request-id"] == "r1"
    assert request.json() == {"model": "up-m", "stream": False}
    assert provider.unclosed == 1
    response.close()
    response.close()
    assert provider.unclosed == 0


async def test_raw_bytes_are_sent_as_they_are() -> None:
    """When the attempt has the body's bytes already, the upstream gets exactly those."""
    seen: list[bytes] = []
    provider = MemoryProvider(CONFIG.providers["up"],
                              lambda request: seen.append(request.content) or Reply())
    (await provider.send(_request(raw=b'{"model":"up-m"}'))).close()
    assert seen == [b'{"model":"up-m"}']


async def test_chunk_list_is_an_event_stream() -> None:
    """A list of chunks is a text/event-stream answer, handed over chunk by chunk."""
    chunks = [b'data: {"a": 1}\n\n', b"data: [DONE]\n\n"]

    async def handler(request: MemoryRequest) -> Reply:
        return Reply(200, chunks)

    response = await MemoryProvider(CONFIG.providers["up"], handler).send(_request(True))
    assert response.headers["content-type"] == "text/event-stream"
    assert [c async for c in response.iter_chunks()] == chunks


async def test_async_iterator_is_closed_with_the_answer() -> None:
    """An async iterator body is read lazily and closed when the reader stops early."""
    finished: list[bool] = []

    async def events() -> AsyncIterator[bytes]:
        try:
            for i in range(10):
                yield orjson.dumps({"i": i})
        finally:
            finished.append(True)

    response = await MemoryProvider(CONFIG.providers["up"],
                                    lambda request: Reply(200, events())).send(_request(True))
    reader = response.iter_chunks()
    assert await anext(reader) == b'{"i":0}'
    await reader.aclose()
    assert finished == [True]


async def test_handler_failure_is_a_transport_failure() -> None:
    """An exception raised by the handler reaches the attempt as the HTTP client's would."""
    def handler(request: MemoryRequest) -> Reply:
        raise ConnectionResetError("reset")

    with pytest.raises(ConnectionResetError):
        await MemoryProvider(CONFIG.providers["up"], handler).send(_request())

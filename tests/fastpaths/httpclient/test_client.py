"""The gateway's upstream HTTP client (gateway/fastpaths/httpclient) against real local servers.

aiohttp web servers stand in for a real upstream where its framing is the point
(JSON, chunked streams, compression, Connection: close); raw asyncio servers are
used where a test needs exact bytes, stalls, closes and resets. Waits are for
conditions the event loop brings about, bounded only so that a broken client
fails instead of hanging; nothing asserts on how long anything took.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import os
import random
import socket
import struct
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import pytest
from aiohttp import web
from aiohttp.web import ContentCoding

from gateway.fastpaths.httpclient import Endpoint, HttpClient, HttpResponse, UpstreamProtocolError
from gateway.fastpaths.httpclient import pool as pool_module
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(60)

T = TypeVar("T")


# ---------------------------------------------------------------------------
# Helpers




async def within(awaitable: Awaitable[T], seconds: float = 10.0) -> T:
    """Await something that must happen; a generous bound turns a hang into a failure (an AssertionError,
    so that it never passes for the client's own TimeoutError)."""
    try:
        async with asyncio.timeout(seconds) as bound:
            return await awaitable
    except TimeoutError:
        if bound.expired():
            raise AssertionError(f"still waiting after {seconds} s") from None
        raise


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def ok(body: bytes = b'{"ok":true}', *extra: str, status: str = "200 OK") -> bytes:
    """A complete HTTP/1.1 response framed by Content-Length."""
    head = [f"HTTP/1.1 {status}", "Content-Type: application/json", *extra,
            f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class Request:
    """One request as a raw server read it off the wire."""

    line: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = [v for n, v in self.headers if n.lower() == name.lower()]
        return values[0] if values else None


class RawConn:
    """The server side of one accepted connection."""

    def __init__(self, server: RawServer, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, number: int) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.number = number  # 0 for the first connection the server accepted

    async def request(self) -> Request | None:
        """The next request on this connection, or None once the client closed or reset it."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
            line, *fields = head[:-4].decode("latin-1").split("\r\n")
            headers = [(name, value.strip()) for name, _, value in (f.partition(":") for f in fields)]
            request = Request(line, headers, b"")
            request.body = await self.reader.readexactly(int(request.header("content-length") or 0))
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        self.server.requests.append(request)
        return request

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def flush(self) -> None:
        await self.writer.drain()

    async def gone(self) -> bytes:
        """Wait until the client closes or aborts this connection; returns what it sent meanwhile."""
        try:
            return await self.reader.read()
        except ConnectionError:
            return b""

    def close(self) -> None:
        """A clean close (FIN): whatever was sent before still arrives."""
        self.writer.close()

    def reset(self) -> None:
        """An abortive close (RST), like a crashed upstream or a middlebox dropping the flow."""
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()


Serve = Callable[[RawConn], Awaitable[None]]


class RawServer:
    def __init__(self, serve: Serve) -> None:
        self._serve = serve
        self.port = 0
        self.connections: list[RawConn] = []
        self.requests: list[Request] = []
        self.errors: list[BaseException] = []
        self.tasks: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def bodies(self) -> list[bytes]:
        return [request.body for request in self.requests]

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = RawConn(self, reader, writer, len(self.connections))
        self.connections.append(conn)
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            await self._serve(conn)
        except asyncio.CancelledError:
            pass  # the test is over
        except Exception as exc:
            self.errors.append(exc)
        finally:
            writer.close()


@asynccontextmanager
async def raw_server(serve: Serve, host: str = "127.0.0.1") -> AsyncIterator[RawServer]:
    server = RawServer(serve)
    listener = await asyncio.start_server(server.accept, host, 0)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()
        for task in server.tasks:
            task.cancel()
        await asyncio.gather(*server.tasks, return_exceptions=True)
        await listener.wait_closed()
    assert not server.errors, server.errors


def keep_alive(body: bytes = b'{"ok":true}', *extra: str) -> Serve:
    """Answer every request on the connection with `body`, for as long as the client keeps it."""

    async def serve(conn: RawConn) -> None:
        while await conn.request() is not None:
            conn.send(ok(body, *extra))

    return serve


def first_then_keep_alive(first: Serve, body: bytes = b"next") -> Serve:
    """The first connection runs `first` once its request has arrived; every later one
    answers each request with `body`."""

    async def serve(conn: RawConn) -> None:
        if conn.number == 0:
            await conn.request()
            await first(conn)
        else:
            await keep_alive(body)(conn)

    return serve


@dataclass
class AppServer:
    url: str
    transports: list[Any]  # one per TCP connection a request arrived on

    @property
    def connections(self) -> int:
        return len({id(t) for t in self.transports})


@asynccontextmanager
async def app_server(routes: list[web.RouteDef]) -> AsyncIterator[AppServer]:
    """An aiohttp web server on 127.0.0.1 that counts the TCP connections requests came on."""
    transports: list[Any] = []  # holding them keeps their ids unique

    @web.middleware
    async def count(request: web.Request,
                    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if not any(t is request.transport for t in transports):
            transports.append(request.transport)
        return await handler(request)

    app = web.Application(middlewares=[count])
    app.add_routes(routes)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield AppServer(f"http://127.0.0.1:{port}", transports)
    finally:
        await runner.cleanup()


def endpoint(client: HttpClient, url: str, headers: Mapping[str, str] | None = None, *,
             read_timeout: float | None = 10.0) -> Endpoint:
    return client.endpoint(url, headers or {}, connect_timeout=5.0, read_timeout=read_timeout)


async def post_read(ep: Endpoint, body: bytes = b"{}", path: str = "/") -> bytes:
    response = await within(ep.post(path, body, {}))
    assert response.status == 200, response.status
    return await within(response.read())


async def collect(chunks: AsyncIterator[bytes], parts: list[bytes] | None = None,
                  yield_each: bool = False) -> list[bytes]:
    """Every chunk of a body, appended to `parts` as they come (so a failure leaves what did arrive)."""
    parts = [] if parts is None else parts
    async for chunk in chunks:
        parts.append(chunk)
        if yield_each:
            await asyncio.sleep(0)  # a slow reader: let the transport run between chunks
    return parts


async def first_chunk(response: HttpResponse) -> bytes:
    """The first piece of a body, leaving the rest unread."""
    chunks = cast(AsyncGenerator[bytes, None], response.iter_chunks())
    try:
        return await within(anext(chunks))
    finally:
        await chunks.aclose()


def transport_of(response: HttpResponse) -> Any:
    """White box: the transport under a response, to see whether the client paused reading."""
    return response._source.transport  # type: ignore[attr-defined]


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    http = HttpClient()
    yield http
    await http.close()
    # Aborted transports finish closing on the loop; let them before the loop goes away.
    assert await eventually(lambda: http.open_connections == 0), http.open_connections


# ---------------------------------------------------------------------------
# Response bodies and their framing


@pytest.mark.integration
async def test_json_body_framed_by_content_length(client: HttpClient) -> None:
    """A JSON answer with Content-Length from aiohttp: the status, lowercase header names and the exact
    body."""
    payload = {"id": "chatcmpl-1", "choices": [{"message": {"content": "héllo ✓"}}]}

    async def handler(request: web.Request) -> web.Response:
        assert await request.json() == {"q": 1}
        return web.json_response(payload, headers={"X-Upstream-Id": "u-42"})

    async with app_server([web.post("/v1/chat", handler)]) as server:
        response = await within(endpoint(client, server.url + "/v1").post("/chat", b'{"q": 1}', {}))
        body = await within(response.read())
    assert response.status == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.headers["x-upstream-id"] == "u-42"
    assert response.headers["content-length"] == str(len(body))
    assert json.loads(body) == payload


@pytest.mark.integration
async def test_status_and_head_fields_pass_through(client: HttpClient) -> None:
    """A non-2xx status comes back as such with its body; repeated header fields are joined with ', '."""
    answer = ok(b'{"error":"slow down"}', "Retry-After: 3", "X-Multi: a", "x-multi: b",
                status="429 Too Many Requests")

    async def serve(conn: RawConn) -> None:
        await conn.request()
        conn.send(answer)
        await conn.gone()

    async with raw_server(serve) as server:
        response = await within(endpoint(client, server.url).post("/", b"{}", {}))
        assert response.status == 429
        assert response.headers["retry-after"] == "3"
        assert response.headers["x-multi"] == "a, b"
        assert await within(response.read()) == b'{"error":"slow down"}'


@pytest.mark.integration
async def test_chunked_body_from_aiohttp(client: HttpClient) -> None:
    """A Transfer-Encoding: chunked answer reads back as the pieces joined, none of the framing in it."""
    parts = [b"alpha ", b"", b"beta " * 1000, b"gamma"]

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for part in parts:
            await response.write(part)
        await response.write_eof()
        return response

    async with app_server([web.post("/", handler)]) as server:
        response = await within(endpoint(client, server.url).post("/", b"{}", {}))
        assert response.headers["transfer-encoding"] == "chunked"
        assert await within(response.read()) == b"".join(parts)


@pytest.mark.integration
async def test_chunked_body_with_extensions_and_trailers_keeps_the_connection(client: HttpClient) -> None:
    """Exact chunked bytes with a chunk extension and a trailer: the body is right and the framing is consumed
    exactly, so the next request on the same connection gets its own answer."""
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")

    async def serve(conn: RawConn) -> None:
        await conn.request()
        conn.send(chunked)
        while await conn.request() is not None:
            conn.send(ok(b"second"))

    async with raw_server(serve) as server:
        ep = endpoint(client, server.url)
        assert await post_read(ep) == b"hello world"
        assert await post_read(ep) == b"second"
    assert len(server.connections) == 1


@pytest.mark.integration
async def test_body_delimited_by_connection_close(client: HttpClient) -> None:
    """No Content-Length and no chunking: the body is everything until the server closes (sent in two goes,
    the second after the client has the head), and the next request goes out on a new connection."""
    rest = asyncio.Event()

    async def first(conn: RawConn) -> None:
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst part, ")
        await rest.wait()
        conn.send(b"second part")
        await conn.flush()
        conn.close()

    async with raw_server(first_then_keep_alive(first)) as server:
        ep = endpoint(client, server.url)
        response = await within(ep.post("/", b"{}", {}))
        rest.set()
        assert await within(response.read()) == b"first part, second part"
        assert await post_read(ep) == b"next"
    assert len(server.connections) == 2


@pytest.mark.integration
async def test_body_delimited_by_close_but_ended_by_a_reset_is_an_error(client: HttpClient) -> None:
    """A close-delimited body that ends in a reset instead of a clean close raises ConnectionResetError rather
    than passing for a complete (truncated) body."""
    cut = asyncio.Event()

    async def serve(conn: RawConn) -> None:
        await conn.request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npartial")
        await cut.wait()
        conn.reset()

    async with raw_server(serve) as server:
        response = await within(endpoint(client, server.url).post("/", b"{}", {}))
        cut.set()
        with pytest.raises(ConnectionResetError):
            await within(response.read())


@pytest.mark.integration
async def test_204_has_no_body_and_keeps_the_connection(client: HttpClient) -> None:
    """A 204 with neither Content-Length nor chunking ends at its head (it is not read until the close):
    read() gives b"" and the connection is reused."""

    async def serve(conn: RawConn) -> None:
        while await conn.request() is not None:
            conn.send(b"HTTP/1.1 204 No Content\r\nX-Seq: 1\r\n\r\n")

    async with raw_server(serve) as server:
        ep = endpoint(client, server.url)
        for _ in range(2):
            response = await within(ep.post("/", b"{}", {}))
            assert response.status == 204
            assert await within(response.read()) == b""
    assert len(server.connections) == 1


@pytest.mark.integration
async def test_informational_response_is_skipped(client: HttpClient) -> None:
    """A 100 Continue ahead of the answer is not the answer: post() returns the 200 and its body."""

    async def serve(conn: RawConn) -> None:
        await conn.request()
        conn.send(b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"final"))
        await conn.gone()

    async with raw_server(serve) as server:
        response = await within(endpoint(client, server.url).post("/", b"{}", {}))
        assert response.status == 200
        assert await within(response.read()) == b"final"


# ---------------------------------------------------------------------------
# Keep-alive


@pytest.mark.integration
async def test_sequential_requests_reuse_one_connection(client: HttpClient) -> None:
    """Three requests one after the other travel on one TCP connection (counted by the server)."""

    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"n": (await request.json())["n"]})

    async with app_server([web.post("/", handler)]) as server:
        ep = endpoint(client, server.url)
        for n in range(3):
            assert json.loads(await post_read(ep, json.dumps({"n": n}).encode())) == {"n": n}
        assert client.open_connections == 1
    assert server.connections == 1


@pytest.mark.integration
async def test_concurrent_requests_each_get_a_connection_then_share_them(client: HttpClient) -> None:
    """Four requests in flight at once (the server holds each until all four arrived) use four connections;
    a second wave of four reuses those and opens none."""
    barrier = asyncio.Barrier(4)

    async def handler(request: web.Request) -> web.Response:
        await barrier.wait()
        return web.Response(body=await request.read())

    async with app_server([web.post("/", handler)]) as server:
        ep = endpoint(client, server.url)
        for wave in range(2):
            bodies = [f"{wave}-{i}".encode() for i in range(4)]
            assert await within(asyncio.gather(*(post_read(ep, b) for b in bodies))) == bodies
            assert server.connections == 4
    assert client.open_connections == 4


@pytest.mark.parametrize("head", [
    pytest.param("HTTP/1.1 200 OK\r\nConnection: close", id="http11-connection-close"),
    pytest.param("HTTP/1.0 200 OK", id="http10-without-keep-alive"),
])
@pytest.mark.integration
async def test_server_refusing_keep_alive_is_honoured(client: HttpClient, head: str) -> None:
    """An answer that ends the connection (Connection: close, or HTTP/1.0 without keep-alive) is not followed
    by another request on it, even though this server would keep it open and answer there: the client closes
    it."""

    async def serve(conn: RawConn) -> None:
        while await conn.request() is not None:
            conn.send(f"{head}\r\nContent-Length: 2\r\n\r\n".encode() + b"{}")

    async with raw_server(serve) as server:
        ep = endpoint(client, server.url)
        assert await post_read(ep) == b"{}"
        assert await post_read(ep) == b"{}"
        assert await eventually(lambda: client.open_connections == 0)
    assert len(server.connections) == 2


@pytest.mark.integration
async def test_connection_close_from_aiohttp_is_honoured(client: HttpClient) -> None:
    """aiohttp's force_close (Connection: close): each request opens its own connection."""

    async def handler(request: web.Request) -> web.Response:
        response = web.Response(body=b"bye")
        response.force_close()
        return response

    async with app_server([web.post("/", handler)]) as server:
        ep = endpoint(client, server.url)
        for _ in range(3):
            assert await post_read(ep) == b"bye"
        assert await eventually(lambda: client.open_connections == 0)
    assert server.connections == 3


@pytest.mark.integration
async def test_idle_connection_past_the_keepalive_limit_is_not_reused(
        client: HttpClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """An idle connection older than KEEPALIVE_S is closed instead of reused (limit patched below zero)."""
    monkeypatch.setattr(pool_module, "KEEPALIVE_S", -1.0)
    async with raw_server(keep_alive()) as server:
        ep = endpoint(client, server.url)
        await post_read(ep)
        await post_read(ep)
    assert len(server.connections) == 2


@pytest.mark.integration
async def test_unsolicited_bytes_on_an_idle_connection_drop_it(client: HttpClient) -> None:
    """Bytes arriving on an idle connection (nobody asked) make it untrustworthy: it is dropped, and the next
    request goes out on a new connection and gets its own answer."""
    answered = asyncio.Event()

    async def first(conn: RawConn) -> None:
        conn.send(ok(b"first"))
        await answered.wait()
        conn.send(ok(b"stale"))
        await conn.gone()

    async with raw_server(first_then_keep_alive(first, b"fresh")) as server:
        ep = endpoint(client, server.url)
        assert await post_read(ep) == b"first"
        answered.set()
        assert await eventually(lambda: client.open_connections == 0)
        assert await post_read(ep) == b"fresh"
    assert len(server.connections) == 2


# ---------------------------------------------------------------------------
# The keep-alive race


@pytest.mark.integration
async def test_idle_connection_closed_by_the_server_is_not_used(client: HttpClient) -> None:
    """The server closes a kept-alive connection while it is idle; once the client noticed, the next request
    goes out on a new connection and succeeds (and was sent once)."""

    async def serve(conn: RawConn) -> None:
        await conn.request()
        conn.send(ok(f"conn {conn.number}".encode()))
        await conn.flush()
        conn.close()

    async with raw_server(serve) as server:
        ep = endpoint(client, server.url)
        assert await post_read(ep, b"1") == b"conn 0"
        assert await eventually(lambda: client.open_connections == 0)
        assert await post_read(ep, b"2") == b"conn 1"
    assert server.bodies == [b"1", b"2"]


@pytest.mark.parametrize("how", ["close", "reset"])
@pytest.mark.integration
async def test_reused_connection_closed_before_any_answer_is_retried_once(client: HttpClient,
                                                                         how: str) -> None:
    """The keep-alive race: the server gives up a reused connection just as the next request reaches it,
    without a byte of answer (clean close or reset). The client sends that request again on a new
    connection."""

    async def first(conn: RawConn) -> None:
        conn.send(ok(b"first"))
        await conn.request()  # the second request arrives ...
        conn.close() if how == "close" else conn.reset()  # ... and is never answered

    async with raw_server(first_then_keep_alive(first, b"second")) as server:
        ep = endpoint(client, server.url)
        assert await post_read(ep, b"1") == b"first"
        assert await post_read(ep, b"2") == b"second"
    assert len(server.connections) == 2
    assert server.bodies == [b"1", b"2", b"2"]


@pytest.mark.integration
async def test_new_connection_closed_before_any_answer_is_not_retried(client: HttpClient) -> None:
    """Only a reused connection gets the second chance: a request whose brand-new connection is closed
    unanswered fails with ConnectionResetError, sent once."""

    async def serve(conn: RawConn) -> None:
        await conn.request()
        conn.close()

    async with raw_server(serve) as server:
        with pytest.raises(ConnectionResetError):
            await within(endpoint(client, server.url).post("/", b"1", {}))
    assert len(server.connections) == 1
    assert server.bodies == [b"1"]


@pytest.mark.integration
async def test_reused_connection_closed_after_part_of_the_head_is_not_retried(client: HttpClient) -> None:
    """A reused connection that closes after part of the answer's head arrived: the upstream has seen the
    request, so the client raises ConnectionResetError instead of sending it again."""

    async def serve(conn: RawConn) -> None:
        await conn.request()
        conn.send(ok(b"first"))
        await conn.request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Le")
        await conn.flush()
        conn.close()  # a clean close: those bytes surely arrive before the end

    async with raw_server(serve) as server:
        ep = endpoint(client, server.url)
        assert await post_read(ep, b"1") == b"first"
        with pytest.raises(ConnectionResetError):
            await within(ep.post("/", b"2", {}))
    assert len(server.connections) == 1
    assert server.bodies == [b"1", b"2"]


@pytest.mark.integration
async def test_reset_in_the_middle_of_a_body_raises_from_read(client: HttpClient) -> None:
    """A reset after the head and part of the body: read() raises ConnectionResetError (no short body, no
    second sending of the request), and the next request gets a new connection."""
    cut = asyncio.Event()

    async def first(conn: RawConn) -> None:
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        await cut.wait()
        conn.reset()

    async with raw_server(first_then_keep_alive(first)) as server:
        ep = endpoint(client, server.url)
        response = await within(ep.post("/", b"1", {}))
        cut.set()
        with pytest.raises(ConnectionResetError):
            await within(response.read())
        assert server.bodies == [b"1"]
        assert await post_read(ep, b"2") == b"next"
    assert len(server.connections) == 2


# ---------------------------------------------------------------------------
# The request on the wire


@pytest.mark.parametrize(("base_path", "prefix"), [("/v1/", "/v1"), ("/v1", "/v1"), ("", "")])
@pytest.mark.integration
async def test_request_bytes(client: HttpClient, base_path: str, prefix: str) -> None:
    """What the client writes: POST to base path + path, Host with the non-default port, the fixed headers
    then the per-request ones in order, Content-Length of the body, and the body byte for byte."""
    body = json.dumps({"model": "m", "messages": [{"content": "é ✓"}]}, ensure_ascii=False).encode()
    async with raw_server(keep_alive()) as server:
        ep = client.endpoint(server.url + base_path,
                             {"Authorization": "Bearer sk-1", "Content-Type": "application/json"},
                             connect_timeout=5.0, read_timeout=10.0)
        response = await within(ep.post("/chat/completions", body,
                                         {"traceparent": "00-0af7-b7ad-01", "X-Request-Id": "req-7"}))
        await within(response.read())
    (request,) = server.requests
    assert request.line == f"POST {prefix}/chat/completions HTTP/1.1"
    assert request.headers == [
        ("Host", f"127.0.0.1:{server.port}"),
        ("Authorization", "Bearer sk-1"),
        ("Content-Type", "application/json"),
        ("traceparent", "00-0af7-b7ad-01"),
        ("X-Request-Id", "req-7"),
        ("Content-Length", str(len(body))),
    ]
    assert request.body == body


@pytest.mark.integration
async def test_host_header_brackets_an_ipv6_literal(client: HttpClient) -> None:
    """An IPv6 base URL: the client connects to it and sends Host: [::1]:port."""
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    async with raw_server(keep_alive(), host="::1") as server:
        assert await post_read(endpoint(client, f"http://[::1]:{server.port}/v1")) == b'{"ok":true}'
    (request,) = server.requests
    assert request.header("host") == f"[::1]:{server.port}"


@pytest.mark.parametrize(("name", "value"), [
    ("X-Note", "a\r\nInjected: yes"),
    ("X-Note", "a\nb"),
    ("X-Note", "a\rb"),
    ("X-Bad\r\nName", "v"),
    ("X-Bad:Name", "v"),
])
def test_line_break_in_a_fixed_header_is_refused(name: str, value: str) -> None:
    """A fixed header whose name or value could break the request head is refused with ValueError."""
    with pytest.raises(ValueError):
        HttpClient().endpoint("http://127.0.0.1:9/v1", {"Authorization": "Bearer k", name: value},
                              connect_timeout=1.0, read_timeout=1.0)


@pytest.mark.integration
async def test_line_break_in_a_per_request_header_value_is_not_sent(client: HttpClient) -> None:
    """A per-request header value with CR or LF is left out: nothing can be smuggled into the request head."""
    async with raw_server(keep_alive()) as server:
        response = await within(endpoint(client, server.url).post(
            "/", b"{}", {"X-Fine": "yes", "X-Evil": "x\r\nInjected: yes", "X-Lf": "a\nb"}))
        await within(response.read())
    (request,) = server.requests
    names = [name.lower() for name, _ in request.headers]
    assert "x-fine" in names
    assert not {"x-evil", "injected", "x-lf", "b"} & set(names)


@pytest.mark.integration
async def test_line_break_or_colon_in_a_per_request_header_name_is_not_sent(client: HttpClient) -> None:
    """A per-request header whose name has CR, LF or a colon is left out as well."""
    async with raw_server(keep_alive()) as server:
        response = await within(endpoint(client, server.url).post(
            "/", b"{}", {"X-Fine": "yes", "X-Evil\r\nInjected": "x", "X-Bad:Name": "y", "X\nLf": "z"}))
        await within(response.read())
    (request,) = server.requests
    names = [name.lower() for name, _ in request.headers]
    assert "x-fine" in names
    assert not {"x-evil", "injected", "x-bad", "x-bad:name", "lf", "x"} & set(names)


async def test_each_endpoint_keeps_its_own_connect_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two providers on one origin share its pool but not their connect timeouts: a connect that
    never completes fails after the short one's timeout for it, and is still waiting for the other."""
    loop = asyncio.get_running_loop()

    async def never_connects(*args: Any, **kwargs: Any) -> Any:
        await asyncio.Event().wait()

    monkeypatch.setattr(loop, "create_connection", never_connects)
    client = HttpClient()
    short = client.endpoint("http://127.0.0.1:9/v1", {}, connect_timeout=0.05, read_timeout=None)
    long = client.endpoint("http://127.0.0.1:9/other", {}, connect_timeout=60.0, read_timeout=None)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(short.post("/", b"{}", {}), timeout=10)
    pending = asyncio.ensure_future(long.post("/", b"{}", {}))
    done, _ = await asyncio.wait({pending}, timeout=0.5)
    assert not done  # the 0.05 s of the other endpoint does not apply
    pending.cancel()
    await client.close()


def test_base_url_must_be_http_or_https_with_a_host() -> None:
    """Anything but http(s)://host[:port]/path is refused when the endpoint is made."""
    for url in ("ftp://example.com/v1", "http:///v1", "example.com/v1"):
        with pytest.raises(ValueError):
            HttpClient().endpoint(url, {}, connect_timeout=1.0, read_timeout=1.0)


# ---------------------------------------------------------------------------
# Read timeouts


@pytest.mark.integration
async def test_no_answer_within_the_read_timeout(client: HttpClient) -> None:
    """The server takes the request and never answers: post() raises TimeoutError, the connection is dropped
    (the server sees it go) and the next request gets a new one."""
    dropped = asyncio.Event()

    async def first(conn: RawConn) -> None:
        assert await conn.gone() == b""
        dropped.set()

    async with raw_server(first_then_keep_alive(first)) as server:
        ep = endpoint(client, server.url, read_timeout=0.1)
        with pytest.raises(TimeoutError):
            await within(ep.post("/", b"1", {}))
        await within(dropped.wait())
        assert await post_read(ep, b"2") == b"next"
    assert len(server.connections) == 2


@pytest.mark.parametrize("how", ["read", "iter_chunks"])
@pytest.mark.integration
async def test_body_stalling_past_the_read_timeout(client: HttpClient, how: str) -> None:
    """The head and part of the body arrive, then nothing: reading raises TimeoutError (iter_chunks after
    yielding what did arrive), the connection is dropped, and the next request gets a new one."""
    dropped = asyncio.Event()

    async def first(conn: RawConn) -> None:
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345")
        await conn.gone()
        dropped.set()

    async with raw_server(first_then_keep_alive(first)) as server:
        ep = endpoint(client, server.url, read_timeout=0.1)
        response = await within(ep.post("/", b"1", {}))
        received: list[bytes] = []
        with pytest.raises(TimeoutError):
            if how == "read":
                await within(response.read())
            else:
                await within(collect(response.iter_chunks(), received))
        if how == "iter_chunks":
            assert b"".join(received) == b"12345"
        await within(dropped.wait())
        assert await post_read(ep, b"2") == b"next"
    assert len(server.connections) == 2


# ---------------------------------------------------------------------------
# Streaming and flow control


@pytest.mark.integration
async def test_iter_chunks_yields_each_chunk_as_it_arrives(client: HttpClient) -> None:
    """Server-sent events: the first event is yielded while the server is still holding back the rest (it
    waits for the test to have the first); then the stream ends and its connection is reused."""
    release = asyncio.Event()

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: 1\n\n")
        await release.wait()
        await response.write(b"data: 2\n\n")
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async with app_server([web.post("/", stream)]) as server:
        ep = endpoint(client, server.url)
        response = await within(ep.post("/", b"{}", {}))
        assert response.headers["content-type"] == "text/event-stream"
        chunks = response.iter_chunks()
        assert await within(anext(chunks)) == b"data: 1\n\n"
        release.set()
        rest = await within(collect(chunks))
        assert b"".join(rest) == b"data: 2\n\ndata: [DONE]\n\n"
        release.clear()
        response = await within(ep.post("/", b"{}", {}))
        release.set()
        assert b"".join(await within(collect(response.iter_chunks()))).count(b"data:") == 3
    assert server.connections == 1


BIG = random.Random(7).randbytes(8 << 20)


@pytest.mark.parametrize("how", ["iter_chunks", "read", "read_after_pause"])
@pytest.mark.integration
async def test_large_fast_body_read_slowly_arrives_intact(client: HttpClient, how: str) -> None:
    """An 8 MB body sent as fast as aiohttp can, to a reader that lags: the client stops reading from the
    socket while its buffer is full (iter_chunks, or read() called only then), every byte arrives in order
    whether read chunk by chunk or with read(), and the connection is reused afterwards."""

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=BIG, content_type="application/octet-stream")

    async with app_server([web.post("/", handler)]) as server:
        ep = endpoint(client, server.url)
        response = await within(ep.post("/", b"{}", {}))
        assert response.headers["content-length"] == str(len(BIG))
        if how in ("iter_chunks", "read_after_pause"):
            transport = transport_of(response)
            assert await eventually(lambda: not transport.is_reading()), "the client never paused reading"
        if how == "iter_chunks":
            body = b"".join(await within(collect(response.iter_chunks(), yield_each=True)))
        else:
            body = await within(response.read())
        assert len(body) == len(BIG)
        assert hashlib.sha256(body).digest() == hashlib.sha256(BIG).digest()
        assert await post_read(ep) == BIG
    assert server.connections == 1


# ---------------------------------------------------------------------------
# Closing and cancelling


@pytest.mark.integration
async def test_close_before_the_end_of_the_body_drops_the_connection(client: HttpClient) -> None:
    """close() on a response whose body has not all arrived aborts its connection (the server sees it go); the
    closed response reads as an error; the pool carries on with a new connection."""
    dropped = asyncio.Event()

    async def first(conn: RawConn) -> None:
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart")
        await conn.gone()
        dropped.set()

    async with raw_server(first_then_keep_alive(first)) as server:
        ep = endpoint(client, server.url)
        response = await within(ep.post("/", b"1", {}))
        assert await first_chunk(response) == b"part"
        response.close()
        with pytest.raises(ConnectionError):
            await within(response.read())
        await within(dropped.wait())
        assert await eventually(lambda: client.open_connections == 0)
        assert await post_read(ep, b"2") == b"next"
        assert await post_read(ep, b"3") == b"next"
    assert len(server.connections) == 2


@pytest.mark.integration
async def test_close_after_the_whole_body_keeps_the_connection(client: HttpClient) -> None:
    """close() after read() (what the gateway does) costs nothing: the next request reuses the connection."""
    async with raw_server(keep_alive()) as server:
        ep = endpoint(client, server.url)
        for _ in range(2):
            response = await within(ep.post("/", b"{}", {}))
            await within(response.read())
            response.close()
    assert len(server.connections) == 1


@pytest.mark.integration
async def test_cancelling_a_pending_post_drops_its_connection(client: HttpClient) -> None:
    """A post() cancelled while waiting for the answer raises CancelledError, its connection is aborted (the
    server sees it go) and the next request gets a new one."""
    arrived, dropped = asyncio.Event(), asyncio.Event()

    async def first(conn: RawConn) -> None:
        arrived.set()
        await conn.gone()
        dropped.set()

    async with raw_server(first_then_keep_alive(first)) as server:
        ep = endpoint(client, server.url)
        pending = asyncio.create_task(ep.post("/", b"1", {}))
        await within(arrived.wait())
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        await within(dropped.wait())
        assert await post_read(ep, b"2") == b"next"
    assert len(server.connections) == 2


@pytest.mark.integration
async def test_cancel_after_the_answer_arrived_leaves_the_pooled_connection_alone(client: HttpClient) -> None:
    """A post() cancelled just after its whole answer came in (its connection already back in the pool, the
    task not yet resumed) must not abort that connection: the request that took it from the pool meanwhile is
    answered on it, not cut off and sent to the upstream a second time."""
    async with raw_server(keep_alive()) as server:
        ep = endpoint(client, server.url)
        idle = next(iter(client._pools.values()))._idle  # white box: to catch that exact instant
        first = asyncio.create_task(ep.post("/", b"1", {}))
        async with asyncio.timeout(10):
            # One loop turn at a time, until the answer is in and the connection pooled: `first`
            # is woken in that same turn, so it resumes only after us.
            while not idle:  # noqa: ASYNC110
                await asyncio.sleep(0)
        assert not first.done()
        first.cancel()
        assert await post_read(ep, b"2") == b'{"ok":true}'
        with pytest.raises(asyncio.CancelledError):
            await first
    assert server.bodies == [b"1", b"2"]
    assert len(server.connections) == 1


# ---------------------------------------------------------------------------
# Content encodings


@pytest.mark.parametrize("coding", [ContentCoding.gzip, ContentCoding.deflate])
@pytest.mark.integration
async def test_compressed_body_is_decoded(client: HttpClient, coding: ContentCoding) -> None:
    """A body aiohttp compressed (asked for with Accept-Encoding) reads back as the original bytes, with
    read() and with iter_chunks."""
    payload = json.dumps({"data": [{"embedding": [i / 7 for i in range(2000)]}]}).encode()

    async def handler(request: web.Request) -> web.Response:
        response = web.Response(body=payload, content_type="application/json")
        response.enable_compression(coding)
        return response

    async with app_server([web.post("/", handler)]) as server:
        ep = endpoint(client, server.url, {"Accept-Encoding": coding.value})
        response = await within(ep.post("/", b"{}", {}))
        assert response.headers["content-encoding"] == coding.value
        assert await within(response.read()) == payload
        response = await within(ep.post("/", b"{}", {}))
        assert b"".join(await within(collect(response.iter_chunks()))) == payload


@pytest.mark.integration
async def test_gzip_body_split_at_every_byte_is_decoded(client: HttpClient) -> None:
    """A gzip body arriving in tiny pieces (sent one chunk per byte) still decodes to the original."""
    payload = b'{"text":"' + b"abc" * 200 + b'"}'
    packed = gzip.compress(payload)
    chunked = b"".join(b"1\r\n" + packed[i:i + 1] + b"\r\n" for i in range(len(packed))) + b"0\r\n\r\n"

    async def serve(conn: RawConn) -> None:
        await conn.request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i in range(0, len(chunked), 7):
            conn.send(chunked[i:i + 7])
            await conn.flush()
        await conn.gone()

    async with raw_server(serve) as server:
        assert await post_read(endpoint(client, server.url)) == payload


@pytest.mark.integration
async def test_unsupported_content_encoding_raises_on_read(client: HttpClient) -> None:
    """Content-Encoding br (which the client cannot decode): the head comes back, reading raises
    UpstreamProtocolError, and the pool still serves the next request."""
    async with raw_server(keep_alive(b"\x1b\x03\x00\xf8", "Content-Encoding: br")) as server:
        ep = endpoint(client, server.url)
        response = await within(ep.post("/", b"{}", {}))
        assert response.status == 200
        with pytest.raises(UpstreamProtocolError, match="br"):
            await within(response.read())
        response.close()
        response = await within(ep.post("/", b"{}", {}))
        with pytest.raises(UpstreamProtocolError):
            await within(collect(response.iter_chunks()))
        response.close()


@pytest.mark.integration
async def test_corrupt_gzip_raises_and_drops_the_connection(client: HttpClient) -> None:
    """A body labelled gzip that does not decompress: read() raises UpstreamProtocolError and the connection
    is dropped (the server sees it go)."""
    dropped = asyncio.Event()

    async def serve(conn: RawConn) -> None:
        await conn.request()
        body = b"definitely not gzip" * 10
        conn.send(f"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {len(body) * 2}\r\n\r\n"
                  .encode() + body)
        await conn.gone()
        dropped.set()

    async with raw_server(serve) as server:
        response = await within(endpoint(client, server.url).post("/", b"{}", {}))
        with pytest.raises(UpstreamProtocolError):
            await within(response.read())
        await within(dropped.wait())


# ---------------------------------------------------------------------------
# Invalid HTTP and failed connections


@pytest.mark.parametrize("garbage", [
    pytest.param(b"SSH-2.0-OpenSSH_9.6\r\n", id="not-http"),
    pytest.param(b"HTTP/1.1 2x0 OK\r\n\r\n", id="bad-status"),
    pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n", id="bad-content-length"),
    pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                 id="both-lengths"),
])
@pytest.mark.integration
async def test_invalid_http_raises_protocol_error(client: HttpClient, garbage: bytes) -> None:
    """An answer that is not valid HTTP/1.1: post() raises UpstreamProtocolError, which is a ConnectionError
    (so the provider reports the upstream unreachable), and the connection is dropped."""
    dropped = asyncio.Event()

    async def serve(conn: RawConn) -> None:
        await conn.request()
        conn.send(garbage)
        await conn.gone()
        dropped.set()

    async with raw_server(serve) as server:
        with pytest.raises(UpstreamProtocolError) as caught:
            await within(endpoint(client, server.url).post("/", b"{}", {}))
        assert isinstance(caught.value, ConnectionError)
        await within(dropped.wait())


@pytest.mark.integration
async def test_invalid_chunk_framing_raises_from_read(client: HttpClient) -> None:
    """A valid head, then a chunk size that is not hex: read() raises UpstreamProtocolError and the connection
    is dropped (the server sees it go)."""
    dropped = asyncio.Event()

    async def serve(conn: RawConn) -> None:
        await conn.request()
        conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n")
        await conn.gone()
        dropped.set()

    async with raw_server(serve) as server:
        response = await within(endpoint(client, server.url).post("/", b"{}", {}))
        assert response.status == 200
        with pytest.raises(UpstreamProtocolError):
            await within(response.read())
        await within(dropped.wait())


@pytest.mark.integration
async def test_connection_refused(client: HttpClient) -> None:
    """Nothing listening on the port (bound, not listening): post() raises ConnectionRefusedError, an
    OSError."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        with pytest.raises(ConnectionRefusedError):
            await within(endpoint(client, f"http://127.0.0.1:{port}/v1").post("/chat", b"{}", {}))
    assert client.open_connections == 0


@pytest.mark.integration
async def test_client_close_closes_its_connections(client: HttpClient) -> None:
    """HttpClient.close() closes idle connections and aborts busy ones: the server sees both go, the
    unfinished body fails, and a post afterwards raises an OSError without connecting."""
    gone = 0

    async def serve(conn: RawConn) -> None:
        nonlocal gone
        while (request := await conn.request()) is not None:
            if request.body == b"hold":
                conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345")
                break
            conn.send(ok())
        await conn.gone()
        gone += 1

    async with raw_server(serve) as server:
        ep = endpoint(client, server.url)
        held = await within(ep.post("/", b"hold", {}))  # connection 0, its body unfinished
        await post_read(ep, b"idle")  # connection 1, idle in the pool afterwards
        assert (len(server.connections), client.open_connections) == (2, 2)
        await client.close()
        with pytest.raises(ConnectionError):
            await within(held.read())
        assert await eventually(lambda: gone == 2)
        assert await eventually(lambda: client.open_connections == 0)
        with pytest.raises(OSError):
            await within(ep.post("/", b"after", {}))
    assert len(server.connections) == 2


@pytest.mark.integration
async def test_no_file_descriptors_leak(client: HttpClient) -> None:
    """A few hundred requests over kept-alive, server-closed, client-abandoned and timed-out connections leave
    no file descriptor behind: none pile up meanwhile, and none are left once the client is closed."""

    async def serve(conn: RawConn) -> None:
        while (request := await conn.request()) is not None:
            if request.body == b"close":
                conn.send(ok(b"bye", "Connection: close"))
                await conn.flush()
                return
            if request.body == b"cut":
                conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome")
            if request.body in (b"cut", b"stall"):
                await conn.gone()
                return
            conn.send(ok())

    async with raw_server(serve) as server:
        before = open_fds()
        ep = endpoint(client, server.url)
        slow = endpoint(client, server.url, read_timeout=0.02)
        timeouts = 0
        for i in range(300):
            kind = "stall" if i % 30 == 29 else ("ok", "close", "cut", "ok")[i % 4]
            try:
                response = await within((slow if kind == "stall" else ep).post("/", kind.encode(), {}))
            except TimeoutError:
                timeouts += 1
                continue
            if kind == "cut":
                assert await first_chunk(response) == b"some"
                response.close()
            else:
                await within(response.read())
        assert timeouts == 10
        # Before the client is closed: at most one kept-alive connection (its socket and the server's).
        assert await eventually(lambda: client.open_connections <= 1 and open_fds() <= before + 2), \
            (client.open_connections, open_fds(), before)
        await client.close()
        assert await eventually(lambda: client.open_connections == 0)
        assert await eventually(lambda: open_fds() <= before), (open_fds(), before)
    assert len(server.connections) > 100

"""One keep-alive HTTP/1.1 connection to an upstream, parsed with httptools (llhttp).

A connection carries one request at a time: `send` writes the whole request in
one transport write and returns a future for the response head; body bytes go
to that response as they arrive. When the response ends and both sides agreed
to keep the connection, it goes back to its pool.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Protocol, cast

import httptools

from gateway.fastpaths.httpclient.errors import UpstreamProtocolError
from gateway.fastpaths.httpclient.response import UNLIMITED, HttpResponse
from gateway.fastpaths.timers import timers


class Owner(Protocol):
    """The pool a connection belongs to."""

    def reuse(self, connection: UpstreamConnection) -> None: ...

    def forget(self, connection: UpstreamConnection) -> None: ...


class UpstreamConnection(asyncio.Protocol):
    def __init__(self, owner: Owner, loop: asyncio.AbstractEventLoop) -> None:
        self._owner = owner
        self._loop = loop
        self.timers = timers(loop)  # read timeouts: armed per exchange, rarely fired
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._names: list[bytes] = []
        self._values: list[bytes] = []
        self._head: asyncio.Future[HttpResponse] | None = None
        self._response: HttpResponse | None = None
        self._read_timeout: float | None = None
        self._max_body = UNLIMITED
        self._informational = False
        self._until_eof = False
        self._paused = False
        self.busy = False
        self.lost = False
        self.received = False  # any byte of the current exchange arrived
        self.idle_since = 0.0

    # Used by the pool and the client.

    def send(self, data: bytes, read_timeout: float | None,
             max_body: int = UNLIMITED) -> asyncio.Future[HttpResponse]:
        assert self.transport is not None and not self.busy
        self.busy = True
        self.received = False
        self._read_timeout = read_timeout
        self._max_body = max_body
        self._response = None
        head: asyncio.Future[HttpResponse] = self._loop.create_future()
        self._head = head
        self.transport.write(data)
        return head

    # Flow control and aborts from a response count only while it is this connection's own.

    def pause(self, response: HttpResponse) -> None:
        if response is self._response and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def resume(self, response: HttpResponse) -> None:
        if response is self._response:
            self._resume()

    def abort(self, response: HttpResponse) -> None:
        if response is self._response:
            self.drop()

    def _resume(self) -> None:
        if self._paused and self.transport is not None and not self.lost:
            self._paused = False
            self.transport.resume_reading()

    def drop(self) -> None:
        """Abort the connection now (a body not read to its end, a timeout, a cancel)."""
        self.busy = True  # never reused
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = self.transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.received = True
        if not self.busy:  # bytes nobody asked for: the connection cannot be trusted
            self.drop()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._break(UpstreamProtocolError(f"the upstream sent invalid HTTP: {exc}"))
            self.drop()

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        response = self._response
        if response is not None and not response.complete and self._until_eof and exc is None:
            response.finish()  # a body delimited by the end of the connection
        else:
            self._break(ConnectionResetError("the upstream closed the connection"))
        self._owner.forget(self)

    def _break(self, error: BaseException) -> None:
        head = self._head
        if head is not None and not head.done():
            head.set_exception(error)
        if self._response is not None:
            self._response.fail(error)

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self._names.append(name)
        self._values.append(value)

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        names, values = self._names, self._values
        self._names, self._values = [], []
        self._informational = status < 200
        if self._informational:
            return
        headers: dict[str, str] = {}
        for raw_name, raw_value in zip(names, values, strict=True):
            name = raw_name.lower().decode("latin-1")
            if name in headers:
                headers[name] = f"{headers[name]}, {raw_value.decode('latin-1')}"
            else:
                headers[name] = raw_value.decode("latin-1")
        self._until_eof = "content-length" not in headers and "transfer-encoding" not in headers \
            and status not in (204, 304)
        response = HttpResponse(self, status, headers, self._read_timeout, self._loop,
                                self._max_body)
        self._response = response
        head = self._head
        if head is not None and not head.done():
            head.set_result(response)

    def on_body(self, body: bytes) -> None:
        if self._response is not None:
            self._response.feed(body)

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        response = self._response
        keep = self._parser.should_keep_alive() and not self._until_eof
        self._head = None
        self._response = None
        if response is not None:
            response.finish()
        if keep and not self.lost:
            self._resume()
            self.busy = False
            self._owner.reuse(self)
        else:
            self.close()

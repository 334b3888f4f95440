"""Keep-alive connections to one origin (scheme, host, port), and the request
that uses them.

Idle connections are reused newest first and dropped once older than the
keep-alive limit or closed by the upstream. A request written to a reused
connection that the upstream closed before answering a single byte (the
keep-alive race every HTTP client has) is sent once more on a new connection.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from functools import partial

from gateway.fastpaths.httpclient.connection import UpstreamConnection
from gateway.fastpaths.httpclient.response import UNLIMITED, HttpResponse

KEEPALIVE_S = 15.0
MAX_IDLE = 256


class OriginPool:
    def __init__(self, scheme: str, host: str, port: int, *,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.scheme, self.host, self.port = scheme, host, port
        self._ssl = ssl_context if scheme == "https" else None
        if scheme == "https" and self._ssl is None:
            self._ssl = ssl.create_default_context()
        self._idle: list[UpstreamConnection] = []
        self._all: set[UpstreamConnection] = set()
        self._closed = False

    @property
    def open_connections(self) -> int:
        return len(self._all)

    async def request(self, data: bytes, read_timeout: float | None,
                      connect_timeout: float, max_body: int = UNLIMITED) -> HttpResponse:
        """Send a whole request; return once the response head is in."""
        connection = self._idle_connection()
        reused = connection is not None
        if connection is None:
            connection = await self._connect(connect_timeout)
        try:
            return await self._exchange(connection, data, read_timeout, max_body)
        except ConnectionResetError:
            if not reused or connection.received:
                raise
        connection = await self._connect(connect_timeout)
        return await self._exchange(connection, data, read_timeout, max_body)

    async def _exchange(self, connection: UpstreamConnection, data: bytes,
                        read_timeout: float | None, max_body: int) -> HttpResponse:
        head = connection.send(data, read_timeout, max_body)
        timer = None
        if read_timeout:
            timer = connection.timers.call_later(read_timeout, partial(_expire, head, connection))
        try:
            return await head
        except BaseException:
            if head.done() and not head.cancelled() and head.exception() is None:
                # Cancelled after the head came in: the connection may already be back in the
                # pool (or serving another request) once the answer was whole; the response knows.
                head.result().close()
            else:
                connection.drop()  # an exchange cut short (cancelled, timed out, broken) is not reused
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def _idle_connection(self) -> UpstreamConnection | None:
        """The newest idle connection still fit for use, if any."""
        idle = self._idle
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if connection.lost or connection.transport is None or connection.transport.is_closing():
                continue
            if now - connection.idle_since > KEEPALIVE_S:
                connection.close()
                continue
            return connection
        return None

    async def _connect(self, connect_timeout: float) -> UpstreamConnection:
        if self._closed:
            raise ConnectionResetError("the upstream client is closed")
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(connect_timeout):
            _, connection = await loop.create_connection(
                lambda: UpstreamConnection(self, loop), self.host, self.port, ssl=self._ssl,
                server_hostname=self.host if self._ssl is not None else None)
        self._all.add(connection)
        return connection

    # Owner, for the connections.

    def reuse(self, connection: UpstreamConnection) -> None:
        if self._closed or len(self._idle) >= MAX_IDLE:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        self._idle.append(connection)

    def forget(self, connection: UpstreamConnection) -> None:
        self._all.discard(connection)
        # A lost idle connection is skipped (and so dropped) by the next _acquire.

    def close(self) -> None:
        self._closed = True
        self._idle.clear()
        for connection in list(self._all):
            connection.drop()


def _expire(head: asyncio.Future[HttpResponse], connection: UpstreamConnection) -> None:
    if not head.done():
        head.set_exception(TimeoutError("the upstream did not answer within its read timeout"))
        connection.drop()

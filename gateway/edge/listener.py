"""The gateway's listening sockets: bound before anything else starts, and holding
slow clients to deadlines.

`bind` runs before the app starts (ledger writer, telemetry, upstream pools), so a
busy port fails the command at once with a message naming it, with nothing to
unwind. `GuardedHandler` is aiohttp's connection handler plus what it lacks: a
deadline for the request head (a client that dribbles its headers a byte at a
time is closed, as nginx's `client_header_timeout` does), and malformed HTTP
logged as one quiet line instead of an ERROR with a traceback. The idle
keep-alive deadline is aiohttp's own `keepalive_timeout`; the body's is
`gateway.edge.body`'s.

aiohttp has no public hook for either, so the handler reads two of its
attributes (`_waiter`: the connection waits for a request head; `_request_count`:
heads parsed so far); tests/hostile/test_slow_clients.py fails if they change.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from gateway.config import ServerConfig

_log = logging.getLogger("gateway.edge.listener")
BACKLOG = 1024


class ListenError(Exception):
    """The gateway could not listen where it was asked to (port busy, bad address)."""


def bind(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A socket bound to host:port (listening starts with the site), or ListenError."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio does
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        hint = " (is another gateway or server running on it? choose one with --port)" \
            if exc.errno == errno.EADDRINUSE else ""
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror}{hint}") from None
    sock.setblocking(False)
    return sock


def handler_options(server: ServerConfig) -> dict[str, Any]:
    """aiohttp connection options: no access log, the idle deadline, and request bodies
    left compressed (gateway.edge.body inflates them under a size cap, off the parser)."""
    return {"access_log": None, "keepalive_timeout": server.keepalive_timeout_s,
            "auto_decompress": False}


class GuardedHandler(web.RequestHandler):
    """aiohttp's connection handler with a deadline for each request head."""

    def __init__(self, manager: web.Server, *, header_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._header_timeout_s = header_timeout_s
        self._head_timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        # Runs for every read, interpreted (aiohttp's handler is a Python class): the
        # usual read, a whole head, costs the count compare and no other call.
        heads = self._request_count
        super().data_received(data)
        if self._request_count != heads:  # a head arrived whole: no deadline to keep
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
        elif self._head_timer is None and data:
            # No new head, so the connection waits for one exactly when it did before this
            # read (aiohttp's waiter is set by its loop, resolved only by a parsed message):
            # part of a head arrived, and its deadline starts now.
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                self._head_timer = self._loop.call_later(self._header_timeout_s,
                                                         self._head_late)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def _head_late(self) -> None:
        self._head_timer = None
        _log.info("closed a connection: its request head took longer than %g s "
                  "(server.header_timeout_s)", self._header_timeout_s)
        self.force_close()

    def log_exception(self, *args: Any, **kw: Any) -> None:
        exc = kw.get("exc_info")
        if isinstance(exc, HttpProcessingError):  # the client's mistake, not ours
            peer = args[1] if len(args) > 1 else "?"
            _log.info("malformed HTTP request from %s: %s", peer, _describe(exc))
            return
        super().log_exception(*args, **kw)


def _describe(exc: HttpProcessingError) -> str:
    text = "".join(ch for ch in f"{type(exc).__name__}: {exc.message}" if ch.isprintable())
    return text[:200]


class BoundSite(web.BaseSite):
    """A site on a socket `bind` made, serving connections through `GuardedHandler`."""

    def __init__(self, runner: web.BaseRunner, sock: socket.socket, server: ServerConfig) -> None:
        super().__init__(runner, backlog=BACKLOG)
        self._sock = sock
        self._config = server

    @property
    def name(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return f"http://{host}:{port}"

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._factory(loop), sock=self._sock,
                                                backlog=BACKLOG)

    def _factory(self, loop: asyncio.AbstractEventLoop) -> Callable[[], GuardedHandler]:
        manager = self._runner.server
        assert manager is not None
        options = handler_options(self._config)
        timeout = self._config.header_timeout_s

        def make() -> GuardedHandler:
            return GuardedHandler(manager, loop=loop, header_timeout_s=timeout, **options)

        return make

"""A real HTTP proxy on 127.0.0.1 (port 0) for the upstream-networking tests: CONNECT
tunnels for https targets, forwarding of absolute-form requests for http ones, and a
record of what it carried."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class ProxyLog:
    tunnels: list[str] = field(default_factory=list)  # CONNECT targets, "host:port"
    forwarded: list[str] = field(default_factory=list)  # "METHOD absolute-url"
    proxy_authorization: list[str] = field(default_factory=list)  # as received, per request

    @property
    def requests(self) -> int:
        return len(self.tunnels) + len(self.forwarded)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


def _headers(head: bytes) -> tuple[str, list[tuple[str, str]]]:
    lines = head.decode("latin-1").split("\r\n")
    pairs = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:] if line]
    return lines[0], [(name, value) for name, value in pairs]


async def _serve(log: ProxyLog, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()
        return
    line, headers = _headers(head)
    method, target, _ = line.split(" ", 2)
    log.proxy_authorization += [v for k, v in headers if k.lower() == "proxy-authorization"]
    if method == "CONNECT":
        host, port = target.rsplit(":", 1)
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        log.tunnels.append(target)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
    else:  # one request per connection, so that each forwarded request is counted
        url = urlsplit(target)
        length = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
        body = await reader.readexactly(length)
        kept = [f"{k}: {v}" for k, v in headers
                if k.lower() not in ("connection", "proxy-connection", "proxy-authorization",
                                     "keep-alive")]
        up_reader, up_writer = await asyncio.open_connection(url.hostname, url.port or 80)
        log.forwarded.append(f"{method} {target}")
        up_writer.write("\r\n".join([line, *kept, "Connection: close", "", ""]).encode("latin-1")
                        + body)
        await up_writer.drain()
    await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


@contextlib.asynccontextmanager
async def running_proxy() -> AsyncIterator[tuple[str, ProxyLog]]:
    """A proxy for the duration of the block; yields (its URL, its log)."""
    log = ProxyLog()
    tasks: set[asyncio.Task[None]] = set()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await _serve(log, reader, writer)
        finally:
            tasks.discard(task)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", log
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()

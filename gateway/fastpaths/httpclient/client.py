"""The gateway's upstream HTTP client: one keep-alive pool per origin, requests
written as one buffer, responses parsed by httptools.

Why not aiohttp's ClientSession here: on the gateway's hot path it cost about as
much CPU per call as the rest of the request path together (URL objects, cookie
jar, per-request tasks and timers, header multidicts; see docs/performance.md).
This client does only what an upstream call needs: POST a JSON body with fixed
headers over HTTP/1.1 keep-alive (TLS when the base URL is https), and hand back
the status, headers and body as it arrives. aiohttp's session remains available
(`GATEWAY_HTTP_CLIENT=aiohttp`), e.g. for the aiohttp client instrumentation.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from gateway.fastpaths.httpclient.pool import OriginPool
from gateway.fastpaths.httpclient.response import UNLIMITED, HttpResponse

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _safe(name: str, value: str) -> bool:
    """A per-request header that cannot break the request head (one without is left out)."""
    return not any(ch in name for ch in "\r\n:") and "\r" not in value and "\n" not in value


def _check_header(name: str, value: str) -> None:
    if not _safe(name, value):
        raise ValueError(f"header {name!r} has a line break or colon where it cannot")


class Endpoint:
    """A base URL to POST to, with the headers every request to it carries."""

    __slots__ = ("_head_tail", "_path_prefix", "_pool", "connect_timeout", "max_body",
                 "read_timeout")

    def __init__(self, pool: OriginPool, base_path: str, headers: Mapping[str, str], *,
                 connect_timeout: float, read_timeout: float | None,
                 max_body: int = UNLIMITED) -> None:
        self._pool = pool
        self.max_body = max_body
        self._path_prefix = base_path.rstrip("/")
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        default_port = _DEFAULT_PORTS.get(pool.scheme)
        host = pool.host if pool.port == default_port else f"{pool.host}:{pool.port}"
        if ":" in pool.host and pool.port == default_port:  # IPv6 literal
            host = f"[{pool.host}]"
        elif ":" in pool.host:
            host = f"[{pool.host}]:{pool.port}"
        lines = [f"Host: {host}"]
        for name, value in headers.items():
            _check_header(name, value)
            lines.append(f"{name}: {value}")
        self._head_tail = ("\r\n".join(lines) + "\r\n").encode("latin-1")

    async def post(self, path: str, body: bytes, headers: Mapping[str, str],
                   method: str = "POST") -> HttpResponse:
        """POST `body` to base path + `path` (or send it with `method`); per-request `headers`
        are added after the fixed ones."""
        extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items()
                        if _safe(name, value))
        head = (f"{method} {self._path_prefix}{path} HTTP/1.1\r\n").encode("latin-1") + self._head_tail \
            + f"{extra}Content-Length: {len(body)}\r\n\r\n".encode("latin-1")
        return await self._pool.request(head + body, self.read_timeout, self.connect_timeout,
                                        self.max_body)


class HttpClient:
    """Pools by origin; `endpoint(base_url, ...)` for each configured provider."""

    def __init__(self) -> None:
        self._pools: dict[tuple[str, str, int], OriginPool] = {}

    def endpoint(self, base_url: str, headers: Mapping[str, str], *, connect_timeout: float,
                 read_timeout: float | None, max_body: int = UNLIMITED) -> Endpoint:
        """`max_body`: the most body bytes (decompressed) a response may hold at once."""
        parts = urlsplit(base_url)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ValueError(f"base URL must be http(s)://host[:port]/path, got {base_url!r}")
        port = parts.port or _DEFAULT_PORTS[scheme]
        key = (scheme, parts.hostname, port)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = OriginPool(scheme, parts.hostname, port)
        return Endpoint(pool, parts.path, headers, connect_timeout=connect_timeout,
                        read_timeout=read_timeout, max_body=max_body)

    @property
    def open_connections(self) -> int:
        return sum(pool.open_connections for pool in self._pools.values())

    async def close(self) -> None:
        """Close every connection (async, like aiohttp's `ClientSession.close`)."""
        for pool in self._pools.values():
            pool.close()

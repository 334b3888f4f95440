"""Client for OpenAI-compatible upstreams (OpenAI, relays, DeepSeek, the OpenAI
compatibility endpoints of Anthropic and Gemini), over the gateway's own pooled
HTTP client or, when asked for, aiohttp's ClientSession.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Protocol
from urllib.parse import urlsplit

import aiohttp
import orjson
from multidict import CIMultiDictProxy
from opentelemetry import context as otel_context

from gateway.config import ProviderConfig
from gateway.dialects.registry import OPENAI_NATIVE
from gateway.errors import UpstreamTimeout, UpstreamTooLarge, UpstreamUnreachable
from gateway.fastpaths import HttpClient
from gateway.providers.base import UpstreamRequest, UpstreamResponse

_DEFAULT_PORTS = {"http": 80, "https": 443}


class OpenAIResponse:
    """Wraps an aiohttp response behind the `UpstreamResponse` interface."""

    __slots__ = ("_max_body", "_response", "headers", "status")

    def __init__(self, response: aiohttp.ClientResponse, max_body: int) -> None:
        self._response = response
        self._max_body = max_body
        self.status = response.status
        self.headers: CIMultiDictProxy[str] = response.headers

    async def read(self) -> bytes:
        """The whole body, up to the provider's `max_response_bytes` (decompressed: aiohttp
        inflates under its own flow control)."""
        parts: list[bytes] = []
        size = 0
        try:
            async for chunk in self._response.content.iter_any():
                size += len(chunk)
                if size > self._max_body:
                    parts.clear()
                    self._response.close()
                    raise UpstreamTooLarge(
                        f"the upstream's answer was larger than {self._max_body} bytes")
                parts.append(chunk)
            return b"".join(parts)
        except TimeoutError:
            raise UpstreamTimeout("the upstream did not finish its answer in time") from None
        except aiohttp.ClientError as exc:
            raise UpstreamUnreachable(f"the upstream connection failed: {type(exc).__name__}") from None

    def iter_chunks(self) -> AsyncIterator[bytes]:
        return self._response.content.iter_any()

    def close(self) -> None:
        self._response.close()


class AiohttpEndpoint:
    """aiohttp's ClientSession behind the `post` of the gateway's own `fastpaths.Endpoint`."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, headers: Mapping[str, str],
                 timeout: aiohttp.ClientTimeout, max_body: int, *, proxy: str | None = None,
                 proxy_headers: Mapping[str, str] | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self._session = session
        self._max_body = max_body
        self._base_url = base_url
        self._headers = headers
        self._timeout = timeout
        self._proxy = proxy
        self._proxy_headers = proxy_headers
        if proxy_headers and base_url.startswith("http://"):
            # aiohttp sends proxy_headers only with a CONNECT (https targets); an http
            # request goes to the proxy itself, so they go with it (as its proxy_auth does).
            self._headers = {**headers, **proxy_headers}
            self._proxy_headers = None
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True

    async def post(self, path: str, body: bytes, headers: Mapping[str, str],
                   method: str = "POST") -> OpenAIResponse:
        response = await self._session.request(method, self._base_url + path, data=body,
                                            headers={**self._headers, **headers},
                                            timeout=self._timeout, proxy=self._proxy,
                                            proxy_headers=self._proxy_headers, ssl=self._ssl)
        return OpenAIResponse(response, self._max_body)


class _Poster(Protocol):
    async def post(self, path: str, body: bytes, headers: Mapping[str, str],
                   method: str = "POST") -> UpstreamResponse:
        ...


class OpenAIProvider:
    """Sends chat completions, embeddings and Responses calls to an OpenAI-compatible base URL."""

    def __init__(self, config: ProviderConfig, transport: HttpClient | aiohttp.ClientSession,
                 dialects: frozenset[str] = OPENAI_NATIVE, *, proxy: str | None = None,
                 proxy_headers: Mapping[str, str] | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        """`proxy` and `ssl_context` apply to an aiohttp `transport` (see providers/clients.py)."""
        self.config = config
        self.dialects = dialects
        parts = urlsplit(config.base_url)
        self._address = parts.hostname
        self._port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
        headers = {"content-type": "application/json", **self.auth_headers(config), **config.headers}
        self._endpoint: _Poster
        # aiohttp's client instrumentation (GATEWAY_HTTP_CLIENT_SPANS) parents its HTTP span
        # on the current context: make that the attempt's CLIENT span while sending.
        self._attach_context = not isinstance(transport, HttpClient)
        if isinstance(transport, HttpClient):
            self._endpoint = transport.endpoint(
                config.base_url, headers, connect_timeout=config.connect_timeout_s,
                read_timeout=config.timeout_s, max_body=config.max_response_bytes)
        else:
            timeout = aiohttp.ClientTimeout(
                total=None, sock_connect=config.connect_timeout_s, sock_read=config.timeout_s)
            self._endpoint = AiohttpEndpoint(transport, config.base_url, headers, timeout,
                                             config.max_response_bytes, proxy=proxy,
                                             proxy_headers=proxy_headers, ssl_context=ssl_context)

    @staticmethod
    def auth_headers(config: ProviderConfig) -> dict[str, str]:
        """The headers every request carries to authenticate (a subclass's API may differ)."""
        return {"authorization": f"Bearer {config.api_key.value}"} if config.api_key else {}

    @property
    def server_address(self) -> str | None:
        return self._address

    @property
    def server_port(self) -> int | None:
        return self._port

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        body = request.raw if request.raw is not None else orjson.dumps(request.body)
        token = None
        if self._attach_context and request.context is not None:
            token = otel_context.attach(request.context)
        try:
            path = f"{request.path}?{request.query}" if request.query else request.path
            if request.method != "POST":
                return await self._endpoint.post(path, body, request.headers, request.method)
            return await self._endpoint.post(path, body, request.headers)
        except TimeoutError:
            raise UpstreamTimeout(
                f"the upstream for model '{request.model.name}' did not answer in time"
            ) from None
        except (OSError, aiohttp.ClientError) as exc:  # refused, reset, DNS, TLS
            raise UpstreamUnreachable(
                f"could not reach the upstream for model '{request.model.name}': "
                f"{type(exc).__name__}"
            ) from None
        finally:
            if token is not None:
                otel_context.detach(token)

    async def close(self) -> None:
        """The transport is owned by the app; nothing of our own to release."""

"""Client for OpenAI-compatible upstreams (OpenAI, relays, DeepSeek, the OpenAI
compatibility endpoints of Anthropic and Gemini), over the gateway's own pooled
HTTP client or, when asked for, aiohttp's ClientSession.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from urllib.parse import urlsplit

import aiohttp
import orjson
from multidict import CIMultiDictProxy

from gateway.config import ProviderConfig
from gateway.errors import UpstreamTimeout, UpstreamUnreachable
from gateway.httpclient import Endpoint, HttpClient
from gateway.providers.base import UpstreamRequest, UpstreamResponse

_DEFAULT_PORTS = {"http": 80, "https": 443}


class OpenAIResponse:
    """Wraps an aiohttp response behind the `UpstreamResponse` interface."""

    __slots__ = ("_response", "headers", "status")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers: CIMultiDictProxy[str] = response.headers

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except TimeoutError:
            raise UpstreamTimeout("the upstream did not finish its answer in time") from None
        except aiohttp.ClientError as exc:
            raise UpstreamUnreachable(f"the upstream connection failed: {type(exc).__name__}") from None

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self._response.content.iter_any():
            yield chunk

    def close(self) -> None:
        self._response.close()


class OpenAIProvider:
    """Sends chat completions and embeddings to an OpenAI-compatible base URL."""

    def __init__(self, config: ProviderConfig, transport: HttpClient | aiohttp.ClientSession) -> None:
        self.config = config
        parts = urlsplit(config.base_url)
        self._address = parts.hostname
        self._port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
        headers = {"content-type": "application/json", **config.headers}
        if config.api_key:
            headers["authorization"] = f"Bearer {config.api_key.value}"
        self._headers: Mapping[str, str] = headers
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=config.connect_timeout_s, sock_read=config.timeout_s
        )
        self._session: aiohttp.ClientSession | None = None
        self._endpoint: Endpoint | None = None
        if isinstance(transport, HttpClient):
            self._endpoint = transport.endpoint(
                config.base_url, headers, connect_timeout=config.connect_timeout_s,
                read_timeout=config.timeout_s)
        else:
            self._session = transport

    @property
    def server_address(self) -> str | None:
        return self._address

    @property
    def server_port(self) -> int | None:
        return self._port

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        if self._endpoint is not None:
            try:
                body = request.raw if request.raw is not None else orjson.dumps(request.body)
                return await self._endpoint.post(request.path, body, request.headers)
            except TimeoutError:
                raise UpstreamTimeout(
                    f"the upstream for model '{request.model.name}' did not answer in time"
                ) from None
            except OSError as exc:  # refused, reset, DNS, TLS
                raise UpstreamUnreachable(
                    f"could not reach the upstream for model '{request.model.name}': "
                    f"{type(exc).__name__}"
                ) from None
        assert self._session is not None
        headers = {**self._headers, **request.headers}
        url = self.config.base_url + request.path
        try:
            response = await self._session.post(
                url, data=request.raw if request.raw is not None else orjson.dumps(request.body),
                headers=headers, timeout=self._timeout
            )
        except TimeoutError:
            raise UpstreamTimeout(
                f"the upstream for model '{request.model.name}' did not answer in time"
            ) from None
        except aiohttp.ClientError as exc:
            raise UpstreamUnreachable(
                f"could not reach the upstream for model '{request.model.name}': "
                f"{type(exc).__name__}"
            ) from None
        return OpenAIResponse(response)

    async def close(self) -> None:
        """The session is owned by the app; nothing of our own to release."""

"""Client for Anthropic's own API (`kind: anthropic`, base URL `https://api.anthropic.com`):
the Messages API natively, the key in `x-api-key`, the API version in `anthropic-version`.

A client's own `anthropic-version` and `anthropic-beta` headers are forwarded (the
request path passes them in the attempt's headers), so beta features work through
the gateway; without one the provider sends the version below.
"""

from __future__ import annotations

from typing import Final

from gateway.config import ProviderConfig
from gateway.providers.base import UpstreamRequest, UpstreamResponse
from gateway.providers.openai import OpenAIProvider

API_VERSION: Final = "2023-06-01"
DEFAULT_BASE_URL: Final = "https://api.anthropic.com"


class AnthropicProvider(OpenAIProvider):
    """Sends Messages requests to an Anthropic base URL, over the same pooled transports
    as OpenAI-compatible upstreams (built with the Anthropic dialects by the registry)."""

    @staticmethod
    def auth_headers(config: ProviderConfig) -> dict[str, str]:
        return {"x-api-key": config.api_key.value} if config.api_key else {}

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        # Per request, not fixed: the client's own version, when forwarded, must be the only one.
        request.headers.setdefault("anthropic-version", API_VERSION)
        return await super().send(request)

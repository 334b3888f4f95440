"""Client for Gemini's own API (`kind: gemini`, base URL
`https://generativelanguage.googleapis.com`): the generativelanguage dialects natively
(generateContent, its SSE stream, countTokens, embeddings), the key in `x-goog-api-key`
(never in the URL, where proxies and access logs would keep it)."""

from __future__ import annotations

from typing import Final

from gateway.config import ProviderConfig
from gateway.providers.openai import OpenAIProvider

DEFAULT_BASE_URL: Final = "https://generativelanguage.googleapis.com"


class GeminiProvider(OpenAIProvider):
    """Sends Gemini requests to a generativelanguage base URL, over the same pooled
    transports as OpenAI-compatible upstreams (built with the Gemini dialects by the
    registry; the path of each call comes from its dialect)."""

    @staticmethod
    def auth_headers(config: ProviderConfig) -> dict[str, str]:
        return {"x-goog-api-key": config.api_key.value} if config.api_key else {}

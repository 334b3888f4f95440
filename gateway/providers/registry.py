"""Builds one Provider per configured provider, by kind, each on the client its
route (providers/clients.py) chose."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import aiohttp

from gateway.config import GatewayConfig, ProviderConfig
from gateway.dialects.registry import (
    ANTHROPIC_NATIVE,
    GEMINI_NATIVE,
    OPENAI_CHAT_ONLY,
    OPENAI_NATIVE,
)
from gateway.fastpaths import HttpClient
from gateway.providers.anthropic import AnthropicProvider
from gateway.providers.base import Provider
from gateway.providers.clients import Route
from gateway.providers.gemini import GeminiProvider
from gateway.providers.mock import MockProvider
from gateway.providers.openai import OpenAIProvider


def build_providers(config: GatewayConfig, routes: Mapping[str, Route],
                    http_client: HttpClient | None, session: aiohttp.ClientSession | None,
                    extra_dialects: Mapping[str, Iterable[str]]) -> dict[str, Provider]:
    """`http_client` and `session` must be given when a route needs them; `extra_dialects`:
    by provider kind, dialects it speaks beyond what its adapter declares."""
    providers: dict[str, Provider] = {}
    for name, provider in config.providers.items():
        built: Provider
        if provider.kind == "mock":
            built = MockProvider(provider)
        elif routes[name].aiohttp:
            assert session is not None
            route = routes[name]
            adapter, dialects = _adapter(provider)
            built = adapter(provider, session, dialects, proxy=route.proxy_url,
                            proxy_headers=route.proxy_headers, ssl_context=route.ssl_context)
        else:
            assert http_client is not None
            adapter, dialects = _adapter(provider)
            built = adapter(provider, http_client, dialects)
        extra = extra_dialects.get(provider.kind)
        if extra:
            built.dialects = built.dialects | frozenset(extra)
        providers[name] = built
    return providers


def _adapter(provider: ProviderConfig) -> tuple[type[OpenAIProvider], frozenset[str]]:
    """The adapter class of a provider that goes over HTTP, and the dialects it speaks."""
    if provider.kind == "anthropic":
        return AnthropicProvider, ANTHROPIC_NATIVE
    if provider.kind == "gemini":
        return GeminiProvider, GEMINI_NATIVE
    return OpenAIProvider, OPENAI_NATIVE if provider.responses_api else OPENAI_CHAT_ONLY

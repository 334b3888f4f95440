"""Builds one Provider per configured provider, by kind."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import aiohttp

from gateway.config import GatewayConfig
from gateway.httpclient import HttpClient
from gateway.providers.base import Provider
from gateway.providers.mock import MockProvider
from gateway.providers.openai import OpenAIProvider


def build_providers(config: GatewayConfig, transport: HttpClient | aiohttp.ClientSession,
                    extra_dialects: Mapping[str, Iterable[str]]) -> dict[str, Provider]:
    """`extra_dialects`: by provider kind, dialects it speaks beyond what its adapter declares."""
    providers: dict[str, Provider] = {}
    for name, provider in config.providers.items():
        built: Provider
        if provider.kind == "mock":
            built = MockProvider(provider)
        else:
            built = OpenAIProvider(provider, transport)
        extra = extra_dialects.get(provider.kind)
        if extra:
            built.dialects = built.dialects | frozenset(extra)
        providers[name] = built
    return providers

"""Builds one Provider per configured provider, by kind."""

from __future__ import annotations

import aiohttp

from gateway.config import GatewayConfig
from gateway.httpclient import HttpClient
from gateway.providers.base import Provider
from gateway.providers.mock import MockProvider
from gateway.providers.openai import OpenAIProvider


def build_providers(config: GatewayConfig, transport: HttpClient | aiohttp.ClientSession
                    ) -> dict[str, Provider]:
    providers: dict[str, Provider] = {}
    for name, provider in config.providers.items():
        if provider.kind == "mock":
            providers[name] = MockProvider(provider)
        else:
            providers[name] = OpenAIProvider(provider, transport)
    return providers

"""Shared fixtures: a fake OpenAI upstream and a gateway in front of it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from openai import AsyncOpenAI

from tests.fakes.openai_upstream import RunningUpstream, running_upstream
from tests.support.gateway import RunningGateway, running_gateway, upstream_config

UPSTREAM_KEY = "sk-upstream-secret-9f8e7d6c5b4a"


@pytest.fixture
async def upstream() -> AsyncIterator[RunningUpstream]:
    async with running_upstream(api_key=UPSTREAM_KEY) as up:
        yield up


@pytest.fixture(params=["own", "aiohttp"], ids=["httpclient", "aiohttp-client"])
async def gw(request: pytest.FixtureRequest, upstream: RunningUpstream
             ) -> AsyncIterator[RunningGateway]:
    """The gateway in front of the fake upstream, once over each upstream HTTP client:
    its own (the default) and aiohttp's ClientSession (GATEWAY_HTTP_CLIENT=aiohttp)."""
    config = upstream_config(upstream.base_url)
    environ = {"UPSTREAM_KEY": UPSTREAM_KEY, "GATEWAY_HTTP_CLIENT": request.param}
    async with running_gateway(config, environ=environ) as gateway:
        yield gateway


@pytest.fixture
async def client(gw: RunningGateway) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(base_url=gw.base_url, api_key="sk-client-unused", max_retries=0) as sdk:
        yield sdk

"""Shared fixtures: a fake OpenAI upstream and a gateway in front of it."""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from openai import AsyncOpenAI

from tests.fakes.openai_upstream import RunningUpstream, running_upstream
from tests.support.gateway import RunningGateway, running_gateway, upstream_config

UPSTREAM_KEY = "sk-upstream-secret-9f8e7d6c5b4a"


def pytest_configure(config: pytest.Config) -> None:
    """Under scripts/test-compiled (GATEWAY_EXPECT_COMPILED=1), refuse to run unless every
    module setup.py compiles was loaded from its compiled extension: otherwise the pass
    would quietly test the pure-Python source again."""
    if os.environ.get("GATEWAY_EXPECT_COMPILED") != "1":
        return
    spec = importlib.util.spec_from_file_location("gateway_setup", Path(__file__).parents[1] / "setup.py")
    assert spec is not None and spec.loader is not None
    setup_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(setup_module)
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    interpreted = [name for name in setup_module.module_names()
                   if not str(importlib.import_module(name).__file__).endswith(suffixes)]
    if interpreted:
        raise pytest.UsageError(f"GATEWAY_EXPECT_COMPILED=1 but not compiled: {', '.join(interpreted)}")


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

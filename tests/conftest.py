"""Shared fixtures: a fake OpenAI upstream and a gateway in front of it; and the line
between the two tiers: a test not marked `integration` may not open a socket or start
a process (the fast tier runs with `-m "not integration"`)."""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import multiprocessing.process
import os
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

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


def _refuse(what: str) -> Any:
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a fast-tier test {what}: mark it `integration`, or use "
                             "gateway.testing's MemoryProvider and FakeClock")
    return refused


@pytest.fixture(autouse=True)
def _fast_tier_stays_in_memory(request: pytest.FixtureRequest,
                               monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests not marked integration run without sockets or subprocesses."""
    if request.node.get_closest_marker("integration") is None:
        monkeypatch.setattr(socket.socket, "bind", _refuse("bound a socket"))
        monkeypatch.setattr(socket.socket, "connect", _refuse("connected a socket"))
        monkeypatch.setattr(socket.socket, "connect_ex", _refuse("connected a socket"))
        monkeypatch.setattr(subprocess.Popen, "__init__", _refuse("started a process"))
        monkeypatch.setattr(os, "fork", _refuse("forked"))
        monkeypatch.setattr(multiprocessing.process.BaseProcess, "start",
                            _refuse("started a process"))
    yield


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

"""create_app with the test doubles a user would pass: in-memory providers and a clock,
served over a real socket to the official SDK."""

from __future__ import annotations

import asyncio

import openai
import pytest
from openai import AsyncOpenAI

from gateway.config import load
from gateway.hooks import OpenAccess
from gateway.testing import FakeClock, MemoryProvider, MemoryRequest, Reply
from tests.resilience.rig import MESSAGES, chain_config
from tests.support.gateway import running_gateway

pytestmark = pytest.mark.integration  # the gateway on a loopback port


async def test_the_apps_deadlines_run_on_the_injected_clock() -> None:
    """A memory upstream that never answers is cut at the request deadline when the injected
    clock, not real time, reaches it: 504 request_timeout, in a moment of real time."""
    clock = FakeClock()
    config = load(chain_config("http://upstream.invalid/v1",
                               models={"solo": {"request_timeout_s": 120}}), {"UPSTREAM_KEY": "k"})
    reached = asyncio.Event()

    async def stalls(request: MemoryRequest) -> Reply:
        reached.set()
        await clock.sleep(3600)
        return Reply(200, b"{}")

    providers = {"up": MemoryProvider(config.providers["up"], stalls)}
    async with running_gateway(config, providers=providers, clock=clock,
                               authenticator=OpenAccess()) as gw, \
            AsyncOpenAI(base_url=gw.base_url, api_key="k", max_retries=0, timeout=30) as sdk:
        ask = asyncio.create_task(sdk.chat.completions.create(model="solo", messages=MESSAGES))
        await asyncio.wait_for(reached.wait(), 10)
        await clock.advance(119)
        assert not ask.done()
        await clock.advance(1)
        with pytest.raises(openai.APIStatusError) as caught:
            await asyncio.wait_for(ask, 10)
    assert caught.value.status_code == 504
    assert isinstance(caught.value.body, dict) and caught.value.body["code"] == "request_timeout"

"""The gateway with every fast path switched off (GATEWAY_FAST_PATHS=false) serves the same
answers, over aiohttp's client and the loop's own timers."""

from __future__ import annotations

import logging

import pytest
from openai import AsyncOpenAI

from gateway.fastpaths import timers
from tests.fakes.openai_upstream import Behaviour, running_upstream
from tests.support.gateway import running_gateway, upstream_config

pytestmark = pytest.mark.integration  # sockets or processes: the slow tier

KEY = "sk-all-off-test-42"
MESSAGES = [{"role": "user", "content": "hi"}]


async def test_every_fast_path_off_still_serves_json_streams_and_timeouts(
        caplog: pytest.LogCaptureFixture) -> None:
    """Chat, a stream and an upstream read timeout behave as with the fast paths on."""
    caplog.set_level(logging.INFO, logger="gateway.providers.clients")
    async with running_upstream(Behaviour(content="same answer"), api_key=KEY) as up:
        config = upstream_config(up.base_url).replace("timeout_s: 5", "timeout_s: 0.3")
        env = {"UPSTREAM_KEY": KEY, "GATEWAY_FAST_PATHS": "false"}
        async with running_gateway(config, environ=env) as gw, \
                AsyncOpenAI(base_url=gw.base_url, api_key="u", max_retries=0) as sdk:
            assert type(timers.timers()) is timers.LoopTimers
            answer = await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
            assert answer.choices[0].message.content == "same answer"
            stream = await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES,
                                                       stream=True)
            text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream
                            if chunk.choices])
            assert text == "same answer"
            up.state.behaviour = Behaviour(content="late", latency_s=1.0)
            with pytest.raises(Exception) as late:
                await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
            assert getattr(late.value, "status_code", None) == 504
    assert type(timers.timers()) is timers.CoarseTimers  # the app's cleanup put them back
    assert "over aiohttp's ClientSession" in caplog.text

"""Threat: reading other tenants' business from /metrics. The exposition lists every
key alias, team, model and dollar spent; served unauthenticated on the API port,
any client (or anyone who can reach the port) could read it.

The gateway serves /metrics on the API port only while it runs open (no virtual
key exists, so there is nothing to hide: every series says `anonymous`); once a key
exists it answers 403 there unless a metrics token is configured
(`server.metrics_token`, sent as a bearer token) or the metrics have a port of
their own (`server.metrics_port`, for the monitoring network). These tests run real
gateway processes.
"""

from __future__ import annotations

import aiohttp
import pytest

from gateway.config import load
from gateway.confread import ConfigError
from tests.hostile.wire import sim_config
from tests.support.process import free_port, gateway_process

pytestmark = pytest.mark.integration  # sockets or processes: the slow tier

KEY = "sk-gw-hostile-metrics-0123456789"
TOKEN = "metrics-token-5f4e3d2c1b"
KEYS = "keys:\n  - {alias: secret-project, team: skunkworks, key_env: WEB_KEY}\n"
CHAT = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]}


async def _metrics(http: aiohttp.ClientSession, url: str,
                   token: str | None = None) -> tuple[int, str]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    async with http.get(url, headers=headers) as resp:
        return resp.status, await resp.text()


async def _one_call(http: aiohttp.ClientSession, root: str) -> None:
    async with http.post(f"{root}/v1/chat/completions", json=CHAT,
                         headers={"authorization": f"Bearer {KEY}"}) as resp:
        assert resp.status == 200


async def test_open_gateway_serves_metrics_on_the_api_port() -> None:
    """With no key anywhere (the quick start, the compose stack) /metrics just works."""
    async with gateway_process(sim_config()) as gw, aiohttp.ClientSession() as http:
        await _one_call(http, gw.root)
        status, text = await _metrics(http, f"{gw.root}/metrics")
    assert status == 200 and 'gateway_key_alias="anonymous"' in text


async def test_with_keys_the_api_port_refuses_metrics() -> None:
    """Once keys exist, /metrics on the API port is 403 (OpenAI's shape, saying how to
    open it), even to a client with a valid key, and no alias leaks."""
    async with gateway_process(sim_config() + KEYS, env={"WEB_KEY": KEY}) as gw, \
            aiohttp.ClientSession() as http:
        await _one_call(http, gw.root)
        for token in (None, KEY):
            status, text = await _metrics(http, f"{gw.root}/metrics", token)
            assert status == 403 and "secret-project" not in text
            assert "metrics_token" in text and "metrics_port" in text


async def test_the_metrics_token_opens_it() -> None:
    """With `server.metrics_token`, a scrape with the token reads everything; without it,
    or with a client key, gets 401."""
    config = sim_config(metrics_token="${METRICS_TOKEN}") + KEYS
    env = {"WEB_KEY": KEY, "METRICS_TOKEN": TOKEN}
    async with gateway_process(config, env=env) as gw, aiohttp.ClientSession() as http:
        await _one_call(http, gw.root)
        for wrong in (None, KEY, TOKEN + "x"):
            status, text = await _metrics(http, f"{gw.root}/metrics", wrong)
            assert status == 401 and "secret-project" not in text
        status, text = await _metrics(http, f"{gw.root}/metrics", TOKEN)
    assert status == 200 and 'gateway_key_alias="secret-project"' in text


async def test_a_metrics_port_moves_it_off_the_api_port() -> None:
    """With `server.metrics_port`, the metrics are served there and the API port says 404."""
    port = free_port()
    config = sim_config(metrics_port=port) + KEYS
    async with gateway_process(config, env={"WEB_KEY": KEY}) as gw, \
            aiohttp.ClientSession() as http:
        await _one_call(http, gw.root)
        status, _ = await _metrics(http, f"{gw.root}/metrics", KEY)
        assert status == 404
        status, text = await _metrics(http, f"http://127.0.0.1:{port}/metrics")
    assert status == 200 and 'gateway_key_alias="secret-project"' in text


def test_a_literal_metrics_token_is_rejected() -> None:
    """The token is a secret: written literally in the file, the config is refused."""
    with pytest.raises(ConfigError, match=r"server\.metrics_token: must come from the environment"):
        load(sim_config(metrics_token="hunter2"), {})

"""`kind: anthropic` sends Messages requests to Anthropic's API as its SDK would: the key in
x-api-key, one anthropic-version (the client's when forwarded), beta headers kept."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import aiohttp
import anthropic
import orjson
import pytest

from gateway.config import ModelConfig, Price, load
from gateway.fastpaths import HttpClient
from gateway.providers.anthropic import API_VERSION, AnthropicProvider
from gateway.providers.base import UpstreamRequest
from gateway.providers.clients import routes
from gateway.providers.registry import build_providers
from tests.fakes.anthropic_upstream import Behaviour, RunningAnthropic, running_anthropic

pytestmark = pytest.mark.integration  # sockets: a fake upstream, the gateway on a port

KEY = "sk-ant-api03-test"
MODEL = ModelConfig(provider="claude", name="claude-sonnet-4.5", upstream_model="claude-sonnet-4-5",
                    price_per_mtok=Price(Decimal(3), Decimal(15), Decimal("0.3")))
BODY = {"model": "claude-sonnet-4-5", "max_tokens": 20,
        "messages": [{"role": "user", "content": "Hello"}]}


def _config(base_url: str) -> str:
    return f"""
providers:
  claude: {{kind: anthropic, base_url: "{base_url}", api_key: "${{ANTHROPIC_API_KEY}}"}}
models:
  claude-sonnet-4.5: {{provider: claude, upstream_model: claude-sonnet-4-5,
                      price_per_mtok: {{input: 3, output: 15}}}}
"""


@pytest.fixture
async def up() -> AsyncIterator[RunningAnthropic]:
    async with running_anthropic(Behaviour(text="Hi"), api_key=KEY) as upstream:
        yield upstream


@pytest.fixture(params=["httpclient", "aiohttp"])
async def provider(request: pytest.FixtureRequest, up: RunningAnthropic
                   ) -> AsyncIterator[AnthropicProvider]:
    config = load(_config(up.base_url), {"ANTHROPIC_API_KEY": KEY})
    own = request.param == "httpclient"
    client, session = (HttpClient(), None) if own else (None, aiohttp.ClientSession())
    built = build_providers(config, routes(config.providers, {}, own_client=own), client, session,
                            {})["claude"]
    assert isinstance(built, AnthropicProvider)
    yield built
    if client is not None:
        await client.close()
    if session is not None:
        await session.close()


def test_config_defaults() -> None:
    """kind anthropic defaults to Anthropic's base URL and the semantic conventions' name."""
    config = load(_config("https://api.anthropic.com").replace(
        'base_url: "https://api.anthropic.com", ', ""), {"ANTHROPIC_API_KEY": KEY})
    claude = config.providers["claude"]
    assert (claude.base_url, claude.provider_name) == ("https://api.anthropic.com", "anthropic")
    assert config.models["claude-sonnet-4.5"].pricing.base.cache_write == 3_750_000  # $3.75/Mtok


async def test_sends_key_and_default_version(provider: AnthropicProvider,
                                             up: RunningAnthropic) -> None:
    """Without a client version the provider sends its own, and the key in x-api-key."""
    response = await provider.send(UpstreamRequest("chat", "/v1/messages", BODY, False, MODEL))
    answer = anthropic.types.Message.model_validate(orjson.loads(await response.read()))
    assert response.status == 200 and answer.content[0].type == "text"
    headers = up.state.last_request.headers
    assert headers["x-api-key"] == KEY and "authorization" not in headers
    assert headers["anthropic-version"] == API_VERSION
    assert provider.server_address == "127.0.0.1"


async def test_forwarded_version_and_beta_are_the_only_ones(provider: AnthropicProvider,
                                                            up: RunningAnthropic) -> None:
    """A client's anthropic-version replaces the default (not doubled); anthropic-beta passes."""
    beta = "claude-code-20250219,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14"
    request = UpstreamRequest("chat", "/v1/messages", BODY, False, MODEL,
                              headers={"anthropic-version": "2024-01-01", "anthropic-beta": beta})
    response = await provider.send(request)
    await response.read()
    headers = up.state.last_request.headers
    assert headers["anthropic-version"] == "2024-01-01" and headers["anthropic-beta"] == beta


async def test_upstream_errors_come_back_as_they_are(provider: AnthropicProvider,
                                                     up: RunningAnthropic) -> None:
    """An Anthropic error status and body reach the caller unchanged (529 included)."""
    up.state.behaviour = Behaviour.error(529)
    response = await provider.send(UpstreamRequest("chat", "/v1/messages", BODY, False, MODEL))
    body = orjson.loads(await response.read())
    assert response.status == 529 and body["error"]["type"] == "overloaded_error"
    assert response.headers["request-id"].startswith("req_011C")

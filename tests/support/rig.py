"""The rig of the dialect and translation tests: a fake upstream of each API family
(Gemini, Anthropic's Messages, OpenAI's chat completions, OpenAI's Responses) and the
simulator behind the real gateway, the official SDKs pointed at it, and what a test
reads back (the last span of a name, the ledger rows).

A suite names only its models (each on one of the providers `google`, `claude`,
`chat`, `responses` or `sim`) and its key's alias:

    MODELS = '''
      gemini-2.5-flash: {provider: google, price_per_mtok: {input: 0.3, output: 2.5}}
    '''
    rig = rig_fixture(MODELS, alias="genai")  # a test takes `rig: Rig`

`running_upstreams` starts the fakes alone, for a test that runs several gateways in
front of them (a restart, two replicas).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from google import genai
from google.genai import types

from tests.fakes.anthropic_upstream import RunningAnthropic, running_anthropic
from tests.fakes.gemini_upstream import RunningGemini, running_gemini
from tests.fakes.openai_upstream import RunningUpstream, running_upstream
from tests.fakes.responses_upstream import RunningResponses, running_responses
from tests.spend.helpers import ledger_rows
from tests.support.gateway import RunningGateway, running_gateway

GATEWAY_KEY = "sk-gw-rig-client-0123"
GEMINI_KEY = "AIzaSy-upstream-secret-4567"
ANTHROPIC_KEY = "sk-ant-api03-upstream"
CHAT_KEY = "sk-openai-chat-upstream"
RESPONSES_KEY = "sk-proj-upstream-responses"
ENV: Mapping[str, str] = {
    "GEMINI_API_KEY": GEMINI_KEY, "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
    "CHAT_API_KEY": CHAT_KEY, "OPENAI_API_KEY": RESPONSES_KEY, "GATEWAY_KEY": GATEWAY_KEY}


def genai_client(root: str, key: str = GATEWAY_KEY, version: str = "v1") -> genai.Client:
    """google-genai with its base URL at a gateway. Keep the client while using it: the
    SDK closes its session when it goes."""
    return genai.Client(api_key=key, http_options=types.HttpOptions(
        base_url=root, api_version=version))


@dataclass
class Upstreams:
    """The fake upstreams, one of each API family, each wanting its own key."""

    google: RunningGemini
    claude: RunningAnthropic
    chat: RunningUpstream  # chat completions only (`responses_api: false`)
    responses: RunningResponses

    def config(self, models: str, *, alias: str = "sdk", keys: str = "", extra: str = "",
               retry: str = "{max_attempts: 1}") -> str:
        """The gateway's config: the five providers, `models` (entries of the `models:`
        mapping, indented by two), `retry` (one attempt per model unless told), the key
        `alias` (GATEWAY_KEY) and `keys` (more entries of the `keys:` list), then `extra`
        (other sections)."""
        return f"""
providers:
  google: {{kind: gemini, base_url: "{self.google.base_url}", api_key: "${{GEMINI_API_KEY}}",
           timeout_s: 5}}
  claude: {{kind: anthropic, base_url: "{self.claude.base_url}",
           api_key: "${{ANTHROPIC_API_KEY}}", timeout_s: 5}}
  chat: {{kind: openai, base_url: "{self.chat.base_url}", api_key: "${{CHAT_API_KEY}}",
         provider_name: openai, responses_api: false, timeout_s: 5}}
  responses: {{kind: openai, base_url: "{self.responses.base_url}",
              api_key: "${{OPENAI_API_KEY}}", provider_name: openai, timeout_s: 5}}
  sim: {{kind: mock, mock: {{latency_ms: 0, ms_per_chunk: 0, completion_tokens: 6, jitter: 0}}}}
models:
{models}
resilience:
  retry: {retry}
keys:
  - {{alias: {alias}, team: dev, key_env: GATEWAY_KEY}}
{keys}
{extra}
"""

    @contextlib.asynccontextmanager
    async def gateway(self, models: str, *, alias: str = "sdk", keys: str = "",
                      extra: str = "", retry: str = "{max_attempts: 1}",
                      environ: Mapping[str, str] | None = None,
                      **running: Any) -> AsyncIterator[Rig]:
        """A gateway in front of these fakes (`config`'s arguments; `environ` adds to ENV,
        `running` goes to `running_gateway`: its telemetry, `create_app`'s arguments)."""
        text = self.config(models, alias=alias, keys=keys, extra=extra, retry=retry)
        async with running_gateway(text, environ={**ENV, **(environ or {})}, **running) as gw:
            yield Rig(gw, self.google, self.claude, self.chat, self.responses)


@dataclass
class Rig:
    """A running gateway and the fakes behind it."""

    gw: RunningGateway
    google: RunningGemini
    claude: RunningAnthropic
    chat: RunningUpstream
    responses: RunningResponses

    def openai(self, key: str = GATEWAY_KEY) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.gw.base_url, api_key=key, max_retries=0)

    def anthropic(self, key: str = GATEWAY_KEY) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(base_url=self.gw.root, api_key=key, max_retries=0)

    def genai(self, version: str = "v1", key: str = GATEWAY_KEY) -> genai.Client:
        """Keep the client while using it: the SDK closes its session when it goes."""
        return genai_client(self.gw.root, key, version)

    def span(self, name: str) -> dict[str, Any]:
        """The attributes of the last span named `name` ("chat gpt-4.1")."""
        return dict(self.gw.telemetry.spans_named(name)[-1].attributes or {})

    def ledger(self) -> list[Any]:
        return ledger_rows(Path(self.gw.config.storage.sqlite_path))

    def settled(self) -> list[Any]:
        """The ledger rows no longer pending."""
        return [r for r in self.ledger() if r.status != "pending"]


@contextlib.asynccontextmanager
async def running_upstreams() -> AsyncIterator[Upstreams]:
    async with running_gemini(api_key=GEMINI_KEY) as google, \
            running_anthropic(api_key=ANTHROPIC_KEY) as claude, \
            running_upstream(api_key=CHAT_KEY) as chat, \
            running_responses(api_key=RESPONSES_KEY) as responses:
        yield Upstreams(google, claude, chat, responses)


@contextlib.asynccontextmanager
async def running_rig(models: str, **gateway: Any) -> AsyncIterator[Rig]:
    """The fakes and one gateway in front of them (`Upstreams.gateway`'s arguments)."""
    async with running_upstreams() as upstreams, \
            upstreams.gateway(models, **gateway) as rig:
        yield rig


def rig_fixture(models: str, **gateway: Any) -> Callable[[], AsyncIterator[Rig]]:
    """The pytest fixture `rig`: a `running_rig(models, **gateway)` for each test."""

    @pytest.fixture(name="rig")
    async def rig() -> AsyncIterator[Rig]:
        async with running_rig(models, **gateway) as running:
            yield running

    return rig

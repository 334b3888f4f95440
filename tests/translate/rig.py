"""The rig of the translated-call tests: a fake Gemini, a fake Anthropic and a fake
OpenAI upstream behind the real gateway, the official SDKs pointed at it, and what a
test reads back (the last span of a name, the ledger rows)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import openai
from google import genai
from google.genai import types

from tests.fakes.anthropic_upstream import RunningAnthropic, running_anthropic
from tests.fakes.gemini_upstream import RunningGemini, running_gemini
from tests.fakes.openai_upstream import RunningUpstream, running_upstream
from tests.spend.helpers import ledger_rows
from tests.support.gateway import RunningGateway, running_gateway

GATEWAY_KEY = "sk-gw-translate-0123"


def _config(gemini_url: str, claude_url: str, openai_url: str) -> str:
    return f"""
providers:
  google: {{kind: gemini, base_url: "{gemini_url}", api_key: "${{GEMINI_API_KEY}}",
           timeout_s: 5}}
  claude: {{kind: anthropic, base_url: "{claude_url}", api_key: "${{ANTHROPIC_API_KEY}}",
           timeout_s: 5}}
  oai: {{kind: openai, base_url: "{openai_url}", api_key: "${{OPENAI_API_KEY}}",
        provider_name: openai, timeout_s: 5}}
models:
  gemini-2.5-flash:
    provider: google
    upstream_model: gemini-2.5-flash-001
    price_per_mtok: {{input: 0.3, output: 2.5}}
  gemini-fallback:
    provider: google
    price_per_mtok: {{input: 0.3, output: 2.5}}
    fallbacks: [claude-sonnet-4.5]
  gemini-embedding:
    provider: google
    upstream_model: gemini-embedding-001
    price_per_mtok: {{input: 0.15, output: 0}}
  claude-sonnet-4.5:
    provider: claude
    upstream_model: claude-sonnet-4-5
    price_per_mtok: {{input: 3, output: 15}}
  claude-fallback:
    provider: claude
    price_per_mtok: {{input: 3, output: 15}}
    fallbacks: [gemini-2.5-flash]
  text-embedding-3-small:
    provider: oai
    price_per_mtok: {{input: 0.02, output: 0}}
resilience:
  retry: {{max_attempts: 1}}
keys:
  - {{alias: sdk, team: dev, key_env: GATEWAY_KEY}}
"""


@dataclass
class Rig:
    gw: RunningGateway
    google: RunningGemini
    claude: RunningAnthropic
    oai: RunningUpstream

    def openai(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.gw.base_url, api_key=GATEWAY_KEY, max_retries=0)

    def anthropic(self) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(base_url=self.gw.root, api_key=GATEWAY_KEY, max_retries=0)

    def genai(self) -> genai.Client:
        """Keep the client while using it: the SDK closes its session when it goes."""
        return genai.Client(api_key=GATEWAY_KEY, http_options=types.HttpOptions(
            base_url=self.gw.root, api_version="v1beta"))

    def span(self, name: str) -> dict[str, Any]:
        return dict(self.gw.telemetry.spans_named(name)[-1].attributes or {})

    def ledger(self) -> list[Any]:
        return ledger_rows(Path(self.gw.config.storage.sqlite_path))

    def settled(self) -> list[Any]:
        """The ledger rows no longer pending."""
        return [r for r in self.ledger() if r.status != "pending"]


@contextlib.asynccontextmanager
async def running_rig() -> AsyncIterator[Rig]:
    async with running_gemini(api_key="AIza-up") as google, \
            running_anthropic(api_key="sk-ant-up") as claude, \
            running_upstream(api_key="sk-openai-up") as oai:
        env = {"GEMINI_API_KEY": "AIza-up", "ANTHROPIC_API_KEY": "sk-ant-up",
               "OPENAI_API_KEY": "sk-openai-up", "GATEWAY_KEY": GATEWAY_KEY}
        config = _config(google.base_url, claude.base_url, oai.base_url)
        async with running_gateway(config, environ=env) as gw:
            yield Rig(gw, google, claude, oai)

"""The ledger's cost of every token type and across a price tier, against costs computed
by hand from the catalog's list prices, for chat completions and Anthropic Messages; and
an unpriced model, never free against a budget."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import openai
import pytest

from tests.fakes import anthropic_upstream as ant
from tests.fakes import openai_upstream as oai
from tests.spend.helpers import ledger_rows, prom_value
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.telemetry import attrs

pytestmark = pytest.mark.integration  # sockets: two fake upstreams, the gateway on a port

HI: list[Any] = [{"role": "user", "content": "hi"}]
ENV = {"OAI_KEY": "sk-oai-up", "ANT_KEY": "sk-ant-up"}


def _config(openai_url: str, anthropic_url: str, ledger: Path, extra: str = "") -> str:
    """Prices from the catalog (genai-prices 0.2.3) except where a model sets one."""
    return f"""
providers:
  oai: {{kind: openai, base_url: "{openai_url}", api_key: "${{OAI_KEY}}", provider_name: openai}}
  gem: {{kind: openai, base_url: "{openai_url}", api_key: "${{OAI_KEY}}",
        provider_name: gcp.gemini}}
  claude: {{kind: anthropic, base_url: "{anthropic_url}", api_key: "${{ANT_KEY}}"}}
models:
  gpt-4.1: {{provider: oai}}
  thinker: {{provider: oai, upstream_model: o4-mini, price_per_mtok: {{reasoning: 5}}}}
  gemini-2.5-pro: {{provider: gem}}
  gemini-2.5-flash: {{provider: gem, price_per_mtok: {{output_audio: 12}}}}
  claude-sonnet-4.5: {{provider: claude, upstream_model: claude-sonnet-4-5}}
  mystery: {{provider: oai, upstream_model: mystery-model-x}}
  "claude-*": {{provider: claude}}
resilience:
  retry: {{max_attempts: 1}}
storage: {{sqlite_path: "{ledger}"}}
{extra}
"""


@dataclass
class Rig:
    gw: RunningGateway
    oai: oai.RunningUpstream
    claude: ant.RunningAnthropic
    ledger: Path

    def openai(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.gw.base_url, api_key="none", max_retries=0)

    def anthropic(self) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(base_url=self.gw.root, api_key="none", max_retries=0)

    async def metrics(self) -> str:
        async with aiohttp.ClientSession() as http, http.get(f"{self.gw.root}/metrics") as resp:
            return await resp.text()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    state = oai.UpstreamState(api_key="sk-oai-up", models=None)
    async with oai.running_upstream(state=state) as up, \
            ant.running_anthropic(api_key="sk-ant-up") as claude:
        ledger = tmp_path / "ledger.db"
        async with running_gateway(_config(up.base_url, claude.base_url, ledger),
                                   environ=ENV) as gw:
            yield Rig(gw, up, claude, ledger)


# (model, the fake's usage, the cost in nano-dollars worked out by hand from the list
# prices in US dollars per million tokens; 1 token at $1/Mtok is 1,000 nano-dollars)
CHAT_CALLS: list[tuple[str, oai.Behaviour, int]] = [
    # gpt-4.1 (2 in, 0.5 cached, 8 out): 6,000 x 2 + 4,000 x 0.5 + 1,000 x 8 = 22,000
    ("gpt-4.1", oai.Behaviour(prompt_tokens=10_000, cached_tokens=4_000,
                              completion_tokens=1_000), 22_000_000),
    # o4-mini (1.1 in, 4.4 out) with reasoning priced 5 by the config:
    # 2,000 x 1.1 + 500 x 4.4 + 2,500 x 5 = 2,200 + 2,200 + 12,500 = 16,900
    ("thinker", oai.Behaviour(prompt_tokens=2_000, completion_tokens=3_000,
                              reasoning_tokens=2_500), 16_900_000),
    # gemini-2.5-pro at exactly 200,000 prompt tokens: the base tier (1.25, 0.125, 10):
    # 150,000 x 1.25 + 50,000 x 0.125 + 2,000 x 10 = 187,500 + 6,250 + 20,000 = 213,750
    ("gemini-2.5-pro", oai.Behaviour(prompt_tokens=200_000, cached_tokens=50_000,
                                     completion_tokens=2_000, reasoning_tokens=500),
     213_750_000),
    # one token more: every token at the tier above 200,000 (2.5, 0.25, 15):
    # 150,001 x 2.5 + 50,000 x 0.25 + 2,000 x 15 = 375,002.5 + 12,500 + 30,000 = 417,502.5
    ("gemini-2.5-pro", oai.Behaviour(prompt_tokens=200_001, cached_tokens=50_000,
                                     completion_tokens=2_000, reasoning_tokens=500),
     417_502_500),
    # gemini-2.5-flash (0.3 in, 0.03 cached, 1 audio in, 2.5 out; audio out 12 by the
    # config): 1,000 x 0.03 + 3,000 x 1 + 1,000 x 0.3 + 600 x 12 + 200 x 2.5
    # = 30 + 3,000 + 300 + 7,200 + 500 = 11,030
    ("gemini-2.5-flash", oai.Behaviour(prompt_tokens=5_000, cached_tokens=1_000,
                                       audio_prompt_tokens=3_000, completion_tokens=800,
                                       audio_completion_tokens=600), 11_030_000),
]

# Claude Sonnet 4.5: 3 in, 3.75 five-minute writes, 6 one-hour writes, 0.3 reads, 15 out;
# above 200,000 prompt tokens 6, 7.5, 12, 0.6 and 22.5.
MESSAGES_CALLS: list[tuple[ant.Behaviour, int]] = [
    # 1,000 x 3 + 2,000 x 3.75 + 3,000 x 6 + 10,000 x 0.3 + 500 x 15
    # = 3,000 + 7,500 + 18,000 + 3,000 + 7,500 = 39,000
    (ant.Behaviour(input_tokens=1_000, cache_write_5m=2_000, cache_write_1h=3_000,
                   cache_read=10_000, output_tokens=500), 39_000_000),
    # exactly 200,000 prompt tokens (100,000 + 50,000 + 20,000 + 30,000): the base tier
    # 300,000 + 187,500 + 120,000 + 9,000 + 15,000 = 631,500
    (ant.Behaviour(input_tokens=100_000, cache_write_5m=50_000, cache_write_1h=20_000,
                   cache_read=30_000, output_tokens=1_000), 631_500_000),
    # 200,001: 100,001 x 6 + 50,000 x 7.5 + 20,000 x 12 + 30,000 x 0.6 + 1,000 x 22.5
    # = 600,006 + 375,000 + 240,000 + 18,000 + 22,500 = 1,255,506
    (ant.Behaviour(input_tokens=100_001, cache_write_5m=50_000, cache_write_1h=20_000,
                   cache_read=30_000, output_tokens=1_000), 1_255_506_000),
]


async def test_chat_completions_ledger_cost_equals_the_hand_computation(rig: Rig) -> None:
    """Cached input, reasoning priced apart, audio in and out, and both sides of Gemini 2.5
    Pro's 200k tier: each ledger row's cost is the hand computation to the nano-dollar, and
    the audio tokens are kept in their own columns."""
    async with rig.openai() as client:
        for model, behaviour, _ in CHAT_CALLS:
            rig.oai.state.queue.append(behaviour)
            await client.chat.completions.create(model=model, messages=HI)
    rows = ledger_rows(rig.ledger)
    assert [(r.model_served, r.cost_nanos) for r in rows] == [
        (model, nanos) for model, _, nanos in CHAT_CALLS]
    assert [(r.input_tokens, r.cached_tokens, r.output_tokens, r.reasoning_tokens)
            for r in rows] == [(10_000, 4_000, 1_000, 0), (2_000, 0, 3_000, 2_500),
                               (200_000, 50_000, 2_000, 500), (200_001, 50_000, 2_000, 500),
                               (5_000, 1_000, 800, 0)]
    assert not any(r.unpriced for r in rows)
    assert [(r.input_audio_tokens, r.output_audio_tokens, r.input_image_tokens,
             r.output_image_tokens) for r in rows][-1] == (3_000, 600, 0, 0)


async def test_messages_ledger_cost_equals_the_hand_computation(rig: Rig) -> None:
    """Anthropic Messages with reads, five-minute and one-hour writes, at 200,000 and
    200,001 prompt tokens, JSON and streamed: ledger cost and token columns by hand."""
    async with rig.anthropic() as client:
        for behaviour, _ in MESSAGES_CALLS:
            rig.claude.state.queue.append(behaviour)
            await client.messages.create(model="claude-sonnet-4.5", max_tokens=64,
                                         messages=HI)
        rig.claude.state.queue.append(MESSAGES_CALLS[0][0])
        async with client.messages.stream(model="claude-sonnet-4.5", max_tokens=64,
                                          messages=HI) as stream:
            await stream.get_final_message()
    rows = ledger_rows(rig.ledger)
    assert [r.cost_nanos for r in rows] == [nanos for _, nanos in MESSAGES_CALLS] + [39_000_000]
    assert [(r.input_tokens, r.cached_tokens, r.cache_write_tokens, r.cache_write_1h_tokens,
             r.output_tokens) for r in rows[:3]] == [
        (16_000, 10_000, 2_000, 3_000, 500), (200_000, 30_000, 50_000, 20_000, 1_000),
        (200_001, 30_000, 50_000, 20_000, 1_000)]
    assert rows[3].stream and rows[3].cache_write_1h_tokens == 3_000


async def test_unpriced_model_is_served_flagged_and_charged_the_fallback(
        rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    """A model in neither the catalog nor the config: served, its span says unpriced (no
    $0 cost), it is counted per model and logged once, and the ledger charges the
    documented fallback ($15 in, $75 out per Mtok: 1,000 x 15 + 100 x 75 = 22,500 ->
    22,500,000 nano-dollars)."""
    caplog.set_level(logging.WARNING, logger="gateway.path.lifecycle")
    async with rig.openai() as client:
        for _ in range(2):
            rig.oai.state.queue.append(oai.Behaviour(prompt_tokens=1_000, completion_tokens=100))
            reply = await client.chat.completions.create(model="mystery", messages=HI)
            assert reply.choices[0].message.content
    (row, again) = ledger_rows(rig.ledger)
    assert row.unpriced and row.cost_nanos == 22_500_000 and again.cost_nanos == 22_500_000
    span = attrs(rig.gw.telemetry.spans_named("chat mystery")[-1])
    assert span["gateway.cost.unpriced"] is True and "gateway.cost.usd" not in span
    text = await rig.metrics()
    assert prom_value(text, "gateway_unpriced_calls_total",
                      {"gen_ai_request_model": "mystery"}) == 2
    assert prom_value(text, "gateway_cost_usd_total", {"gen_ai_request_model": "mystery"}) is None
    logged = [r.getMessage() for r in caplog.records if "has no price" in r.getMessage()]
    assert len(logged) == 1 and "'mystery'" in logged[0]


async def test_cache_savings_are_counted_in_dollars(rig: Rig) -> None:
    """gateway_cache_savings_usd_total: 4,000 cached tokens of gpt-4.1 saved (2 - 0.5) x
    4,000 / 10^6 = $0.006 against the full input price."""
    rig.oai.state.queue.append(oai.Behaviour(prompt_tokens=10_000, cached_tokens=4_000,
                                             completion_tokens=10))
    async with rig.openai() as client:
        await client.chat.completions.create(model="gpt-4.1", messages=HI)
    text = await rig.metrics()
    saved = prom_value(text, "gateway_cache_savings_usd_total", {"gen_ai_request_model": "gpt-4.1"})
    assert saved == pytest.approx(0.006, abs=1e-12)


async def test_unpriced_refuse_answers_403_in_each_dialect_shape(tmp_path: Path) -> None:
    """`spend.unpriced: refuse`: a call to an unpriced model gets 403 model_unpriced, in
    OpenAI's error shape on chat completions and Anthropic's on Messages, and reaches no
    upstream; priced models are still served."""
    state = oai.UpstreamState(api_key="sk-oai-up", models=None)
    async with oai.running_upstream(state=state) as up, \
            ant.running_anthropic(api_key="sk-ant-up") as claude:
        config = _config(up.base_url, claude.base_url, tmp_path / "l.db",
                         extra="spend: {unpriced: refuse}\n")
        async with running_gateway(config, environ=ENV) as gw:
            async with openai.AsyncOpenAI(base_url=gw.base_url, api_key="none",
                                          max_retries=0) as client:
                with pytest.raises(openai.PermissionDeniedError) as refused:
                    await client.chat.completions.create(model="mystery", messages=HI)
                await client.chat.completions.create(model="gpt-4.1", messages=HI)
            async with anthropic.AsyncAnthropic(base_url=gw.root, api_key="none",
                                                max_retries=0) as ant_client:
                with pytest.raises(anthropic.PermissionDeniedError) as refused_ant:
                    await ant_client.messages.create(model="mystery", max_tokens=8,
                                                     messages=HI)
    body = refused.value.body
    assert isinstance(body, dict) and body["code"] == "model_unpriced"
    assert "mystery" in body["message"] and "spend.unpriced: refuse" in body["message"]
    ant_body = refused_ant.value.body
    assert isinstance(ant_body, dict) and ant_body["type"] == "error"
    assert ant_body["error"]["type"] == "permission_error"
    assert [r.body["model"] for r in state.requests] == ["gpt-4.1"]


async def test_a_pattern_entry_charges_each_id_its_own_catalog_price(rig: Rig) -> None:
    """`claude-*` with no price: Opus is charged Opus's list price, Haiku Haiku's (1,000 in
    and 100 out: 1,000 x 15 + 100 x 75 = 22,500 and 1,000 x 1 + 100 x 5 = 1,500 nano-dollars
    x 1,000), both recorded under the pattern's name."""
    async with rig.anthropic() as client:
        for model in ("claude-opus-4-1-20250805", "claude-haiku-4-5"):
            rig.claude.state.queue.append(ant.Behaviour(input_tokens=1_000, output_tokens=100))
            await client.messages.create(model=model, max_tokens=64, messages=HI)
    rows = ledger_rows(rig.ledger)
    assert [(r.model_requested, r.cost_nanos, r.unpriced) for r in rows] == [
        ("claude-*", 22_500_000, False), ("claude-*", 1_500_000, False)]

"""Fallbacks and retries cannot bypass budgets: every attempt, on every model of the chain,
reserves against the budgets of the model that would serve it."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from openai import AsyncOpenAI

from tests.fakes.openai_upstream import Behaviour, RunningUpstream
from tests.spend.helpers import MESSAGES, ledger_rows, spend_gateway

pytestmark = pytest.mark.integration  # sockets or processes: the slow tier


def _config(upstream_url: str, ledger: Path, primary_extra: str, budgets: str) -> str:
    return f"""
providers:
  up: {{kind: openai, base_url: "{upstream_url}", api_key: "${{UPSTREAM_KEY}}",
        provider_name: openai, timeout_s: 5}}
models:
  gpt-4.1:
    provider: up
    price_per_mtok: {{input: 2.5, output: 8}}
    fallbacks: [cheap]
    retry: {{max_attempts: 2, initial_backoff_s: 0, max_backoff_s: 0}}
    {primary_extra}
  cheap:
    provider: up
    upstream_model: gpt-4.1-mini
    price_per_mtok: {{input: 0.4, output: 1.6}}
storage: {{sqlite_path: "{ledger}"}}
budgets:
{budgets}
"""


async def test_paid_fallback_is_refused_by_its_own_models_budget(upstream: RunningUpstream,
                                                                 tmp_path: Path) -> None:
    """gpt-4.1 fails; the fallback model's exhausted budget refuses it (429), and no paid
    call reaches the fallback upstream."""
    upstream.state.per_model = {"gpt-4.1": Behaviour.error(500)}
    config = _config(upstream.base_url, tmp_path / "l.db", "",
                     "  - {scope: model, model: cheap, limit_usd: 0.000001}")
    async with spend_gateway(config) as (gw, _):
        async with AsyncOpenAI(base_url=gw.base_url, api_key="k", max_retries=0) as sdk:
            with pytest.raises(openai.RateLimitError) as info:
                await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    assert info.value.code == "budget_exceeded" and "model:cheap:day" in info.value.message
    assert [r.body["model"] for r in upstream.state.requests] == ["gpt-4.1", "gpt-4.1"]
    assert ledger_rows(tmp_path / "l.db") == []


async def test_budget_fallback_serves_from_the_next_model_and_attributes_it(
        upstream: RunningUpstream, tmp_path: Path) -> None:
    """With on_budget_exceeded: fallback, a refused model hands over to the next; the ledger
    says which model was asked for and which one served (and was billed)."""
    upstream.state.behaviour = Behaviour(completion_tokens=5)
    config = _config(upstream.base_url, tmp_path / "l.db", "on_budget_exceeded: fallback",
                     "  - {scope: model, model: gpt-4.1, limit_usd: 0.000001}")
    async with spend_gateway(config) as (gw, _):
        async with AsyncOpenAI(base_url=gw.base_url, api_key="k", max_retries=0) as sdk:
            answer = await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    assert answer.model == "cheap"
    [row] = ledger_rows(tmp_path / "l.db")
    assert (row.model_requested, row.model_served) == ("gpt-4.1", "cheap")
    assert row.cost_nanos == row.input_tokens * 400 + row.output_tokens * 1600


async def test_every_retry_reserves_and_failed_tries_release(upstream: RunningUpstream,
                                                             tmp_path: Path) -> None:
    """A retried attempt reserves again; the failed try's hold is released, so a budget
    that fits one call still serves it after a retry."""
    upstream.state.queue.append(Behaviour.error(500))
    upstream.state.behaviour = Behaviour(completion_tokens=10)
    config = _config(upstream.base_url, tmp_path / "l.db", "",
                     "  - {scope: global, limit_usd: 0.05}")  # one default worst case fits
    async with spend_gateway(config) as (gw, spend):
        async with AsyncOpenAI(base_url=gw.base_url, api_key="k", max_retries=0) as sdk:
            await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
        budget = spend.budgets.all()[0]
        spent, reserved = spend.backend.level(budget, spend.budgets.window(budget,
                                                                         spend.clock.now()))
    [row] = ledger_rows(tmp_path / "l.db")
    assert row.attempt == 2 and reserved == 0 and spent == row.cost_nanos

"""Budgets on the request path with the official SDK: 429 `budget_exceeded` with
Retry-After, windows that reset at local midnight, the ledger for plain, streamed
and client-cancelled calls, and the budget metrics."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI

from gateway.spend.sqlite_store import connect
from gateway.spend.windows import ManualClock
from tests.fakes.openai_upstream import Behaviour, RunningUpstream
from tests.spend.helpers import (
    MESSAGES,
    ledger_rows,
    prom_value,
    shanghai,
    spend_config,
    spend_gateway,
    worst_case_usd,
)

pytestmark = pytest.mark.integration  # sockets or processes: the slow tier


def _budget(limit: float, extra: str = "") -> str:
    return f"""
spend: {{timezone: Asia/Shanghai}}
budgets:
  - name: fuse
    scope: global
    window: day
    limit_usd: {limit}
{extra}"""


async def test_budget_refuses_with_429_budget_exceeded_and_retry_after(
        upstream: RunningUpstream, tmp_path: Path) -> None:
    """At the limit the SDK raises RateLimitError with code budget_exceeded, a message naming
    the budget and its reset, and Retry-After in seconds until local midnight."""
    upstream.state.behaviour = Behaviour(completion_tokens=100)
    clock = ManualClock(shanghai("2026-11-29 23:00:00"))
    config = spend_config(upstream.base_url, tmp_path / "l.db", _budget(worst_case_usd(100) * 1.5))
    async with spend_gateway(config, clock=clock) as (gw, _):
        async with AsyncOpenAI(base_url=gw.base_url, api_key="k", max_retries=0) as sdk:
            await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES, max_tokens=100)
            with pytest.raises(openai.RateLimitError) as info:
                await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES,
                                                  max_tokens=100)
    error = info.value
    assert error.status_code == 429 and error.code == "budget_exceeded"
    assert error.type == "budget_exceeded"
    assert "Budget 'fuse'" in error.message
    assert "2026-11-30 00:00 Asia/Shanghai" in error.message
    assert error.response.headers["retry-after"] == "3600"
    assert upstream.state.total_requests == 1


async def test_day_window_resets_at_midnight_in_the_configured_zone(
        upstream: RunningUpstream, tmp_path: Path) -> None:
    """Used up at 23:59 Shanghai time (15:59 UTC), the budget is fresh again at 00:00:01."""
    upstream.state.behaviour = Behaviour(completion_tokens=100)
    clock = ManualClock(shanghai("2026-11-29 23:59:00"))
    config = spend_config(upstream.base_url, tmp_path / "l.db", _budget(worst_case_usd(100) * 1.5))
    async with spend_gateway(config, clock=clock) as (gw, spend):
        async with AsyncOpenAI(base_url=gw.base_url, api_key="k", max_retries=0) as sdk:
            await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES, max_tokens=100)
            with pytest.raises(openai.RateLimitError) as info:
                await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES,
                                                  max_tokens=100)
            assert info.value.response.headers["retry-after"] == "60"
            clock.set(shanghai("2026-11-30 00:00:01"))
            await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES, max_tokens=100)
    days = {r.ts // 1 for r in ledger_rows(tmp_path / "l.db")}
    assert len(days) == 2
    budget = spend.budgets.all()[0]
    window = spend.budgets.window(budget, clock.now())
    assert window.id == "2026-11-30"


async def test_month_window_and_team_key_model_provider_scopes(upstream: RunningUpstream,
                                                                tmp_path: Path) -> None:
    """Each scope refuses only the calls it covers: a model budget does not block another model."""
    upstream.state.behaviour = Behaviour(completion_tokens=10)
    extra = """
budgets:
  - {scope: model, model: gpt-4.1, window: month, limit_usd: 0.0001}
  - {scope: provider, provider: openai, window: day, limit_usd: 100}
"""
    config = spend_config(upstream.base_url, tmp_path / "l.db", extra)
    async with spend_gateway(config) as (gw, _):
        async with AsyncOpenAI(base_url=gw.base_url, api_key="k", max_retries=0) as sdk:
            with pytest.raises(openai.RateLimitError) as info:
                await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES,
                                                  max_tokens=10)
            assert "model:gpt-4.1:month" in info.value.message
            await sdk.chat.completions.create(model="cheap", messages=MESSAGES, max_tokens=10)


async def test_alert_budget_never_refuses(upstream: RunningUpstream, tmp_path: Path) -> None:
    """An `alert` budget lets calls past its limit (it only notifies)."""
    upstream.state.behaviour = Behaviour(completion_tokens=10)
    config = spend_config(upstream.base_url, tmp_path / "l.db",
                          _budget(0.000001).replace("limit_usd:", "action: alert\n    limit_usd:"))
    async with spend_gateway(config) as (gw, _):
        async with AsyncOpenAI(base_url=gw.base_url, api_key="k", max_retries=0) as sdk:
            for _ in range(3):
                await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES)


async def test_ledger_records_a_plain_call_with_attribution(upstream: RunningUpstream,
                                                            tmp_path: Path) -> None:
    """A plain call's row has ids, key, team, models, provider, tokens and the exact cost."""
    upstream.state.behaviour = Behaviour(completion_tokens=7, prompt_tokens=11, cached_tokens=4)
    config = spend_config(upstream.base_url, tmp_path / "l.db")
    async with spend_gateway(config) as (gw, _):
        async with AsyncOpenAI(base_url=gw.base_url, api_key="k", max_retries=0) as sdk:
            raw = await sdk.chat.completions.with_raw_response.create(
                model="gpt-4.1", messages=MESSAGES)
    [row] = ledger_rows(tmp_path / "l.db")
    assert row.request_id == raw.headers["x-request-id"]
    assert len(row.trace_id) == 32 and row.trace_id in raw.headers["traceresponse"]
    assert (row.key_alias, row.team, row.operation) == ("anonymous", "default", "chat")
    assert (row.model_requested, row.model_served, row.provider) == ("gpt-4.1", "gpt-4.1", "openai")
    assert (row.input_tokens, row.output_tokens, row.cached_tokens) == (11, 7, 4)
    # 7 uncached input at $2.5, 4 cached at $0.625, 7 output at $8 per Mtok
    assert row.cost_nanos == 7 * 2500 + 4 * 625 + 7 * 8000
    assert row.status == "ok" and not row.stream and not row.estimated


async def test_streamed_call_is_charged_its_reported_usage(upstream: RunningUpstream,
                                                           tmp_path: Path) -> None:
    """A streamed call (the client did not ask for usage) is charged the upstream's usage."""
    upstream.state.behaviour = Behaviour(completion_tokens=30, prompt_tokens=9)
    config = spend_config(upstream.base_url, tmp_path / "l.db")
    async with spend_gateway(config) as (gw, _):
        async with AsyncOpenAI(base_url=gw.base_url, api_key="k", max_retries=0) as sdk:
            stream = await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES,
                                                       stream=True)
            chunks = [c async for c in stream]
    assert all(c.usage is None for c in chunks)
    [row] = ledger_rows(tmp_path / "l.db")
    assert row.stream and row.status == "ok" and not row.estimated
    assert (row.input_tokens, row.output_tokens) == (9, 30)
    assert row.cost_nanos == 9 * 2500 + 30 * 8000


def _refuse_rows(ledger: Path, status: str) -> None:
    """From now on the ledger file refuses rows of `status` (as a full disk would)."""
    conn = connect(str(ledger))
    conn.execute(f"CREATE TRIGGER refuse BEFORE INSERT ON ledger WHEN NEW.status = '{status}' "
                 "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")
    conn.close()


async def test_stream_whose_journal_row_fails_to_commit_gets_503_and_no_byte(
        upstream: RunningUpstream, tmp_path: Path) -> None:
    """The journal row commits while the upstream answers; when it cannot be committed the
    client gets 503 `spend_store_unavailable` instead of the stream, and the attempt is
    still charged (its prompt, estimated)."""
    upstream.state.behaviour = Behaviour(completion_tokens=30, prompt_tokens=9)
    ledger = tmp_path / "l.db"
    async with spend_gateway(spend_config(upstream.base_url, ledger)) as (gw, _):
        _refuse_rows(ledger, "pending")
        async with AsyncOpenAI(base_url=gw.base_url, api_key="k", max_retries=0) as sdk:
            with pytest.raises(openai.APIStatusError) as info:
                await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES,
                                                  stream=True)
    assert info.value.status_code == 503 and info.value.code == "spend_store_unavailable"
    [row] = ledger_rows(ledger)
    assert row.stream and row.estimated and row.output_tokens == 0 and row.input_tokens > 0


async def test_plain_call_is_answered_when_its_row_fails_to_commit(upstream: RunningUpstream,
                                                                  tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture
                                                                  ) -> None:
    """A plain call waits for its ledger row; a row the ledger refuses is logged, and the
    answer (the upstream already served it) still goes out."""
    upstream.state.behaviour = Behaviour(completion_tokens=7)
    ledger = tmp_path / "l.db"
    async with spend_gateway(spend_config(upstream.base_url, ledger)) as (gw, _):
        _refuse_rows(ledger, "ok")
        async with AsyncOpenAI(base_url=gw.base_url, api_key="k", max_retries=0) as sdk:
            raw = await sdk.chat.completions.with_raw_response.create(
                model="gpt-4.1", messages=MESSAGES)
    assert raw.http_response.status_code == 200
    assert ledger_rows(ledger) == []
    assert any("could not record request " + raw.headers["x-request-id"] in r.getMessage()
               for r in caplog.records)


async def test_client_cancelled_stream_is_charged_what_it_used(upstream: RunningUpstream,
                                                               tmp_path: Path) -> None:
    """A client that hangs up mid-stream is charged the prompt and the chunks it was sent."""
    upstream.state.behaviour = Behaviour(completion_tokens=200, chunk_delay_s=0.02)
    ledger = tmp_path / "l.db"
    config = spend_config(upstream.base_url, ledger)
    async with spend_gateway(config) as (gw, _):
        async with AsyncOpenAI(base_url=gw.base_url, api_key="k", max_retries=0) as sdk:
            stream = await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES,
                                                       stream=True)
            seen = 0
            async for chunk in stream:
                seen += 1 if chunk.choices and chunk.choices[0].delta.content else 0
                if seen == 5:
                    break
            await stream.close()
        for _ in range(200):
            rows = ledger_rows(ledger)
            if rows and rows[0].status != "pending":
                break
            await asyncio.sleep(0.02)
    [row] = rows
    assert row.status == "client_disconnect" and row.estimated
    assert 5 <= row.output_tokens < 200
    assert row.input_tokens > 0
    assert row.cost_nanos == row.input_tokens * 2500 + row.output_tokens * 8000


async def test_failed_attempt_without_usage_leaves_no_charge(upstream: RunningUpstream,
                                                             tmp_path: Path) -> None:
    """An upstream error before any token releases the reservation and records nothing."""
    upstream.state.behaviour = Behaviour.error(400)
    config = spend_config(upstream.base_url, tmp_path / "l.db", _budget(1))
    async with spend_gateway(config) as (gw, spend):
        async with AsyncOpenAI(base_url=gw.base_url, api_key="k", max_retries=0) as sdk:
            with pytest.raises(openai.BadRequestError):
                await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
        budget = spend.budgets.all()[0]
        assert spend.backend.level(budget, spend.budgets.window(budget, spend.clock.now())) == (0, 0)
    assert ledger_rows(tmp_path / "l.db") == []


async def test_budget_gauges_and_rejection_counter(upstream: RunningUpstream,
                                                   tmp_path: Path) -> None:
    """/metrics shows spend and limit per budget, and rejections by budget, scope, window."""
    upstream.state.behaviour = Behaviour(completion_tokens=100)
    config = spend_config(upstream.base_url, tmp_path / "l.db", _budget(worst_case_usd(100) * 1.5))
    async with spend_gateway(config) as (gw, _):
        async with AsyncOpenAI(base_url=gw.base_url, api_key="k", max_retries=0) as sdk:
            await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES, max_tokens=100)
            with pytest.raises(openai.RateLimitError):
                await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES,
                                                  max_tokens=100)
        async with aiohttp.ClientSession() as http, http.get(f"{gw.root}/metrics") as resp:
            text = await resp.text()
    labels = {"gateway_budget": "fuse", "gateway_budget_scope": "global",
              "gateway_budget_window": "day"}
    assert prom_value(text, "gateway_budget_limit_usd", labels) == pytest.approx(
        worst_case_usd(100) * 1.5)
    assert prom_value(text, "gateway_budget_rejections_total", labels) == 1
    assert prom_value(text, "gateway_budget_spend_usd", labels) == pytest.approx(
        (9 * 2.5 + 100 * 8) / 1e6)

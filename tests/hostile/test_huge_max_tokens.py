"""Threat: a client asks for an absurd output (`max_tokens` near 2^64, a huge `n`) to make
the gateway's spend arithmetic overflow, hoping to hang or fail other users' requests
(originally: the worst case overflowed the ledger's frame encoder or SQLite, and every
request batched in the same event-loop tick hung forever or got 503).

What it gets: a 400 in OpenAI's words for a value out of `limits:`; and with the limits
raised by an operator, a worst case clamped to $9 million, refused by any smaller budget.
Everyone else's calls are served, nothing is left in flight, a shutdown drains at once.
A hostile upstream reporting usage near 2^64 tokens gets the same clamps."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI

from gateway.spend.budgets import MAX_NANOS
from gateway.spend.report import summarize_sqlite
from gateway.spend.sqlite_store import connect
from gateway.usage import MAX_TOKENS
from tests.fakes.openai_upstream import Behaviour, RunningUpstream
from tests.spend.helpers import ENV, MESSAGES, ledger_rows, spend_config
from tests.support.gateway import running_gateway
from tests.support.process import gateway_process

pytestmark = pytest.mark.integration  # sockets or processes: the slow tier

U64_MAX = 2**64 - 1  # past orjson's 64-bit integers once multiplied by a price
PAST_SQLITE = 1_500_000_000_000_000  # x $8/Mtok: between 2^63 and 2^64 nano-dollars


def _stream_body(**fields: Any) -> dict[str, Any]:
    return {"model": "gpt-4.1", "messages": MESSAGES, "stream": True, **fields}


async def _post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]
                ) -> tuple[int | str, bytes]:
    try:
        async with http.post(url, json=body, timeout=aiohttp.ClientTimeout(total=60)) as resp:
            return resp.status, await resp.read()
    except TimeoutError:
        return "hung", b""


def _active_requests(metrics: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
               if line.startswith("gateway_active_requests{"))


@pytest.mark.parametrize("poison", [U64_MAX, PAST_SQLITE], ids=["past-orjson", "past-sqlite"])
async def test_one_huge_max_tokens_among_40_streams_hangs_no_one(poison: int) -> None:
    """On the embedded default (SQLite), 1 poisoned and 40 normal streams at once: the
    poisoned one gets 400, the 40 finish, no request stays active, SIGTERM exits at once."""
    async with gateway_process(None, {}) as gw:
        url = f"{gw.base_url}/chat/completions"
        bodies = [_stream_body(max_tokens=20) for _ in range(40)]
        bodies.insert(17, _stream_body(max_tokens=poison))
        async with aiohttp.ClientSession() as http:
            results = await asyncio.gather(*(_post(http, url, body) for body in bodies))
            async with http.get(f"{gw.root}/metrics") as resp:
                active = _active_requests(await resp.text())
        status, body = results.pop(17)
        assert status == 400 and b"integer_above_max_value" in body, body
        assert Counter(s for s, _ in results) == {200: 40}
        assert all(b.rstrip().endswith(b"data: [DONE]") for _, b in results)
        assert active == 0
        started = time.monotonic()
        gw.proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(gw.proc.wait, 20) == 0
        assert time.monotonic() - started < 5  # nothing left to drain (was the full 30 s)
        assert "Traceback" not in gw.log()


@pytest.mark.parametrize(("field", "value", "code"), [
    ("max_tokens", U64_MAX, "integer_above_max_value"),
    ("max_completion_tokens", 1_000_001, "integer_above_max_value"),
    ("n", 129, "integer_above_max_value"),
    ("max_tokens", 0, "integer_below_min_value"),
    ("n", -1, "integer_below_min_value"),
    ("max_tokens", 1e30, "invalid_type"),
    ("max_tokens", "4096", "invalid_type"),
    ("n", True, "invalid_type"),
])
async def test_out_of_bounds_output_is_a_400_in_openais_words(
        upstream: RunningUpstream, tmp_path: Path, field: str, value: Any, code: str) -> None:
    """max_tokens, max_completion_tokens and n outside `limits:` are refused before any
    spend is reserved, with the parameter named, and nothing reaches the upstream."""
    config = spend_config(upstream.base_url, tmp_path / "l.db")
    async with running_gateway(config, environ=ENV) as gw, \
            AsyncOpenAI(base_url=gw.base_url, api_key="k", max_retries=0) as sdk:
        with pytest.raises(openai.BadRequestError) as info:
            await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES,
                                              extra_body={field: value})
    assert info.value.code == code and info.value.param == field
    assert upstream.state.total_requests == 0
    assert ledger_rows(tmp_path / "l.db") == []


async def test_limits_are_configurable(upstream: RunningUpstream, tmp_path: Path) -> None:
    """An operator's `limits:` replaces the defaults: n=4 passes a limit of 4, 5 does not."""
    config = spend_config(upstream.base_url, tmp_path / "l.db",
                          "limits: {max_tokens: 100, max_n: 4}\nspend: {default_max_tokens: 100}\n")
    async with running_gateway(config, environ=ENV) as gw, \
            AsyncOpenAI(base_url=gw.base_url, api_key="k", max_retries=0) as sdk:
        await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES, n=4, max_tokens=100)
        with pytest.raises(openai.BadRequestError) as info:
            await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES, n=5)
        assert "<= 4" in info.value.message
        with pytest.raises(openai.BadRequestError):
            await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES, max_tokens=101)


async def test_with_limits_lifted_the_worst_case_is_clamped(upstream: RunningUpstream,
                                                            tmp_path: Path) -> None:
    """With the bounds raised past 2^64, a poisoned stream's worst case is clamped (2^40
    tokens, at most MAX_NANOS): a $1 budget refuses it in words, and with no budget it is
    served; the normal streams beside it are served either way."""
    ledger = tmp_path / "l.db"
    lifted = f"limits: {{max_tokens: {U64_MAX}, max_n: {U64_MAX}}}\n"
    for budget, poisoned_status in (("budgets: [{name: fuse, scope: global, limit_usd: 1}]\n", 429),
                                    ("", 200)):
        config = spend_config(upstream.base_url, ledger, lifted + budget)
        async with running_gateway(config, environ=ENV) as gw, aiohttp.ClientSession() as http:
            url = f"{gw.base_url}/chat/completions"
            bodies = [_stream_body(max_tokens=20) for _ in range(20)]
            bodies.insert(7, _stream_body(max_tokens=U64_MAX, n=U64_MAX))
            results = await asyncio.wait_for(
                asyncio.gather(*(_post(http, url, body) for body in bodies)), 60)
        status, body = results.pop(7)
        assert status == poisoned_status, body
        if status == 429:
            # 2^40 output tokens (the clamp) at $8 per million tokens
            assert b"budget_exceeded" in body and b"could cost up to $8,796,093.0" in body
        assert Counter(s for s, _ in results) == {200: 20}
    assert all(row.status == "ok" and row.cost_nanos <= MAX_NANOS for row in ledger_rows(ledger))


async def test_upstream_usage_near_2_to_the_64_is_clamped(upstream: RunningUpstream,
                                                          tmp_path: Path) -> None:
    """An upstream that reports 2^64 - 1 tokens cannot break the ledger: its rows hold
    clamped counts and cost, the calls beside it are recorded, and the report still adds
    up."""
    upstream.state.per_model["gpt-4.1-mini"] = Behaviour(  # total_tokens: 2^64 - 1
        content="hi", prompt_tokens=1000, completion_tokens=U64_MAX - 1000)
    ledger = tmp_path / "l.db"
    config = spend_config(upstream.base_url, ledger)
    async with running_gateway(config, environ=ENV) as gw, aiohttp.ClientSession() as http:
        url = f"{gw.base_url}/chat/completions"
        bodies = [_stream_body(max_tokens=20, model=("cheap" if i % 5 == 0 else "gpt-4.1"))
                  for i in range(20)]
        bodies += [{**body, "stream": False} for body in bodies]
        results = await asyncio.wait_for(
            asyncio.gather(*(_post(http, url, body) for body in bodies)), 60)
    assert Counter(s for s, _ in results) == {200: 40}
    rows = ledger_rows(ledger)
    assert len(rows) == 40 and all(row.status == "ok" for row in rows)
    hostile = [row for row in rows if row.model_served == "cheap"]
    assert len(hostile) == 8
    assert all(row.output_tokens == MAX_TOKENS for row in hostile), hostile
    assert all(row.cost_nanos == MAX_TOKENS * 1600 + 1000 * 400 for row in hostile), hostile
    conn = connect(str(ledger))
    try:
        summary = summarize_sqlite(conn, "model", 0, 1e12)
    finally:
        conn.close()
    total = sum(row.cost_nanos for row in rows)  # above 2^53: the report's sum is a double
    assert summary.total.calls == 40 and summary.total.cost_nanos == pytest.approx(total, rel=1e-12)

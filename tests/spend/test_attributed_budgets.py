"""Budgets per end user and per tag value (`scope: user`, `scope: tag`): the same
reservation as every budget, so 200 concurrent calls never overspend one; calls of
other users or tags are not held by it; spend already in the ledger counts after a
restart."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import openai
import pytest
from openai import AsyncOpenAI

from gateway.config import load
from gateway.confread import ConfigError
from gateway.spend.budgets import Budget, BudgetSet, to_nanos
from gateway.spend.windows import zone
from tests.fakes.openai_upstream import Behaviour, RunningUpstream
from tests.spend.helpers import (
    ENV,
    MESSAGES,
    ledger_rows,
    spend_config,
    spend_gateway,
    worst_case_usd,
)
from tests.support.gateway import upstream_config

MAX_TOKENS = 100
FITS = 10
LIMIT_USD = round(worst_case_usd(MAX_TOKENS) * FITS, 9)


async def _fire(base_url: str, count: int, headers: dict[str, str], user: str | None = None
                ) -> tuple[int, int, list[BaseException]]:
    async with AsyncOpenAI(base_url=base_url, api_key="k", max_retries=0, timeout=60) as sdk:
        async def one() -> str:
            extra = {"user": user} if user else {}
            try:
                await sdk.chat.completions.create(
                    model="gpt-4.1", messages=MESSAGES, max_tokens=MAX_TOKENS,
                    extra_headers=headers, **extra)  # type: ignore[call-overload]
            except openai.RateLimitError as exc:
                assert exc.code == "budget_exceeded"
                return "refused"
            return "ok"

        results = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    other = [r for r in results if isinstance(r, BaseException)]
    return results.count("ok"), results.count("refused"), other


@pytest.mark.integration
async def test_tag_budget_is_not_overspent_by_200_concurrent_calls(
        upstream: RunningUpstream, tmp_path: Path) -> None:
    """200 simultaneous calls tagged project=alpha: exactly the 10 that fit are served, the
    ledger stays within the limit, and a call tagged project=beta still goes through."""
    upstream.state.behaviour = Behaviour(completion_tokens=MAX_TOKENS, latency_s=0.05)
    ledger = tmp_path / "l.db"
    budget = f"budgets:\n  - {{scope: tag, tag: project=alpha, limit_usd: {LIMIT_USD}}}\n"
    async with spend_gateway(spend_config(upstream.base_url, ledger, budget)) as (gw, _):
        ok, refused, other = await _fire(gw.base_url, 200,
                                         {"x-gateway-tags": "project=alpha,feature=x"})
        assert other == [] and (ok, refused) == (FITS, 200 - FITS)
        assert await _fire(gw.base_url, 1, {"x-gateway-tags": "project=beta"}) == (1, 0, [])
    rows = ledger_rows(ledger)
    alpha = [r for r in rows if '"project":"alpha"' in r.tags]
    assert len(alpha) == FITS and sum(r.cost_nanos for r in alpha) <= to_nanos_usd(LIMIT_USD)


@pytest.mark.integration
async def test_tag_budget_on_redis_is_not_overspent(upstream: RunningUpstream, redis_url: str,
                                                    redis_prefix: str) -> None:
    """The same guarantee through Redis's atomic reservation script (100 at once: one
    process's Redis connection pool is the bound, as in test_concurrency)."""
    upstream.state.behaviour = Behaviour(completion_tokens=MAX_TOKENS, latency_s=0.05)
    config = upstream_config(upstream.base_url, extra=f"""
storage: {{backend: redis, redis_url: "{redis_url}", redis_prefix: "{redis_prefix}"}}
budgets:
  - {{scope: tag, tag: project=alpha, limit_usd: {LIMIT_USD}}}
""")
    async with spend_gateway(config) as (gw, _):
        ok, refused, other = await _fire(gw.base_url, 100, {"x-gateway-tags": "project=alpha"})
    assert other == [] and (ok, refused) == (FITS, 100 - FITS)


@pytest.mark.integration
async def test_user_budget_holds_one_user_and_survives_a_restart(
        upstream: RunningUpstream, tmp_path: Path) -> None:
    """A user budget refuses that user once used up, also after a restart (seeded from the
    ledger's end_user column), and never another user."""
    upstream.state.behaviour = Behaviour(completion_tokens=MAX_TOKENS)
    ledger = tmp_path / "l.db"
    limit = round(worst_case_usd(MAX_TOKENS) * 2, 9)
    budget = f"budgets:\n  - {{scope: user, user: alice, limit_usd: {limit}}}\n"
    config = spend_config(upstream.base_url, ledger, budget)
    async with spend_gateway(config) as (gw, _):
        assert await _fire(gw.base_url, 1, {}, user="alice") == (1, 0, [])
    async with spend_gateway(config) as (gw, _):
        assert await _fire(gw.base_url, 1, {}, user="alice") == (1, 0, [])
        assert await _fire(gw.base_url, 1, {"x-gateway-user": "alice"}) == (0, 1, [])
        assert await _fire(gw.base_url, 2, {}, user="bob") == (2, 0, [])


def test_budget_set_adds_user_and_tag_budgets_only_when_named() -> None:
    """The cached key/model lookup is unchanged; user and tag budgets join per call."""
    tz = zone("UTC")
    fuse = Budget("fuse", "global", None, "day", 100, "block", tz)
    alpha = Budget("alpha", "tag", "project=alpha", "day", 10, "block", tz)
    alice = Budget("alice", "user", "alice", "day", 10, "block", tz)
    budgets = BudgetSet([fuse, alpha, alice])
    assert budgets.applicable("k", "t", "m", "p") == (fuse,)
    assert budgets.applicable("k", "t", "m", "p", "alice", (("project", "alpha"),)) == (
        fuse, alpha, alice)
    assert budgets.applicable("k", "t", "m", "p", "bob", (("project", "beta"),)) == (fuse,)


@pytest.mark.parametrize(("entry", "message"), [
    ("{scope: tag, limit_usd: 1}", "budgets[0].tag: is required for a tag budget"),
    ("{scope: tag, tag: project, limit_usd: 1}", "budgets[0].tag: must be name=value"),
    ("{scope: user, limit_usd: 1}", "budgets[0].user: is required for a user budget"),
    ("{scope: user, user: a, tag: p=a, limit_usd: 1}", "budgets[0].tag: does not apply"),
])
def test_bad_user_and_tag_budgets_name_the_key(entry: str, message: str) -> None:
    """Missing or malformed targets are config errors at their key path."""
    text = spend_config("http://127.0.0.1:9", Path("/tmp/unused.db"), f"budgets:\n  - {entry}\n")
    with pytest.raises(ConfigError) as info:
        load(text, ENV)
    assert any(message in problem for problem in info.value.problems), info.value.problems


def test_tag_budget_default_name() -> None:
    """A tag budget is named tag:<name>:<value>:<window> unless it gives a name."""
    text = spend_config("http://127.0.0.1:9", Path("/tmp/unused.db"),
                        "budgets:\n  - {scope: tag, tag: project=alpha, limit_usd: 1}\n")
    assert load(text, ENV).spend.budgets[0].name == "tag:project:alpha:day"


def to_nanos_usd(usd: float) -> int:
    return to_nanos(Decimal(str(usd)))

"""The fake OpenAI admin API answers OpenAI's own SDK: the SDK's request (its array
encoding, its admin-key header) is accepted and its response types read the JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from openai import AsyncOpenAI
from openai.types.admin.organization.usage_completions_response import (
    DataResultOrganizationUsageCompletionsResult as CompletionsResult,
)
from openai.types.admin.organization.usage_costs_response import (
    DataResultOrganizationCostsResult as CostsResult,
)

from tests.fakes.admin_reports import AdminState, Billed
from tests.fakes.openai_admin import running_openai_admin

pytestmark = pytest.mark.integration  # a socket: the fake on a port

KEY = "sk-admin-fake-0123456789"
START = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())
BILLED = [Billed("2026-11-01", "gpt-4.1-2025-04-14", input=1000, cache_read=500, output=100,
                 price_input=Decimal(2), price_cache_read=Decimal("0.5"),
                 price_output=Decimal(8))]


async def test_the_sdk_reads_the_fake_costs_and_usage() -> None:
    """costs(group_by=[line_item]) and usage.completions(group_by=[model]) through the SDK
    give typed results with the fake's amounts and tokens, and a next page cursor."""
    state = AdminState(KEY, BILLED)
    async with running_openai_admin(state) as base, \
            AsyncOpenAI(api_key="unused", admin_api_key=KEY, base_url=base,
                        max_retries=0) as sdk:
        costs = await sdk.admin.organization.usage.costs(
            start_time=START, end_time=START + 3 * 86400, group_by=["line_item"], limit=3)
        usage = await sdk.admin.organization.usage.completions(
            start_time=START, end_time=START + 86400, group_by=["model"], limit=1)
    assert costs.has_more and costs.next_page
    first = [r for r in costs.data[0].results if isinstance(r, CostsResult)]
    assert len(first) == len(costs.data[0].results) == 3
    assert [(r.line_item, r.amount.value if r.amount else None) for r in first] == [
        ("gpt-4.1-2025-04-14, input", 0.002), ("gpt-4.1-2025-04-14, cached input", 0.00025),
        ("gpt-4.1-2025-04-14, output", 0.0008)]
    result = usage.data[0].results[0]
    assert isinstance(result, CompletionsResult)
    assert (result.model, result.input_tokens, result.input_cached_tokens,
            result.output_tokens) == ("gpt-4.1-2025-04-14", 1500, 500, 100)
    assert state.requests[0][1]["group_by[]"] == ["line_item"]

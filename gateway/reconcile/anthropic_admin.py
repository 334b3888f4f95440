"""Anthropic's Usage & Cost Admin API, read into per-day, per-model tallies.

Cost: `GET /v1/organizations/cost_report?starting_at&ending_at&group_by[]=description`
(`limit` up to 31 daily buckets a page): `results[].amount` is a decimal string in the
currency's smallest unit (cents: "123.45" is $1.2345), `currency` "USD", `model` set on
token costs (null for web search and code execution, which are shown under their
`description`). Usage: `GET /v1/organizations/usage_report/messages?...&bucket_width=1d
&group_by[]=model`: `uncached_input_tokens`, `cache_read_input_tokens`,
`cache_creation.ephemeral_5m_input_tokens` and `.ephemeral_1h_input_tokens` (all four
make the input), `output_tokens`. Buckets carry `starting_at` (RFC 3339, UTC); pages chain
with `has_more` and `next_page` (sent back as `page`). Auth: `x-api-key` admin key and
`anthropic-version`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from gateway.reconcile.admin_http import AdminAPI, AdminAPIError, number
from gateway.reconcile.compare import Key, Tally, tally
from gateway.reconcile.names import base_model

NAME = "anthropic"
KEY_ENV = "ANTHROPIC_ADMIN_KEY"
BASE_ENV = "ANTHROPIC_ADMIN_BASE_URL"
DEFAULT_BASE = "https://api.anthropic.com/v1"
VERSION = "2023-06-01"
UNATTRIBUTED = "(unattributed)"


LABEL = "the Anthropic admin API"


def auth_headers(key: str) -> dict[str, str]:
    return {"x-api-key": key, "anthropic-version": VERSION}


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _day(bucket: Mapping[str, Any]) -> str:
    start = bucket.get("starting_at")
    if not isinstance(start, str) or len(start) < 10:
        raise AdminAPIError("the Anthropic admin API sent a bucket without starting_at")
    return start[:10]


async def report(admin: AdminAPI, start: datetime, end: datetime) -> dict[Key, Tally]:
    """Costs and token usage per UTC day and model in [start, end)."""
    limit = str(min(max(1, (end - start).days), 31))
    window = [("starting_at", _stamp(start)), ("ending_at", _stamp(end))]
    out: dict[Key, Tally] = {}
    async for page in admin.pages("/organizations/cost_report",
                                  [*window, ("group_by[]", "description"), ("limit", limit)]):
        for bucket in page["data"]:
            day = _day(bucket)
            for result in bucket.get("results") or []:
                add_cost(out, day, result)
    async for page in admin.pages("/organizations/usage_report/messages",
                                  [*window, ("bucket_width", "1d"), ("group_by[]", "model"),
                                   ("limit", limit)]):
        for bucket in page["data"]:
            day = _day(bucket)
            for result in bucket.get("results") or []:
                add_usage(out, day, result)
    return out


def add_cost(out: dict[Key, Tally], day: str, result: Mapping[str, Any]) -> None:
    currency = str(result.get("currency") or "USD").upper()
    if currency != "USD":
        raise AdminAPIError(f"the Anthropic admin API reports costs in {currency}; the "
                            "ledger is in USD")
    model = result.get("model")
    name = (base_model(model) if isinstance(model, str) and model
            else str(result.get("description") or result.get("cost_type") or UNATTRIBUTED))
    tally(out, (day, name)).cost_usd += Decimal(str(result.get("amount") or "0")) / 100


def add_usage(out: dict[Key, Tally], day: str, result: Mapping[str, Any]) -> None:
    model = result.get("model")
    found = tally(out, (day, base_model(model) if isinstance(model, str) and model
                        else UNATTRIBUTED))
    creation = result.get("cache_creation") or {}
    cached = number(result.get("cache_read_input_tokens"))
    found.input_tokens += (number(result.get("uncached_input_tokens")) + cached
                           + number(creation.get("ephemeral_5m_input_tokens"))
                           + number(creation.get("ephemeral_1h_input_tokens")))
    found.cached_tokens += cached
    found.output_tokens += number(result.get("output_tokens"))

"""OpenAI's organization Costs and Usage APIs, read into per-day, per-model tallies.

Costs: `GET /v1/organization/costs?start_time&end_time&bucket_width=1d&group_by[]=line_item`
(`limit` up to 180 buckets a page): each bucket's `results[].amount.value` (dollars,
a JSON number) with `amount.currency` "usd", attributed to the model of `line_item`.
Usage: `GET /v1/organization/usage/completions?...&group_by[]=model` (`limit` up to 31
a page): `input_tokens` (cache reads and writes included), `input_cached_tokens`,
`output_tokens` per `model`. Arrays go as `name[]=value`, as OpenAI's own SDK sends
them. Buckets carry `start_time` (Unix seconds, UTC midnight); pages chain with
`has_more` and `next_page` (sent back as `page`). Auth: `Authorization: Bearer` admin key.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from gateway.reconcile.admin_http import AdminAPI, AdminAPIError, number
from gateway.reconcile.compare import Key, Tally, tally
from gateway.reconcile.names import base_model, line_item_model

NAME = "openai"
KEY_ENV = "OPENAI_ADMIN_KEY"
BASE_ENV = "OPENAI_ADMIN_BASE_URL"
DEFAULT_BASE = "https://api.openai.com/v1"
UNATTRIBUTED = "(unattributed)"  # a cost result without a line item


LABEL = "the OpenAI admin API"


def auth_headers(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def _day(bucket: Mapping[str, Any]) -> str:
    start = bucket.get("start_time")
    if not isinstance(start, int):
        raise AdminAPIError("the OpenAI admin API sent a bucket without start_time")
    return datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%d")


async def report(admin: AdminAPI, start: datetime, end: datetime) -> dict[Key, Tally]:
    """Costs and token usage per UTC day and model in [start, end)."""
    days = max(1, (end - start).days)
    window = [("start_time", str(int(start.timestamp()))), ("end_time", str(int(end.timestamp()))),
              ("bucket_width", "1d")]
    out: dict[Key, Tally] = {}
    async for page in admin.pages("/organization/costs",
                                  [*window, ("group_by[]", "line_item"),
                                   ("limit", str(min(days, 180)))]):
        for bucket in page["data"]:
            day = _day(bucket)
            for result in bucket.get("results") or []:
                add_cost(out, day, result)
    async for page in admin.pages("/organization/usage/completions",
                                  [*window, ("group_by[]", "model"), ("limit", str(min(days, 31)))]):
        for bucket in page["data"]:
            day = _day(bucket)
            for result in bucket.get("results") or []:
                model = result.get("model")
                found = tally(out, (day, base_model(model) if model else UNATTRIBUTED))
                found.input_tokens += number(result.get("input_tokens"))
                found.cached_tokens += number(result.get("input_cached_tokens"))
                found.output_tokens += number(result.get("output_tokens"))
    return out


def add_cost(out: dict[Key, Tally], day: str, result: Mapping[str, Any]) -> None:
    amount = result.get("amount") or {}
    currency = str(amount.get("currency") or "usd").lower()
    if currency != "usd":
        raise AdminAPIError(f"the OpenAI admin API reports costs in {currency}; the ledger "
                            "is in usd")
    value = amount.get("value")
    item = result.get("line_item")
    model = line_item_model(item) if isinstance(item, str) and item else UNATTRIBUTED
    tally(out, (day, model)).cost_usd += Decimal(str(value)) if value is not None else 0

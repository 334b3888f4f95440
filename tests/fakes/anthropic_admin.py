"""A fake of Anthropic's Usage & Cost Admin API (`/v1/organizations/cost_report`,
`/v1/organizations/usage_report/messages`) speaking its JSON: daily buckets with
`starting_at`/`ending_at`, cost `amount` in cents as a decimal string, usage by token
type with `cache_creation` by TTL, `has_more`/`next_page` paging, `x-api-key` plus
`anthropic-version` auth, and Anthropic's error bodies."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

from tests.fakes import admin_reports as reports
from tests.fakes.admin_reports import STATE, AdminState, Billed

TOKEN_TYPES = (("input", "uncached_input_tokens", "Input Tokens"),
               ("cache_read", "cache_read_input_tokens", "Cache Read"),
               ("cache_write_5m", "cache_creation.ephemeral_5m_input_tokens",
                "Cache Write (5m)"),
               ("cache_write_1h", "cache_creation.ephemeral_1h_input_tokens",
                "Cache Write (1h)"),
               ("output", "output_tokens", "Output Tokens"))


def _error(status: int, kind: str, message: str) -> web.Response:
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _check(request: web.Request) -> web.Response | tuple[datetime, datetime, int]:
    state = request.app[STATE]
    state.requests.append((request.path, reports.query_lists(request)))
    if request.headers.get("x-api-key") != state.key:
        return _error(401, "authentication_error", "invalid x-api-key")
    if not request.headers.get("anthropic-version"):
        return _error(400, "invalid_request_error", "anthropic-version: header is required")
    try:
        start = _time(request.query["starting_at"])
        end = _time(request.query["ending_at"]) if "ending_at" in request.query else (
            start + timedelta(days=7))
        limit = int(request.query.get("limit", "7"))
    except (KeyError, ValueError):
        return _error(400, "invalid_request_error", "starting_at: an RFC 3339 timestamp")
    if request.query.get("bucket_width", "1d") != "1d" or not 1 <= limit <= 31:
        return _error(400, "invalid_request_error", "limit: at most 31 daily buckets")
    return start, end, limit


def _page(request: web.Request, start: datetime, end: datetime, limit: int, results: reports.Rows
          ) -> web.Response:
    return reports.paged(request, start, end, limit, lambda day: {
        "starting_at": _stamp(day), "ending_at": _stamp(day + timedelta(days=1))}, results)


def _cents(usd: Decimal) -> str:
    return str(usd * 100)


def _cost_rows(billed: list[Billed], grouped: bool) -> list[dict[str, Any]]:
    if not grouped:
        total = sum((b.total_usd for b in billed), Decimal(0))
        return [{"currency": "USD", "amount": _cents(total), "workspace_id": None,
                 "description": None, "cost_type": None, "context_window": None, "model": None,
                 "service_tier": None, "token_type": None}] if billed else []
    rows = []
    for b in billed:
        for kind, token_type, label in TOKEN_TYPES:
            rows.append({"currency": "USD", "amount": _cents(b.cost(kind)), "workspace_id": None,
                         "description": f"{b.model} Usage - {label}", "cost_type": "tokens",
                         "context_window": "0-200k", "model": b.model,
                         "service_tier": "standard", "token_type": token_type})
        if b.extra_usd:
            rows.append({"currency": "USD", "amount": _cents(b.extra_usd), "workspace_id": None,
                         "description": "Web Search", "cost_type": "web_search",
                         "context_window": None, "model": None, "service_tier": None,
                         "token_type": None})
    return rows


def _usage(b: Billed, grouped: bool) -> dict[str, Any]:
    return {"uncached_input_tokens": b.input, "cache_read_input_tokens": b.cache_read,
            "cache_creation": {"ephemeral_5m_input_tokens": b.cache_write_5m,
                               "ephemeral_1h_input_tokens": b.cache_write_1h},
            "output_tokens": b.output, "server_tool_use": {"web_search_requests": 0},
            "api_key_id": None, "workspace_id": None, "model": b.model if grouped else None,
            "service_tier": None, "context_window": None}


def _cost_rows_of(grouped: bool) -> reports.Rows:
    return lambda billed: _cost_rows(billed, grouped)


def _usage_rows_of(grouped: bool) -> reports.Rows:
    return lambda billed: [_usage(b, grouped) for b in billed]


ROUTES = {
    "/v1/organizations/cost_report": reports.report(_check, _page, "description", _cost_rows_of),
    "/v1/organizations/usage_report/messages": reports.report(_check, _page, "model", _usage_rows_of),
}


def running_anthropic_admin(state: AdminState) -> contextlib.AbstractAsyncContextManager[str]:
    """The fake on a free port; yields its base URL (ending in /v1)."""
    return reports.running_admin(state, ROUTES)

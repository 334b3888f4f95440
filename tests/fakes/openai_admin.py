"""A fake of OpenAI's organization Costs and Usage APIs (`/v1/organization/costs`,
`/v1/organization/usage/completions`) speaking their JSON: `page` objects of daily
`bucket`s, `results` grouped by `line_item` or `model`, `has_more`/`next_page` paging,
`limit` bounds, and OpenAI's error bodies for a wrong admin key or bad parameters."""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

from tests.fakes import admin_reports as reports
from tests.fakes.admin_reports import STATE, AdminState, Billed

LINE_ITEMS = (("input", "input"), ("cache_read", "cached input"), ("output", "output"))


def _error(status: int, message: str, kind: str, code: str | None = None) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


def _check(request: web.Request, max_limit: int) -> web.Response | tuple[int, int, int]:
    state = request.app[STATE]
    state.requests.append((request.path, reports.query_lists(request)))
    auth = request.headers.get("authorization", "")
    if auth != f"Bearer {state.key}":
        given = auth.removeprefix("Bearer ")
        return _error(401, f"Incorrect API key provided: {given}. You can find your API key at "
                           "https://platform.openai.com/account/api-keys.",
                      "invalid_request_error", "invalid_api_key")
    try:
        start = int(request.query["start_time"])
        end = int(request.query.get("end_time", start + 86400 * 7))
        limit = int(request.query.get("limit", "7"))
    except (KeyError, ValueError):
        return _error(400, "start_time is required and must be an integer",
                      "invalid_request_error")
    if request.query.get("bucket_width", "1d") != "1d" or not 1 <= limit <= max_limit:
        return _error(400, f"limit must be between 1 and {max_limit} for bucket_width 1d",
                      "invalid_request_error")
    return start, end, limit


def _page(request: web.Request, start: int, end: int, limit: int, results: reports.Rows) -> web.Response:
    return reports.paged(request, reports.utc(start), reports.utc(end), limit, lambda day: {
        "object": "bucket", "start_time": int(day.timestamp()),
        "end_time": int(day.timestamp()) + 86400}, results, {"object": "page"})


def _cost(line_item: str | None, value: Decimal) -> dict[str, Any]:
    return {"object": "organization.costs.result", "amount": {"value": value, "currency": "usd"},
            "line_item": line_item, "project_id": None, "api_key_id": None, "user_id": None,
            "api_source": None, "quantity": None, "quantity_unit": None}


def _costs_of(grouped: bool) -> Any:
    def results(billed: list[Billed]) -> list[dict[str, Any]]:
        if not grouped:
            return [_cost(None, sum((b.total_usd for b in billed), Decimal(0)))] if billed else []
        out = []
        for b in billed:
            for kind, label in LINE_ITEMS:
                out.append(_cost(f"{b.model}, {label}", b.cost(kind)))
                out[-1].update(quantity=getattr(b, kind), quantity_unit="tokens")
            if b.extra_usd:
                out[-1]["amount"]["value"] += b.extra_usd
        return out
    return results


def _usage(b: Billed, grouped: bool) -> dict[str, Any]:
    return {"object": "organization.usage.completions.result",
            "input_tokens": b.input + b.cache_read, "output_tokens": b.output,
            "input_cached_tokens": b.cache_read, "input_cache_write_tokens": 0,
            "input_audio_tokens": 0,
            "output_audio_tokens": 0, "num_model_requests": 1, "project_id": None,
            "user_id": None, "api_key_id": None, "model": b.model if grouped else None,
            "batch": None, "service_tier": None}


def _usage_rows_of(grouped: bool) -> reports.Rows:
    return lambda billed: [_usage(b, grouped) for b in billed]


ROUTES = {
    # costs take up to 180 daily buckets a page, usage 31
    "/v1/organization/costs": reports.report(lambda request: _check(request, 180), _page, "line_item",
                                     _costs_of),
    "/v1/organization/usage/completions": reports.report(lambda request: _check(request, 31), _page,
                                                 "model", _usage_rows_of),
}


def running_openai_admin(state: AdminState) -> contextlib.AbstractAsyncContextManager[str]:
    """The fake on a free port; yields its base URL (ending in /v1)."""
    return reports.running_admin(state, ROUTES)

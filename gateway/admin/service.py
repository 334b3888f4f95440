"""What the admin API does, without HTTP: keys (list, create, revoke, rotate),
the spend report, budgets, recent calls, traffic and the masked configuration.

Every answer is plain JSON-ready data. Keys are written to the store the
running gateway reads (SQLite or Redis) and the gateway's key map is reloaded at
once, so a key created here works on the very next request, in this process at
once and in other processes sharing the store at their next miss or refresh.
The secret of a new key is in the creation answer only; everything else shows
aliases and the short non-reversible key id.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from gateway import errors
from gateway.admin.calls import CallLog
from gateway.admin.masking import masked
from gateway.admin.traffic import RANGES
from gateway.config import GatewayConfig
from gateway.resilience.breaker import CLOSED, HALF_OPEN, OPEN, Breakers
from gateway.spend import report
from gateway.spend.backend import LocalBackend, RedisBackend
from gateway.spend.budgeted import budgeted_groups, with_budgeted
from gateway.spend.budgets import Budget, to_nanos
from gateway.spend.config import hash_key, valid_name
from gateway.spend.control import SpendControl
from gateway.spend.keys import KeyRecord, key_id, new_key
from gateway.spend.sqlite_store import create_key, replace_key, revoke_key
from gateway.spend.windows import window_at, zone

MAX_CALLS = 1000


class NotFound(errors.GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"
    error_type = "not_found"


class Conflict(errors.GatewayError):
    status = 409
    type = "invalid_request_error"
    code = "conflict"
    error_type = "conflict"


class AdminService:
    def __init__(self, config: GatewayConfig, spend: SpendControl | None, calls: CallLog,
                 trace_url: str = "", breakers: Breakers | None = None) -> None:
        self.config = config
        self.spend = spend
        self.calls = calls
        self.breakers = breakers
        self.trace_url = trace_url
        self.started = time.time()

    def _control(self) -> SpendControl:
        if self.spend is None:
            raise errors.ServiceUnavailable("This gateway runs without spend control (a custom "
                                            "authenticator or hooks): keys and spend are not "
                                            "managed here.")
        return self.spend

    # --- status -----------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        storage = self.config.storage
        shared = storage.backend == "redis"
        return {"pid": os.getpid(), "started_at": self.started, "storage": storage.backend,
                "workers": int(os.environ.get("GATEWAY_WORKER_COUNT", "1") or 1),
                "spend_scope": "shared store" if shared else "this gateway's SQLite ledger",
                "calls_scope": "this process", "recent_calls_capacity": self.calls.calls.maxlen,
                "trace_url": self.trace_url or None,
                "models": sorted(self.config.models)}

    # --- keys -------------------------------------------------------------------------
    async def list_keys(self) -> list[dict[str, Any]]:
        control = self._control()
        await control.authenticator.refresh()
        out = []
        for record in control.authenticator.records:
            out.append(_key_view(record))
        configured = {r.alias for r in control.authenticator.records if r.source == "config"}
        for key in self.config.spend.keys:  # config keys whose variable is unset
            if key.alias not in configured:
                out.append({"alias": key.alias, "team": key.team, "source": "config",
                            "status": "missing", "key_id": None, "created_at": None,
                            "revoked_at": None, "expires_at": None,
                            "allowed_models": _models(key.allowed_models),
                            "budget_usd_per_day": _usd(key.budget_usd_per_day),
                            "budget_usd_per_month": _usd(key.budget_usd_per_month)})
        return out

    async def create_key(self, body: Any) -> dict[str, Any]:
        control = self._control()
        record = self._new_record(body)
        secret = new_key()
        record = _with_hash(record, hash_key(secret))
        if not await self._store_create(control, record):
            raise Conflict(f"an active key with alias '{record.alias}' exists (revoke or rotate it)",
                           param="alias")
        await control.authenticator.refresh()
        return {**_key_view(record), "key": secret}

    async def revoke_key(self, alias: str) -> dict[str, Any]:
        control = self._control()
        self._not_config(alias)
        if not await self._store_revoke(control, alias, time.time()):
            raise NotFound(f"no active key with alias '{alias}'")
        await control.authenticator.refresh()
        return {"alias": alias, "status": "revoked"}

    async def rotate_key(self, alias: str) -> dict[str, Any]:
        """A new secret for the key `alias`, same team, budgets, models and expiry; the old
        secret stops working at once."""
        control = self._control()
        self._not_config(alias)
        await control.authenticator.refresh()
        current = next((r for r in control.authenticator.records
                        if r.alias == alias and r.active and r.source == "store"), None)
        if current is None:
            raise NotFound(f"no active key with alias '{alias}'")
        secret = new_key()
        fresh = _with_hash(current, hash_key(secret), created_at=time.time())
        if not await self._store_replace(control, alias, fresh):
            raise Conflict(f"key '{alias}' changed while rotating it; try again")
        await control.authenticator.refresh()
        return {**_key_view(fresh), "key": secret}

    def _not_config(self, alias: str) -> None:
        if alias in self.config.spend.key_aliases:
            raise Conflict(f"key '{alias}' is defined in the config file; change it there")

    def _new_record(self, body: Any) -> KeyRecord:
        if not isinstance(body, dict):
            raise errors.InvalidRequest("the body must be a JSON object")
        unknown = sorted(set(body) - {"alias", "team", "budget_usd_per_day",
                                      "budget_usd_per_month", "allowed_models", "expires_at",
                                      "expires_in_s"})
        if unknown:
            raise errors.InvalidRequest(f"unknown field(s): {', '.join(unknown)}", param=unknown[0])
        alias, team = body.get("alias"), body.get("team", "default")
        for value, what in ((alias, "alias"), (team, "team")):
            if not isinstance(value, str) or not valid_name(value):
                raise errors.InvalidRequest(
                    f"{what}: letters, digits and _.@:/- only, 1 to 64 characters", param=what)
        assert isinstance(alias, str) and isinstance(team, str)
        if alias in self.config.spend.key_aliases:
            raise Conflict(f"alias '{alias}' is already a key in the config file", param="alias")
        return KeyRecord(alias=alias, team=team, key_sha256="", created_at=time.time(),
                         allowed_models=self._allowed(body.get("allowed_models")),
                         budget_usd_per_day=_amount(body, "budget_usd_per_day"),
                         budget_usd_per_month=_amount(body, "budget_usd_per_month"),
                         expires_at=_expiry(body))

    def _allowed(self, value: Any) -> frozenset[str] | None:
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(m, str) for m in value) or not value:
            raise errors.InvalidRequest("allowed_models: a non-empty list of model names",
                                        param="allowed_models")
        unknown = sorted(set(value) - set(self.config.models))
        if unknown:
            raise errors.InvalidRequest(f"allowed_models: unknown model(s) {', '.join(unknown)}",
                                        param="allowed_models")
        return frozenset(value)

    async def _store_create(self, control: SpendControl, record: KeyRecord) -> bool:
        backend = control.backend
        if isinstance(backend, RedisBackend):
            return await backend.store.create_key(record)
        assert isinstance(backend, LocalBackend)
        return await backend.store.read(lambda conn: create_key(conn, record))

    async def _store_revoke(self, control: SpendControl, alias: str, now: float) -> bool:
        backend = control.backend
        if isinstance(backend, RedisBackend):
            return await backend.store.revoke_key(alias, now)
        assert isinstance(backend, LocalBackend)
        return await backend.store.read(lambda conn: revoke_key(conn, alias, now))

    async def _store_replace(self, control: SpendControl, alias: str, fresh: KeyRecord) -> bool:
        backend = control.backend
        now = time.time()
        if isinstance(backend, RedisBackend):
            # Two scripts: between them the alias has no key for a moment (a retry fixes it).
            return (await backend.store.revoke_key(alias, now)
                    and await backend.store.create_key(fresh))
        assert isinstance(backend, LocalBackend)
        return await backend.store.read(lambda conn: replace_key(conn, alias, fresh, now))

    # --- spend and budgets --------------------------------------------------------------
    async def spend_report(self, query: Mapping[str, str]) -> dict[str, Any]:
        control = self._control()
        by = query.get("by", "model")
        try:
            report.check_by(by)
        except ValueError as exc:
            raise errors.InvalidRequest(str(exc), param="by") from None
        window = query.get("window", "day")
        if window not in ("day", "month"):
            raise errors.InvalidRequest("window: day or month", param="window")
        tz = zone(self.config.spend.timezone)
        now = time.time()
        since, until = query.get("since"), query.get("until")
        ranged = since is not None or until is not None  # an empty value is a bad date
        if ranged:
            start = (_date(since, tz, "since") if since is not None
                     else window_at(now, window, tz).start)
            end = _date(until, tz, "until", next_day=True) if until is not None else now + 1
            if end <= start:
                raise errors.InvalidRequest("until must not be before since", param="until")
            label = f"{since or 'window start'} to {until or 'now'}"
        else:
            current = window_at(now, window, tz)
            start, end, label = current.start, now + 1, f"{window} {current.id}"
        budgets = list(control.budgets.all())
        summary = with_budgeted(await self._summary(control, by, start, end),
                                budgeted_groups(budgets, by))
        per_group, total_budget = ({}, None) if ranged else report.matching_budgets(
            budgets, by, window)
        return {"by": by, "window": window, "label": label, "timezone": str(tz),
                "start": start, "end": min(end, now), "scope": self.status()["spend_scope"],
                "rows": [_row(r, per_group.get(r.group)) for r in summary.rows],
                "total": _row(summary.total, total_budget),
                "pending_calls": summary.pending_calls,
                "pending_usd": summary.pending_nanos / 1e9}

    async def _summary(self, control: SpendControl, by: str, start: float, end: float
                       ) -> report.Summary:
        backend = control.backend
        if isinstance(backend, RedisBackend):
            return report.aggregate([e async for e in backend.store.entries(start, end)], by)
        assert isinstance(backend, LocalBackend)
        return await backend.store.read(lambda c: report.summarize_sqlite(c, by, start, end))

    async def budgets(self) -> list[dict[str, Any]]:
        control = self._control()
        now = time.time()
        await control.backend.sync(control.budgets.all(), now)
        out = []
        for budget in control.budgets.all():
            window = control.budgets.window(budget, now)
            spent, reserved = control.backend.level(budget, window)
            limit = control.backend.limit(budget)
            out.append({"name": budget.name, "scope": budget.scope, "target": budget.target,
                        "window": budget.window, "window_id": window.id, "action": budget.action,
                        "limit_usd": limit / 1e9, "spent_usd": spent / 1e9,
                        "reserved_usd": reserved / 1e9,
                        "used_pct": round(spent * 100 / limit, 2) if limit else 100.0,
                        "resets_at": window.end, "timezone": str(budget.tz)})
        return out

    # --- calls, traffic, config -----------------------------------------------------------
    def recent_calls(self, query: Mapping[str, str]) -> dict[str, Any]:
        limit = _int(query.get("limit", "100"), "limit", 1, MAX_CALLS)
        return {"scope": "this process", "pid": os.getpid(),
                "capacity": self.calls.calls.maxlen, "trace_url": self.trace_url or None,
                "calls": self.calls.recent(limit)}

    def traffic(self, query: Mapping[str, str]) -> dict[str, Any]:
        span = query.get("range", "hour")
        if span not in RANGES:
            raise errors.InvalidRequest(f"range: one of {', '.join(RANGES)}", param="range")
        return {"scope": "this process", "pid": os.getpid(),
                **self.calls.traffic.series(span, time.time())}

    def resilience(self) -> dict[str, Any]:
        """Circuit breakers' states and the fallbacks among the recent calls."""
        names = {CLOSED: "closed", HALF_OPEN: "half_open", OPEN: "open"}
        breakers = [{"provider": p, "model": m, "state": names.get(state, str(state))}
                    for p, m, state in (self.breakers.states() if self.breakers else [])]
        fallbacks: dict[tuple[str, str, str], int] = {}
        for call in self.calls.calls:
            reason = call["fallback_reason"]
            if reason:
                key = (call["model_requested"], call["model_served"] or "", reason)
                fallbacks[key] = fallbacks.get(key, 0) + 1
        return {"scope": "this process", "pid": os.getpid(),
                "breakers": sorted(breakers, key=lambda b: (b["provider"], b["model"])),
                "fallbacks": [{"model_requested": r, "model_served": s or None, "reason": why,
                               "calls": n} for (r, s, why), n in sorted(fallbacks.items())]}

    def effective_config(self) -> dict[str, Any]:
        return {"source": self.config.source, "config": masked(self.config)}


def _with_hash(record: KeyRecord, digest: str, created_at: float | None = None) -> KeyRecord:
    return KeyRecord(alias=record.alias, team=record.team, key_sha256=digest, source="store",
                     created_at=created_at or record.created_at, allowed_models=record.allowed_models,
                     budget_usd_per_day=record.budget_usd_per_day,
                     budget_usd_per_month=record.budget_usd_per_month, expires_at=record.expires_at)


def _key_view(record: KeyRecord) -> dict[str, Any]:
    if not record.active:
        status = "revoked"
    elif record.expired(time.time()):
        status = "expired"
    else:
        status = "active"
    return {"alias": record.alias, "team": record.team, "source": record.source, "status": status,
            "key_id": key_id(record.key_sha256), "created_at": record.created_at,
            "revoked_at": record.revoked_at, "expires_at": record.expires_at,
            "allowed_models": _models(record.allowed_models),
            "budget_usd_per_day": _usd(record.budget_usd_per_day),
            "budget_usd_per_month": _usd(record.budget_usd_per_month)}


def _models(models: frozenset[str] | None) -> list[str] | None:
    return None if models is None else sorted(models)


def _usd(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _amount(body: Mapping[str, Any], name: str) -> Decimal | None:
    value = body.get(name)
    if value is None:
        return None
    try:
        amount = Decimal(str(value)) if isinstance(value, int | float | str) and not isinstance(
            value, bool) else Decimal(-1)
    except InvalidOperation:
        amount = Decimal(-1)
    if not amount.is_finite() or amount < 0 or to_nanos(amount) >= 1 << 53:
        raise errors.InvalidRequest(f"{name}: a number of US dollars >= 0 (below $9 million)",
                                    param=name)
    return amount


def _expiry(body: Mapping[str, Any]) -> float | None:
    at, within = body.get("expires_at"), body.get("expires_in_s")
    if at is not None and within is not None:
        raise errors.InvalidRequest("give expires_at or expires_in_s, not both",
                                    param="expires_at")
    for value, name in ((at, "expires_at"), (within, "expires_in_s")):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or value <= 0):
            raise errors.InvalidRequest(f"{name}: a positive number of seconds", param=name)
    if within is not None:
        return float(time.time() + within)
    if at is not None and at <= time.time():
        raise errors.InvalidRequest("expires_at is in the past", param="expires_at")
    return None if at is None else float(at)


def _date(text: str, tz: Any, name: str, next_day: bool = False) -> float:
    try:
        day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=tz)
    except ValueError:
        raise errors.InvalidRequest(f"{name}: a date YYYY-MM-DD", param=name) from None
    return (day + timedelta(days=1) if next_day else day).timestamp()


def _int(text: str, name: str, low: int, high: int) -> int:
    if not text.isdigit() or not low <= int(text) <= high:
        raise errors.InvalidRequest(f"{name}: an integer from {low} to {high}", param=name)
    return int(text)


def _row(row: report.Row, budget: Budget | None) -> dict[str, Any]:
    out: dict[str, Any] = {"group": row.group, "calls": row.calls,
                           "input_tokens": row.input_tokens, "output_tokens": row.output_tokens,
                           "cached_tokens": row.cached_tokens, "cost_usd": row.cost_nanos / 1e9,
                           "cache_write_tokens": row.cache_write_tokens,
                           "cache_write_1h_tokens": row.cache_write_1h_tokens,
                           "reasoning_tokens": row.reasoning_tokens,
                           "unpriced_calls": row.unpriced_calls,
                           **{name: getattr(row, name) for name in report.MEDIA_TOKENS},
                           "budget": None}
    if budget is not None:
        out["budget"] = {"name": budget.name, "limit_usd": budget.limit_nanos / 1e9,
                         "window": budget.window,
                         "used_pct": round(row.cost_nanos * 100 / budget.limit_nanos, 2)
                         if budget.limit_nanos else 100.0}
    return out

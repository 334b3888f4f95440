"""The spend guard on the request path: runaway check, reserve, settle, ledger.

- `on_request`: the runaway guard (rate spike, loop) for the caller's key.
- `on_attempt` (every attempt, fallbacks included): reserve the attempt's worst
  case on every budget it counts against, or refuse with 429 `budget_exceeded`.
  Streams are journaled here: the row is in the ledger writer's pipe before any
  byte goes upstream, and committed before any byte reaches the client (the call
  holds its answer for it, `Call.hold`; a failed commit answers 503).
- `on_attempt_done`: settle to the real cost and write the ledger entry; the
  answer is held for it, so a non-streamed answer is on disk before its response
  is sent (the commit overlaps the work the answer needs anyway).
- `on_finish`: an attempt that never reported (cancelled, crashed) is charged its
  reserved worst case, status `unsettled`: the budget errs on the safe side.

All in memory and O(1) per request except the one ledger write per attempt.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping

import orjson
from opentelemetry.context import Context

from gateway import attribution, errors
from gateway.call import AttemptResult, Call
from gateway.config import GatewayConfig, ModelConfig
from gateway.fastpaths import trace_id_hex
from gateway.hooks import BaseHook
from gateway.pricing import PICO_PER_MTOK_UNIT, ModelPricing, Rates
from gateway.spend.backend import Backend
from gateway.spend.budgets import (
    Budget,
    BudgetSet,
    Refusal,
    ThresholdTracker,
    cost_nanos,
    fmt_usd,
    output_tokens_reserved,
    to_nanos,
    worst_case_nanos,
)
from gateway.spend.config import SpendConfig
from gateway.spend.ledger import OK, UNSETTLED, LedgerEntry, Reservation
from gateway.spend.metrics import SpendMetrics
from gateway.spend.notify import Notifier
from gateway.spend.notify_formats import Notice
from gateway.spend.refusals import RunawayRefused, SpendUnavailable, UnpricedRefused
from gateway.spend.runaway import RunawayGuard, Verdict
from gateway.spend.windows import Clock, Window, duration, local_time
from gateway.telemetry import names as n

_log = logging.getLogger(__name__)
RUNAWAY_EVENT = n.EVENT_RUNAWAY
BUDGET_EVENT = n.EVENT_BUDGET_EXCEEDED


class SpendHook(BaseHook):
    def __init__(self, *, config: GatewayConfig, budgets: BudgetSet, backend: Backend,
                 clock: Clock, notifier: Notifier, metrics: SpendMetrics,
                 runaway: RunawayGuard | None) -> None:
        self.spend: SpendConfig = config.spend
        self.budgets = budgets
        self.backend = backend
        self.clock = clock
        self.notifier = notifier
        self.metrics = metrics
        self.runaway = runaway
        self.thresholds = ThresholdTracker()
        self._blocked_noticed: dict[str, str] = {}  # budget -> window id already announced
        self._fallback = fallback_pricing(config.spend)
        self._refuse_unpriced = config.spend.unpriced == "refuse"
        self._provider_names: Mapping[str, str] = {
            name: config.provider_for(model).provider_name for name, model in config.models.items()}

    # --- runaway guard ----------------------------------------------------------------
    async def on_request(self, call: Call) -> None:
        guard = self.runaway
        if guard is None:
            return
        body_hash = hashlib.blake2b(call.client.raw or orjson.dumps(call.client.body),
                                    digest_size=16).digest()
        verdict = guard.check(call.principal.alias, body_hash, self.clock.now())
        if verdict is not None:
            self._flagged(call, verdict)

    def _flagged(self, call: Call, verdict: Verdict) -> None:
        alias = call.principal.alias
        if not (verdict.new or verdict.reject):
            return  # an alert episode already reported: a loop must not cost every request more
        self.metrics.runaway(alias, verdict.kind, verdict.action, call.server_context)
        span = call.server_span
        if span.is_recording():
            span.add_event(RUNAWAY_EVENT, {n.LABEL_RUNAWAY_KIND: verdict.kind,
                                           n.LABEL_ACTION: verdict.action,
                                           n.GATEWAY_KEY_ALIAS: alias})
        if verdict.new:
            cooldown = self.spend.runaway.notify_cooldown_s
            slot = int(self.clock.now() // cooldown) if cooldown else 0
            self.notifier.submit(
                Notice("runaway", f"Runaway guard: {verdict.kind} on key '{alias}'",
                       f"{verdict.detail}; action: {verdict.action}.",
                       {"key_alias": alias, "team": call.principal.team,
                        "runaway_kind": verdict.kind, "action": verdict.action}),
                claim=f"runaway:{alias}:{verdict.kind}:{slot}", claim_ttl_s=max(cooldown, 60),
                context=call.server_context)
        if verdict.reject:
            raise RunawayRefused(
                f"The gateway's runaway guard is {'blocking' if verdict.action == 'block' else 'throttling'} "
                f"this key: {verdict.detail}. Retry after {verdict.retry_after_s}s.",
                headers={"retry-after": str(verdict.retry_after_s)})

    # --- budgets --------------------------------------------------------------------------
    async def on_attempt(self, call: Call, model: ModelConfig) -> None:
        if call.reservation is not None:
            await self._settle_abnormal(call)
        if not model.pricing.priced and self._refuse_unpriced:
            raise UnpricedRefused(
                f"The model '{model.name}' has no price (not in the gateway's price catalog, "
                "none in its config), and this gateway refuses calls whose cost it cannot "
                "know (spend.unpriced: refuse).", param="model")
        principal = call.principal
        provider = self._provider_names.get(model.name, "")
        named = attribution.of(call.state)
        budgets = self.budgets.applicable(principal.alias, principal.team, model.name, provider,
                                          named.user, named.tags)
        now = self.clock.now()
        windows = tuple(self.budgets.window(b, now) for b in budgets)
        prompt = call.client.prompt_tokens  # the dialect's estimate, computed once per call
        output = output_tokens_reserved(call.client.body, call.client.max_tokens,
                                        self.spend.default_max_tokens, call.operation)
        amount = self._worst_case(model, prompt, output)
        attempt = len(call.attempts) + 1

        def journal() -> LedgerEntry:
            entry = self._entry(call, model.name, provider, now, attempt)
            entry.input_tokens, entry.output_tokens, entry.cost_nanos = prompt, output, amount
            entry.status, entry.estimated = self.backend.journal_status, True
            entry.unpriced = not model.pricing.priced
            return entry

        res = Reservation(budgets, windows, amount, now, attempt, journal)
        try:
            refusal = await self.backend.reserve(res, durable=call.client.stream)
        except Exception:
            _log.exception("the spend store could not reserve for request %s", call.request_id)
            raise _unavailable() from None
        if refusal is not None:
            self._refused(call, refusal, now)
        call.reservation = res
        if res.written is not None:  # the journal row commits while the attempt runs
            call.hold(res.written, _unavailable)

    def _refused(self, call: Call, refusal: Refusal, now: float) -> None:
        budget, window = refusal.budget, refusal.window
        self.metrics.rejected(budget)
        span = call.server_span
        if span.is_recording():
            span.add_event(BUDGET_EVENT, {n.LABEL_BUDGET: budget.name,
                                          n.LABEL_BUDGET_SCOPE: budget.scope,
                                          n.LABEL_BUDGET_WINDOW: budget.window})
        if self._blocked_noticed.get(budget.name) != window.id:
            self._blocked_noticed[budget.name] = window.id
            self._notify(budget, window, refusal.spent_nanos, now, level=None,
                         context=call.server_context)
        raise errors.BudgetExceeded(refusal.message(now),
                                    headers={"retry-after": str(refusal.retry_after_s(now))})

    async def on_attempt_done(self, call: Call, result: AttemptResult) -> None:
        res, call.reservation = call.reservation, None
        usage = result.usage
        entry: LedgerEntry | None = None
        pricing = result.model.pricing
        priced = pricing.priced
        if usage is None:
            actual = to_nanos(result.cost)
        else:  # integers only; an unpriced model at the fallback price
            actual = cost_nanos(usage, pricing if priced else self._fallback)
        if usage is not None and (usage.input or usage.output or actual):
            entry = self._entry(call, result.model.name, result.provider_name,
                                res.ts if res is not None else self.clock.now(),
                                res.attempt if res is not None else len(call.attempts))
            entry.input_tokens, entry.output_tokens = usage.input, usage.output
            entry.cached_tokens, entry.reasoning_tokens = usage.cache_read, usage.reasoning
            entry.cache_write_tokens = usage.cache_creation - usage.cache_creation_1h
            entry.cache_write_1h_tokens = usage.cache_creation_1h
            entry.input_audio_tokens, entry.output_audio_tokens = usage.input_audio, usage.output_audio
            entry.input_image_tokens, entry.output_image_tokens = usage.input_image, usage.output_image
            entry.cost_nanos, entry.estimated, entry.unpriced = actual, usage.estimated, not priced
            entry.status = result.error_type or OK
        else:
            actual = 0
        await self._settle(call, res, entry, actual)

    async def on_finish(self, call: Call) -> None:
        if call.reservation is not None:
            await self._settle_abnormal(call)

    async def _settle_abnormal(self, call: Call) -> None:
        """An attempt ended without reporting what it used: charge its worst case."""
        res, call.reservation = call.reservation, None
        if res is None:
            return
        entry = LedgerEntry.from_dict(res.journal.as_dict())
        entry.status = UNSETTLED
        await self._settle(call, res, entry, res.amount_nanos)

    async def _settle(self, call: Call, res: Reservation | None, entry: LedgerEntry | None,
                      actual: int) -> None:
        budgets = res.budgets if res is not None else ()
        windows = res.windows if res is not None else ()
        context = call.server_context
        try:
            levels = await self.backend.settle(res, budgets, windows, entry, actual)
        except Exception:  # on_attempt_done must not raise
            _log.exception("could not settle spend")
            return
        if res is not None and res.written is not None:
            call.hold(res.written)  # committed before the answer goes out (its failure is logged)
        now = self.clock.now()
        for budget, window, spent in levels:
            limit = self.backend.limit(budget)
            for threshold in self.thresholds.crossed(budget, window, spent, limit):
                self._notify(budget, window, spent, now, level=threshold, context=context)

    def _notify(self, budget: Budget, window: Window, spent: int, now: float,
                level: float | None, context: Context) -> None:
        limit = self.backend.limit(budget)
        pct = spent * 100 / limit if limit else 100.0
        resets = f"resets {local_time(window.end, budget.tz)} (in {duration(window.end - now)})"
        if level is None:
            kind, title = "budget_blocked", f"Budget '{budget.name}' is refusing requests"
            text = (f"{budget.label()}: {fmt_usd(spent)} of {fmt_usd(limit)} "
                    f"spent ({pct:.0f}%), requests that could exceed it get 429; {resets}.")
        else:
            kind, title = "budget_threshold", f"Budget '{budget.name}' reached {level:g}%"
            text = (f"{budget.label()}: {fmt_usd(spent)} of {fmt_usd(limit)} "
                    f"spent ({pct:.0f}%), action at the limit: {budget.action}; {resets}.")
        fields = {"budget": budget.name, "scope": budget.scope, "target": budget.target,
                  "window": budget.window, "window_id": window.id,
                  "threshold_pct": level, "spend_usd": spent / 1e9,
                  "limit_usd": limit / 1e9, "percent_used": round(pct, 2),
                  "action": budget.action, "resets_at": window.end}
        claim = f"budget:{budget.name}:{window.id}:{'blocked' if level is None else f'{level:g}'}"
        self.notifier.submit(Notice(kind, title, text, fields), claim=claim,
                             claim_ttl_s=window.end - now + 86400, context=context)

    def _worst_case(self, model: ModelConfig, prompt: int, output: int) -> int:
        pricing = model.pricing if model.pricing.priced else self._fallback
        return worst_case_nanos(prompt, output, pricing)

    def _entry(self, call: Call, served: str, provider: str, ts: float, attempt: int
               ) -> LedgerEntry:
        principal = call.principal
        trace_id = trace_id_hex(call.server_span.get_span_context())
        found = attribution.of(call.state)
        return LedgerEntry(
            ts=ts, request_id=call.request_id, trace_id=trace_id, key_alias=principal.alias,
            team=principal.team, key_id=principal.key_id, operation=call.operation,
            model_requested=call.model.name, model_served=served, provider=provider,
            stream=call.client.stream, attempt=attempt, tags=found.tags_json(),
            end_user=found.user)


def _unavailable() -> SpendUnavailable:
    """A stream's journal row could not be committed: nothing is sent to the client."""
    return SpendUnavailable("The gateway cannot record spend right now (its spend store is "
                            "unavailable), so it does not start new calls.")


def fallback_pricing(spend: SpendConfig) -> ModelPricing:
    """The prices budgets charge a call to an unpriced model at (every input token type
    at the input price, every output type at the output price)."""
    price = spend.unpriced_price_per_mtok
    pin = int(price.input * PICO_PER_MTOK_UNIT)
    pout = int(price.output * PICO_PER_MTOK_UNIT)
    return ModelPricing(Rates(pin, pin, pin, pin, pout, pout, pin, pout, pin, pout))

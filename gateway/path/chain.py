"""Runs a call's attempts down its fallback chain, with retries, circuit breakers,
budgets and one overall deadline, and the hooks around every attempt.

Per model of the chain: skip it while its circuit is open; ask the hooks
(`on_attempt`, where a budget may refuse it); try it, retrying retryable
failures with backoff while the request's deadline allows; on a failure worth
falling back for, move on to the next model. Nothing is retried or replaced
once the client has received a byte. The first success, or the last failure,
is the answer: a `JsonAnswer`, or an `EventStream` the edge has the relay run and
then hands back to `settle`, which accounts for it like any other attempt.
The chain never sees the client's HTTP request or response.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from gateway import errors
from gateway.call import AttemptResult, Call
from gateway.clock import Clock
from gateway.config import ModelConfig
from gateway.hooks import CallHook, overriding
from gateway.path.answer import EventStream, JsonAnswer
from gateway.path.attempt import AttemptFailed, AttemptRunner
from gateway.resilience import outcome
from gateway.resilience.backoff import parse_retry_after, retry_delay
from gateway.resilience.breaker import Breakers, CircuitBreaker
from gateway.resilience.config import FALLBACK, ModelPolicy
from gateway.resilience.deadline import AttemptDeadlines, plan
from gateway.router import Router
from gateway.telemetry import names as n
from gateway.translate.dialects import translates

_NEUTRAL_ENDS = frozenset({None, n.ERROR_CLIENT_DISCONNECT, n.ERROR_CANCELLED})
Answer = JsonAnswer | EventStream


class _MoveOn(Exception):
    """This model cannot serve the call; try the next one in the chain."""

    def __init__(self, reason: str, error: errors.GatewayError) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error


class _Local(Exception):
    """The gateway answers this call itself (the dialect's `local_answer`)."""

    def __init__(self, answer: JsonAnswer) -> None:
        super().__init__("answered locally")
        self.answer = answer


class Chain:
    """The order of attempts for one call, and what happens around each."""

    def __init__(self, runner: AttemptRunner, router: Router, hooks: Sequence[CallHook], *,
                 breakers: Breakers | None = None, rng: random.Random | None = None) -> None:
        self.runner = runner
        self.router = router
        self.hooks = list(hooks)
        # Per seam, only the hooks that implement it (each await costs a coroutine).
        self._on_request = overriding(self.hooks, "on_request")
        self._on_attempt = overriding(self.hooks, "on_attempt")
        self._on_attempt_done = overriding(self.hooks, "on_attempt_done")
        self.config = runner.config
        self.clock: Clock = runner.clock  # deadlines, retry pauses, breakers: one clock
        self.instruments = runner.telemetry.instruments
        self.breakers = breakers if breakers is not None else Breakers(
            self.instruments.circuit_state.set, self.clock)
        self._rng = rng or random.Random()
        self._breaker_of: dict[str, CircuitBreaker | None] = {}  # model name -> its breaker
        # model name -> its policy: the config is frozen, so looked up once per model.
        self._policy_of: dict[str, ModelPolicy] = {}

    async def dispatch(self, call: Call) -> Answer:
        for hook in self._on_request:
            await hook.on_request(call)
        chain = self.router.chain(call)
        asked = self._policy(call.model)
        request_at = self.clock.time() + asked.request_timeout_s
        last: errors.GatewayError | None = None
        reason = ""
        for index, model in enumerate(chain):
            if index:
                self._fell_back(call, chain[index - 1], model, reason)
            try:
                return await self._serve_with(call, model, request_at, asked.request_timeout_s,
                                              index < len(chain) - 1)
            except _MoveOn as move:
                reason, last = move.reason, move.error
            except _Local as local:
                return local.answer
        raise last or errors.ServiceUnavailable("no model could serve this request")

    async def _serve_with(self, call: Call, model: ModelConfig, request_at: float,
                          request_s: float, fallback_left: bool) -> Answer:
        """Try `model` (with retries); raise _MoveOn to fall back."""
        self._check_dialect(call, model)
        policy = self._policy(model)
        breaker = self._breaker(model, policy)
        clock = self.clock
        retry = 0
        failed: AttemptFailed | None = None  # the last failure of this model
        while True:
            if clock.time() >= request_at:
                raise outcome.deadline_exceeded(request_s)
            if breaker is not None and not breaker.allow():
                if failed is not None:  # our own failures opened it: fall back for their reason
                    raise _MoveOn(failed.reason or outcome.CIRCUIT_OPEN, failed.error)
                raise _MoveOn(outcome.CIRCUIT_OPEN, outcome.CircuitOpen(
                    f"model '{model.name}' is unavailable: its circuit breaker is open"))
            await self._before_attempt(call, model, policy, breaker, fallback_left)
            deadlines = plan(clock.time(), model.name, policy, request_at, request_s,
                             fallback_left=fallback_left)
            try:
                answer = await self.attempt(call, model, len(call.attempts) + 1, deadlines)
            except AttemptFailed as exc:
                failed = exc
                self._judge(breaker, failed.reason)
                delay = self._retry_delay(failed, policy, retry, request_at, clock.time())
                if delay is None:
                    raise self._no_retry(failed) from None
                self._count_retry(call, model, failed.reason or "")
                await self._pause(call, delay)
                retry += 1
                continue
            except BaseException:
                if breaker is not None:
                    breaker.release()
                raise
            if isinstance(answer, JsonAnswer):  # a stream is judged when it ends (`settle`)
                self._judge_answer(breaker, answer.result.error_type)
            return answer

    def _check_dialect(self, call: Call, model: ModelConfig) -> None:
        """Only a provider that speaks the call's dialect, natively or through a
        translation (`gateway/translate/`), can serve it."""
        dialect = call.client.dialect
        provider = self.runner.provider_for(model)
        if dialect.name not in provider.dialects and not translates(dialect, provider.dialects):
            answer_locally = getattr(dialect, "local_answer", None)  # see AnswersLocally
            if answer_locally is not None:
                body: bytes = answer_locally(call.client)
                result = AttemptResult(model=model, provider_name=provider.config.provider_name,
                                       usage=None, cost=Decimal(0), status=200)
                raise _Local(JsonAnswer(200, body, {}, model, result, time.perf_counter()))
            raise _MoveOn(outcome.DIALECT, errors.DialectNotSupported(
                f"model '{model.name}' is served by provider '{provider.config.name}', which "
                f"does not speak the {dialect.name} API, and the gateway cannot translate it"))

    async def _before_attempt(self, call: Call, model: ModelConfig, policy: ModelPolicy,
                              breaker: CircuitBreaker | None, fallback_left: bool) -> None:
        """The hooks' say on this attempt; a budget may send the call down the chain."""
        try:
            for hook in self._on_attempt:
                await hook.on_attempt(call, model)
        except errors.BudgetExceeded as exc:
            if breaker is not None:
                breaker.release()
            if policy.on_budget_exceeded == FALLBACK and fallback_left:
                raise _MoveOn(outcome.BUDGET, exc) from None
            raise
        except BaseException:
            if breaker is not None:
                breaker.release()
            raise

    def _no_retry(self, failed: AttemptFailed) -> BaseException:
        """What to raise for a failure not retried: fall back, or answer with it."""
        if failed.reason is None or isinstance(failed.error, outcome.DeadlineExceeded):
            return failed.error
        return _MoveOn(failed.reason, failed.error)

    def _retry_delay(self, failed: AttemptFailed, policy: ModelPolicy, retry: int,
                     request_at: float, now: float) -> float | None:
        retry_policy = policy.retry
        if failed.reason not in retry_policy.on or retry + 1 >= retry_policy.max_attempts:
            return None
        retry_after = parse_retry_after(failed.error.headers) if failed.error.headers else None
        return retry_delay(retry_policy, retry, retry_after, request_at - now, self._rng)

    async def _pause(self, call: Call, delay: float) -> None:
        started = time.perf_counter()  # the overhead's clock: the pause is not ours
        try:
            await self.clock.sleep(delay)
        finally:
            call.backoff_s += time.perf_counter() - started

    async def attempt(self, call: Call, model: ModelConfig, number: int,
                      deadlines: AttemptDeadlines) -> Answer:
        """One attempt up to its answer; raises AttemptFailed before commit."""
        try:
            answer = await self.runner.run(call, model, number, deadlines)
        except AttemptFailed as failed:
            await self._done(call, failed.result)
            raise failed  # by name, not a bare raise after an await
        call.served_model = model
        call.served_provider = self.runner.route(model).provider_name
        if isinstance(answer, JsonAnswer):
            await self._done(call, answer.result)
        return answer

    async def settle(self, call: Call, stream: EventStream, *, aborted: bool) -> None:
        """Account for a stream once the relay has ended it (`aborted`: cancelled, or the
        edge failed before the relay could run it)."""
        await stream.aclose()
        result = self.runner.finish_stream(call, stream)
        await self._done(call, result)
        breaker = self._breaker_of.get(stream.model.name)
        if breaker is None:
            return
        if aborted:
            breaker.release()
        else:
            self._judge_answer(breaker, result.error_type)

    async def _done(self, call: Call, result: AttemptResult) -> None:
        call.attempts.append(result)
        for hook in self._on_attempt_done:
            await hook.on_attempt_done(call, result)

    def _policy(self, model: ModelConfig) -> ModelPolicy:
        policy = self._policy_of.get(model.name)
        if policy is None:
            policy = self._policy_of[model.name] = self.config.resilience.policy(model.name)
        return policy

    def _breaker(self, model: ModelConfig, policy: ModelPolicy) -> CircuitBreaker | None:
        try:
            return self._breaker_of[model.name]
        except KeyError:
            pass
        provider = self.config.provider_for(model)
        labels: dict[str, Any] = {n.GEN_AI_REQUEST_MODEL: model.name,
                                  n.GEN_AI_PROVIDER_NAME: provider.provider_name}
        breaker = self.breakers.get(provider.name, model.name, policy.breaker, labels)
        self._breaker_of[model.name] = breaker
        return breaker

    @staticmethod
    def _judge(breaker: CircuitBreaker | None, reason: str | None) -> None:
        """Tell the breaker about an attempt that failed before commit."""
        if breaker is None:
            return
        if outcome.counts_as_failure(reason):
            breaker.failure()
        else:
            breaker.release()

    @staticmethod
    def _judge_answer(breaker: CircuitBreaker | None, error_type: str | None) -> None:
        """Tell the breaker about an answer: a stream that broke mid-way counts as a failure."""
        if breaker is None:
            return
        if error_type is None:
            breaker.success()
        elif error_type in _NEUTRAL_ENDS:
            breaker.release()
        else:
            breaker.failure()

    def _fell_back(self, call: Call, from_model: ModelConfig, to_model: ModelConfig,
                   reason: str) -> None:
        call.fallback_reason = reason
        self.instruments.fallbacks.add(1, {n.LABEL_FROM_MODEL: from_model.name,
                                           n.LABEL_TO_MODEL: to_model.name,
                                           n.LABEL_REASON: reason}, context=call.server_context)

    def _count_retry(self, call: Call, model: ModelConfig, reason: str) -> None:
        provider = self.config.provider_for(model).provider_name
        self.instruments.retries.add(1, {n.GEN_AI_REQUEST_MODEL: model.name,
                                         n.GEN_AI_PROVIDER_NAME: provider,
                                         n.LABEL_REASON: reason}, context=call.server_context)

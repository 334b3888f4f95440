"""The deadlines of one attempt before it commits, on the app's clock (`gateway/clock.py`):
the first-token rule, the attempt's own timeout and the request's overall deadline.
Pure: the attempt runner drives one `Deadline` (`timers.py`) with these values.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway import errors
from gateway.resilience.config import ModelPolicy
from gateway.resilience.outcome import FirstTokenTimeout, deadline_exceeded


@dataclass(slots=True, init=False)
class AttemptDeadlines:
    model: str
    first_token_at: float | None  # no first byte / first event by then: fall back
    answer_at: float  # the attempt's answer must have started by then
    request_at: float  # the request's overall deadline (answer_at never exceeds it)
    first_token_s: float | None
    attempt_s: float | None
    request_s: float

    def __init__(self, model: str, first_token_at: float | None, answer_at: float,
                 request_at: float, first_token_s: float | None = None,
                 attempt_s: float | None = None, request_s: float = 0.0) -> None:
        self.model = model  # written out: see gateway.call.AttemptResult
        self.first_token_at = first_token_at
        self.answer_at = answer_at
        self.request_at = request_at
        self.first_token_s = first_token_s
        self.attempt_s = attempt_s
        self.request_s = request_s

    @property
    def start(self) -> float:
        """The deadline until the first byte or event arrives."""
        if self.first_token_at is not None and self.first_token_at < self.answer_at:
            return self.first_token_at
        return self.answer_at

    def expired(self, first_seen: bool) -> errors.GatewayError:
        """The error for the deadline that ran out."""
        if not first_seen and self.first_token_at is not None and self.first_token_at < self.answer_at:
            return FirstTokenTimeout(
                f"model '{self.model}' sent no first token within {self.first_token_s:g} s "
                "(first_token_timeout_s)")
        if self.answer_at >= self.request_at:
            return deadline_exceeded(self.request_s)
        return errors.UpstreamTimeout(
            f"the upstream for model '{self.model}' did not answer within {self.attempt_s:g} s "
            "(attempt_timeout_s)")


def plan(now: float, model: str, policy: ModelPolicy, request_at: float, request_s: float,
         *, fallback_left: bool) -> AttemptDeadlines:
    """Deadlines for an attempt starting `now`; the first-token rule only applies when
    there is a fallback to move on to."""
    answer_at = request_at
    if policy.attempt_timeout_s is not None:
        answer_at = min(answer_at, now + policy.attempt_timeout_s)
    first_s = policy.first_token_timeout_s if fallback_left else None
    return AttemptDeadlines(
        model=model,
        first_token_at=None if first_s is None else now + first_s,
        answer_at=answer_at,
        request_at=request_at,
        first_token_s=first_s,
        attempt_s=policy.attempt_timeout_s,
        request_s=request_s,
    )

"""The runaway guard, pure: per key, a request-rate spike against the key's own
baseline, and loops (the same request body over and over).

Rate: requests are counted per calendar minute; the baseline is a bias-corrected
moving average of the key's past minutes (idle minutes count as zero; minutes
already flagged as spikes do not teach it, so a runaway never becomes the new
normal). A minute is a spike once its count passes `spike_factor` x baseline and
the `min_requests_per_minute` floor, after `warmup_minutes` of history. With the
defaults, a key that usually sends 35 requests a minute (50k a day) is flagged
within the first minute it sends 175+ (250k a day).

Loop: identical bodies from one key are counted in a window; past
`loop_threshold`, every further copy is flagged. Memory is bounded (LRU).

Everything is O(1) per request and takes `now` as an argument (no clock inside).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

from gateway.spend.config import RunawayConfig

RATE_SPIKE = "rate_spike"
LOOP = "loop"
_MAX_BODIES = 50_000
_MAX_KEYS = 10_000


@dataclass(frozen=True, slots=True)
class Verdict:
    """The guard flagged this request."""

    kind: str  # rate_spike | loop
    action: str  # alert | throttle | block
    reject: bool
    retry_after_s: int
    detail: str
    new: bool  # the first flag of this episode (notify once)


@dataclass(slots=True)
class _KeyState:
    minute: int
    count: int = 0
    baseline: float = 0.0  # uncorrected moving average
    weight: float = 0.0  # 1 - (1 - alpha)^minutes: bias correction of `baseline`
    minutes: int = 0  # completed minutes of history
    spiking: bool = False
    blocked_until: float = 0.0
    blocked_kind: str = ""


@dataclass(slots=True, init=False)
class _Body:
    start: float
    count: int

    def __init__(self, start: float, count: int = 0) -> None:  # per new body: kept compiled
        self.start = start
        self.count = count


class RunawayGuard:
    def __init__(self, config: RunawayConfig) -> None:
        self.config = config
        self.alpha = 1.0 / config.baseline_minutes
        self._keys: OrderedDict[str, _KeyState] = OrderedDict()
        self._bodies: OrderedDict[tuple[str, bytes], _Body] = OrderedDict()

    def baseline(self, alias: str) -> float | None:
        """The key's usual requests per minute, once warmed up."""
        state = self._keys.get(alias)
        if state is None or state.minutes < self.config.warmup_minutes or state.weight == 0:
            return None
        return state.baseline / state.weight

    def check(self, alias: str, body_hash: bytes | None, now: float) -> Verdict | None:
        """Count one request of `alias`; a Verdict when the guard flags it."""
        state = self._state(alias, now)
        if state.blocked_until > now:
            return Verdict(state.blocked_kind, "block", True, math.ceil(state.blocked_until - now),
                           f"key '{alias}' is blocked by the runaway guard", False)
        state.count += 1
        verdict = self._rate(alias, state, now)
        if verdict is None and body_hash is not None:
            verdict = self._loop(alias, body_hash, now)
        if verdict is not None and verdict.action == "block":
            state.blocked_until = now + self.config.block_s
            state.blocked_kind = verdict.kind
        return verdict

    def _state(self, alias: str, now: float) -> _KeyState:
        minute = int(now // 60)
        state = self._keys.get(alias)
        if state is None:
            state = _KeyState(minute)
            self._keys[alias] = state
            if len(self._keys) > _MAX_KEYS:
                self._keys.popitem(last=False)
        else:
            self._keys.move_to_end(alias)
        if minute > state.minute:
            self._close_minutes(state, minute)
        return state

    def _close_minutes(self, state: _KeyState, minute: int) -> None:
        keep = 1 - self.alpha
        if not state.spiking:
            state.baseline = state.baseline * keep + self.alpha * state.count
            state.weight = state.weight * keep + self.alpha
        idle = min(minute - state.minute - 1, 10_000)
        if idle > 0:  # minutes with no request at all teach the baseline zeros
            decay = keep ** idle
            state.baseline *= decay
            state.weight = state.weight * decay + (1 - decay)
        state.minutes += minute - state.minute
        state.minute = minute
        state.count = 0
        state.spiking = False

    def _rate(self, alias: str, state: _KeyState, now: float) -> Verdict | None:
        baseline = self.baseline(alias)
        if baseline is None:
            return None
        config = self.config
        threshold = max(config.spike_factor * baseline, float(config.min_requests_per_minute))
        if state.count <= threshold:
            return None
        new = not state.spiking
        state.spiking = True
        detail = (f"key '{alias}' sent {state.count} requests this minute, over "
                  f"{config.spike_factor:g}x its usual {baseline:.1f}/min")
        retry = max(1, math.ceil(60 - now % 60))
        return Verdict(RATE_SPIKE, config.action, config.action != "alert", retry, detail, new)

    def _loop(self, alias: str, body_hash: bytes, now: float) -> Verdict | None:
        config = self.config
        key = (alias, body_hash)
        body = self._bodies.get(key)
        if body is None or now - body.start > config.loop_window_s:
            body = _Body(now)
            self._bodies[key] = body
            if len(self._bodies) > _MAX_BODIES:
                self._bodies.popitem(last=False)
        else:
            self._bodies.move_to_end(key)
        body.count += 1
        if body.count <= config.loop_threshold:
            return None
        detail = (f"key '{alias}' sent the same request {body.count} times in "
                  f"{now - body.start:.0f}s")
        retry = max(1, math.ceil(body.start + config.loop_window_s - now))
        return Verdict(LOOP, config.action, config.action != "alert", retry, detail,
                       body.count == config.loop_threshold + 1)

"""The `resilience:` and `rate_limits:` sections and the per-model resilience keys.

Parsed with `confread.Section`, so every mistake is reported with its key path
(`models.gpt-4.1.fallbacks[0]: names no model`). Fallback chains are resolved
here once, at load time: a request never walks the graph.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from gateway.confread import Section
from gateway.resilience.outcome import DEFAULT_RETRY_ON, RETRYABLE

FAIL = "fail"
FALLBACK = "fallback"
BUDGET_ACTIONS = (FAIL, FALLBACK)

# Keys a `models.<name>` entry may carry for resilience (config.py allows them).
MODEL_KEYS = frozenset({
    "fallbacks", "request_timeout_s", "attempt_timeout_s", "first_token_timeout_s",
    "on_budget_exceeded", "retry", "circuit_breaker",
})
_POLICY_KEYS = MODEL_KEYS - {"fallbacks"}
_RETRY_KEYS = {"max_attempts", "initial_backoff_s", "max_backoff_s", "multiplier", "jitter",
               "max_retry_after_s", "on"}
_BREAKER_KEYS = {"enabled", "failure_threshold", "error_ratio", "window_s", "min_requests",
                 "cooldown_s"}
_LIMIT_KEYS = {"requests_per_minute", "tokens_per_minute"}


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of one model before moving down the chain (`max_attempts` includes the first)."""

    max_attempts: int = 2
    initial_backoff_s: float = 0.25
    max_backoff_s: float = 4.0
    multiplier: float = 2.0
    jitter: float = 0.5  # share of each delay drawn at random (0 = none, 1 = full jitter)
    max_retry_after_s: float = 10.0  # a longer upstream Retry-After falls back instead
    on: frozenset[str] = frozenset(DEFAULT_RETRY_ON)


@dataclass(frozen=True)
class BreakerPolicy:
    """When a provider+model's circuit opens, and for how long."""

    enabled: bool = True
    failure_threshold: int = 5  # consecutive failures that open the circuit
    error_ratio: float = 0.5  # ... or this share of failures over the window
    window_s: float = 60.0
    min_requests: int = 20  # the ratio only counts once the window saw this many
    cooldown_s: float = 30.0  # open this long, then one probe (half-open)


@dataclass(frozen=True)
class ModelPolicy:
    """Resilience settings of one model (the `resilience:` defaults plus its overrides)."""

    fallbacks: tuple[str, ...] = ()
    request_timeout_s: float = 120.0  # every retry and fallback of a request, until it answers
    attempt_timeout_s: float | None = None  # one attempt, until its answer starts
    first_token_timeout_s: float | None = None  # the "5 s rule"; only with a fallback left
    on_budget_exceeded: str = FAIL
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)


@dataclass(frozen=True)
class RateLimit:
    """Requests and tokens per minute for one key alias; None means no limit."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None

    @property
    def unlimited(self) -> bool:
        return self.requests_per_minute is None and self.tokens_per_minute is None


@dataclass(frozen=True)
class RateLimitConfig:
    default: RateLimit = field(default_factory=RateLimit)
    keys: Mapping[str, RateLimit] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return not self.default.unlimited or any(not lim.unlimited for lim in self.keys.values())

    def for_key(self, alias: str) -> RateLimit:
        return self.keys.get(alias, self.default)


@dataclass(frozen=True)
class ResilienceConfig:
    defaults: ModelPolicy = field(default_factory=ModelPolicy)
    models: Mapping[str, ModelPolicy] = field(default_factory=dict)
    chains: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    rate_limits: RateLimitConfig = field(default_factory=RateLimitConfig)

    def policy(self, model: str) -> ModelPolicy:
        return self.models.get(model, self.defaults)

    def chain(self, model: str) -> tuple[str, ...]:
        """`model` then its fallbacks, each followed by its own, every model once."""
        return self.chains.get(model, (model,))


def _optional_seconds(sec: Section, key: str, default: float | None) -> float | None:
    """A positive number of seconds; an explicit null turns an inherited value off."""
    if sec.has(key) and sec.data.get(key) is None:
        return None
    if not sec.has(key):
        return default
    return sec.number(key, default or 0.0, exclusive=True) or default


def _retry(sec: Section, base: RetryPolicy) -> RetryPolicy:
    sec.reject_unknown(_RETRY_KEYS)
    on = base.on
    if sec.has("on"):
        listed = sec.string_list("on")
        unknown = [r for r in listed if r not in RETRYABLE]
        if unknown:
            sec.fail("on", f"unknown reason {unknown[0]!r} (expected some of: {', '.join(RETRYABLE)})")
        on = frozenset(r for r in listed if r in RETRYABLE)
    initial = sec.number("initial_backoff_s", base.initial_backoff_s)
    maximum = sec.number("max_backoff_s", base.max_backoff_s)
    if maximum < initial:
        sec.fail("max_backoff_s", "must be >= initial_backoff_s")
    jitter = sec.number("jitter", base.jitter)
    if jitter > 1:
        sec.fail("jitter", "must be a number from 0 to 1")
        jitter = base.jitter
    return RetryPolicy(
        max_attempts=sec.integer("max_attempts", base.max_attempts, minimum=1),
        initial_backoff_s=initial,
        max_backoff_s=maximum,
        multiplier=sec.number("multiplier", base.multiplier, minimum=1.0),
        jitter=jitter,
        max_retry_after_s=sec.number("max_retry_after_s", base.max_retry_after_s),
        on=on,
    )


def _breaker(sec: Section, base: BreakerPolicy) -> BreakerPolicy:
    sec.reject_unknown(_BREAKER_KEYS)
    ratio = sec.number("error_ratio", base.error_ratio, exclusive=True)
    if ratio > 1:
        sec.fail("error_ratio", "must be a number > 0 and <= 1")
        ratio = base.error_ratio
    return BreakerPolicy(
        enabled=sec.boolean("enabled", base.enabled),
        failure_threshold=sec.integer("failure_threshold", base.failure_threshold, minimum=1),
        error_ratio=ratio,
        window_s=sec.number("window_s", base.window_s, exclusive=True),
        min_requests=sec.integer("min_requests", base.min_requests, minimum=1),
        cooldown_s=sec.number("cooldown_s", base.cooldown_s, exclusive=True),
    )


def _policy(sec: Section, base: ModelPolicy) -> ModelPolicy:
    """`base` with the resilience keys `sec` sets (the caller rejects unknown keys)."""
    return replace(
        base,
        request_timeout_s=sec.number("request_timeout_s", base.request_timeout_s, exclusive=True),
        attempt_timeout_s=_optional_seconds(sec, "attempt_timeout_s", base.attempt_timeout_s),
        first_token_timeout_s=_optional_seconds(sec, "first_token_timeout_s",
                                                base.first_token_timeout_s),
        on_budget_exceeded=sec.choice("on_budget_exceeded", BUDGET_ACTIONS, base.on_budget_exceeded),
        retry=_retry(sec.section("retry"), base.retry),
        breaker=_breaker(sec.section("circuit_breaker"), base.breaker),
    )


def _limit(sec: Section, base: RateLimit) -> RateLimit:
    sec.reject_unknown(_LIMIT_KEYS)

    def one(key: str, default: int | None) -> int | None:
        if not sec.has(key):
            return default
        if sec.data.get(key) is None:
            return None
        return sec.integer(key, default or 1, minimum=1)

    return RateLimit(one("requests_per_minute", base.requests_per_minute),
                     one("tokens_per_minute", base.tokens_per_minute))


def parse_rate_limits(sec: Section) -> RateLimitConfig:
    sec.reject_unknown({"default", "keys"})
    default = _limit(sec.section("default"), RateLimit())
    keys = {alias: _limit(key_sec, default) for alias, key_sec in sec.section("keys").items()}
    return RateLimitConfig(default=default, keys=keys)


def _fallbacks(sec: Section, known: Iterable[str]) -> tuple[str, ...]:
    names = sec.string_list("fallbacks")
    valid: list[str] = []
    known_set = set(known)
    for index, name in enumerate(names):
        if name not in known_set:
            sec.problems.add(f"{sec.child_path('fallbacks')}[{index}]",
                             f"names no model (known: {', '.join(sorted(known_set))})")
        elif name not in valid:
            valid.append(name)
    return tuple(valid)


def _find_cycles(graph: Mapping[str, tuple[str, ...]]) -> list[list[str]]:
    """Every distinct cycle in the fallback graph, each as a closed path."""
    cycles: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        for nxt in graph.get(node, ()):
            if nxt in path:
                cycle = [*path[path.index(nxt):], nxt]
                key = frozenset(cycle)
                if key not in seen:
                    seen.add(key)
                    cycles.append(cycle)
            elif nxt not in done:
                visit(nxt, [*path, nxt])
        done.add(node)

    for start in graph:
        if start not in done:
            visit(start, [start])
    return cycles


def _expand(start: str, graph: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """Depth first: a fallback's own fallbacks come right after it; each model once."""
    order: list[str] = []

    def visit(node: str) -> None:
        if node in order:
            return
        order.append(node)
        for nxt in graph.get(node, ()):
            visit(nxt)

    visit(start)
    return tuple(order)


def parse_resilience(root: Section, model_names: Iterable[str]) -> ResilienceConfig:
    """Read `resilience:`, `rate_limits:` and the resilience keys of every model."""
    names = list(model_names)
    sec = root.section("resilience")
    sec.reject_unknown(set(_POLICY_KEYS))
    defaults = _policy(sec, ModelPolicy())
    policies: dict[str, ModelPolicy] = {}
    graph: dict[str, tuple[str, ...]] = {}
    for name, model_sec in root.section("models").items():
        if name not in names:
            continue
        fallbacks = _fallbacks(model_sec, names)
        graph[name] = fallbacks
        policy = replace(_policy(model_sec, defaults), fallbacks=fallbacks)
        if policy != defaults:
            policies[name] = policy
    cycles = _find_cycles(graph)
    for cycle in cycles:
        root.problems.add(f"models.{cycle[0]}.fallbacks",
                          f"fallback chains form a cycle: {' -> '.join(cycle)}")
    chains = {} if cycles else {name: _expand(name, graph) for name in graph if graph[name]}
    return ResilienceConfig(
        defaults=defaults,
        models=policies,
        chains=chains,
        rate_limits=parse_rate_limits(root.section("rate_limits")),
    )

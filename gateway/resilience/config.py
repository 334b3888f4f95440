"""The `resilience:` and `rate_limits:` sections and the per-model resilience keys.

Declared once as pydantic dataclasses (`gateway.confread` gives the field types
and reports each mistake with its key path, `models.gpt-4.1.fallbacks[0]: names
no model`). A model's keys override the `resilience:` defaults key by key, nested
ones too. Fallback chains are resolved here once, at load time: a request never
walks the graph.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Annotated, Any

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic.dataclasses import dataclass as section

from gateway.confread import (
    STRICT,
    Bool,
    Check,
    Choice,
    Integer,
    Number,
    StrList,
    fail,
    fail_keys,
    fields_at,
    nullable,
    nullable_fields,
    string_list,
    validate,
)
from gateway.coreconfig import ConfigFeature, FileFacts
from gateway.resilience.outcome import DEFAULT_RETRY_ON, RETRYABLE

FAIL = "fail"
FALLBACK = "fallback"
BUDGET_ACTIONS = (FAIL, FALLBACK)


def _reasons(value: Any) -> frozenset[str]:
    listed = string_list(sorted(value) if isinstance(value, frozenset) else value)
    unknown = [r for r in listed if r not in RETRYABLE]
    if unknown:
        fail(f"unknown reason {unknown[0]!r} (expected some of: {', '.join(RETRYABLE)})")
    return frozenset(listed)


RetryOn = Annotated[frozenset[str], Check(_reasons, {"items": {"enum": list(RETRYABLE)}})]


def _inherit(data: Any, base: Any, nested: Mapping[str, str] = {}) -> Any:
    """`data` (a file mapping) over `base` (a validated policy): keys left out or null inherit.

    `nested` maps a file key to the attribute of `base` whose keys it overrides one by one.
    """
    if not isinstance(data, Mapping) or base is None:
        return data
    merged: dict[str, Any] = {f.name: getattr(base, f.name) for f in fields(base)}
    for key, attribute in nested.items():
        merged[key] = _inherit(data.get(key) if data.get(key) is not None else {},
                               merged.pop(attribute))
    for key, value in data.items():
        if key not in nested and (value is not None or key in nullable_fields(type(base))):
            merged[key] = value
    return merged


@section(frozen=True, config=STRICT)
class RetryPolicy:
    """Retries of one model before moving down the chain (`max_attempts` includes the first)."""

    max_attempts: Annotated[int, Integer(1)] = 2
    initial_backoff_s: Annotated[float, Number()] = 0.25
    max_backoff_s: Annotated[float, Number()] = 4.0
    multiplier: Annotated[float, Number(1.0)] = 2.0
    # The share of each delay drawn at random (0 = none, 1 = full jitter).
    jitter: Annotated[float, Number()] = 0.5
    max_retry_after_s: Annotated[float, Number()] = 10.0  # a longer upstream Retry-After falls back instead
    on: RetryOn = frozenset(DEFAULT_RETRY_ON)

    @field_validator("jitter")
    @classmethod
    def _share(cls, value: float) -> float:
        if value > 1:
            fail("must be a number from 0 to 1")
        return value

    @field_validator("max_backoff_s")
    @classmethod
    def _backoff_order(cls, value: float, info: ValidationInfo) -> float:
        if value < info.data.get("initial_backoff_s", 0.0):
            fail("must be >= initial_backoff_s")
        return value


@section(frozen=True, config=STRICT)
class BreakerPolicy:
    """When a provider+model's circuit opens, and for how long."""

    enabled: Bool = True
    failure_threshold: Annotated[int, Integer(1)] = 5  # consecutive failures that open the circuit
    # ... or this share of failures over the window
    error_ratio: Annotated[float, Number(exclusive=True)] = 0.5
    window_s: Annotated[float, Number(exclusive=True)] = 60.0
    min_requests: Annotated[int, Integer(1)] = 20  # the ratio only counts once the window saw this many
    cooldown_s: Annotated[float, Number(exclusive=True)] = 30.0  # open this long, then one probe (half-open)

    @field_validator("error_ratio", mode="before")
    @classmethod
    def _ratio(cls, value: Any) -> Any:
        try:
            bad = value is not None and not isinstance(value, bool) and not 0 < float(value) <= 1
        except (TypeError, ValueError):
            bad = True
        if bad:
            fail("must be a number > 0 and <= 1")
        return value


Seconds = Annotated[float | None, nullable(Number(exclusive=True))]


@section(frozen=True, config=STRICT)
class PolicyDefaults:
    """The resilience keys of the `resilience:` section (a model may also set them)."""

    # Every retry and fallback of a request, until it answers.
    request_timeout_s: Annotated[float, Number(exclusive=True)] = 120.0
    attempt_timeout_s: Seconds = None  # one attempt, until its answer starts
    first_token_timeout_s: Seconds = None  # the "5 s rule"; only with a fallback left
    on_budget_exceeded: Annotated[str, Choice(*BUDGET_ACTIONS)] = FAIL
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    breaker: Annotated[BreakerPolicy, Field(alias="circuit_breaker")] = field(
        default_factory=BreakerPolicy)

    @model_validator(mode="before")
    @classmethod
    def _over_base(cls, data: Any, info: ValidationInfo) -> Any:
        base = (info.context or {}).get("policy")
        return _inherit(data, base, {"retry": "retry", "circuit_breaker": "breaker"})


@section(frozen=True, config=STRICT)
class ModelPolicy(PolicyDefaults):
    """Resilience settings of one model (the `resilience:` defaults plus its overrides)."""

    fallbacks: StrList = ()

    @field_validator("fallbacks")
    @classmethod
    def _fallbacks_known(cls, names: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        known = (info.context or {}).get("models")
        if known is not None:
            fail_keys((f"[{i}]", f"names no model (known: {', '.join(sorted(known))})")
                      for i, name in enumerate(names) if name not in known)
        return tuple(dict.fromkeys(names))


@section(frozen=True, config=STRICT)
class RateLimit:
    """Requests and tokens per minute for one key alias; None means no limit."""

    requests_per_minute: Annotated[int | None, nullable(Integer(1))] = None
    tokens_per_minute: Annotated[int | None, nullable(Integer(1))] = None

    @model_validator(mode="before")
    @classmethod
    def _over_base(cls, data: Any, info: ValidationInfo) -> Any:
        return _inherit(data, (info.context or {}).get("limit"))

    @property
    def unlimited(self) -> bool:
        return self.requests_per_minute is None and self.tokens_per_minute is None


@section(frozen=True, config=STRICT)
class RateLimitConfig:
    default: RateLimit = field(default_factory=RateLimit)
    keys: Mapping[str, RateLimit] = field(default_factory=dict)  # by key alias; unset keys: default

    @property
    def enabled(self) -> bool:
        return not self.default.unlimited or any(not lim.unlimited for lim in self.keys.values())

    def for_key(self, alias: str) -> RateLimit:
        return self.keys.get(alias, self.default)


@dataclass(frozen=True)
class ResilienceConfig:
    """What the request path reads: each model's policy and its resolved fallback chain."""

    defaults: ModelPolicy = field(default_factory=ModelPolicy)
    models: Mapping[str, ModelPolicy] = field(default_factory=dict)
    chains: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    rate_limits: RateLimitConfig = field(default_factory=RateLimitConfig)

    def policy(self, model: str) -> ModelPolicy:
        return self.models.get(model, self.defaults)

    def chain(self, model: str) -> tuple[str, ...]:
        """`model` then its fallbacks, each followed by its own, every model once."""
        return self.chains.get(model, (model,))


@section(frozen=True, config=STRICT)
class ResilienceFile:
    """The top-level keys this feature owns."""

    resilience: PolicyDefaults = field(default_factory=PolicyDefaults)
    rate_limits: RateLimitConfig = field(default_factory=RateLimitConfig)


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


def load_resilience(tree: Mapping[str, Any], facts: FileFacts, problems: list[str]) -> ResilienceConfig:
    """Read `resilience:`, `rate_limits:` and the resilience keys of every model."""
    quiet: list[str] = []
    section_data = tree.get("resilience")
    base = validate(PolicyDefaults, section_data, "resilience", quiet,
                    known_keys=lambda loc: fields_at(PolicyDefaults, loc)) or PolicyDefaults()
    defaults = ModelPolicy(**{f.name: getattr(base, f.name) for f in fields(base)})
    limits_data = tree.get("rate_limits")
    default_limit = validate(RateLimit, limits_data.get("default") if isinstance(limits_data, Mapping)
                             else None, "", quiet, known_keys=lambda loc: ()) or RateLimit()
    file = validate(ResilienceFile, {k: tree[k] for k in ("resilience", "rate_limits") if k in tree},
                    "", problems, known_keys=lambda loc: fields_at(ResilienceFile, loc),
                    context={"policy": base, "limit": default_limit})
    names = tuple(facts.models)
    policies: dict[str, ModelPolicy] = {}
    graph: dict[str, tuple[str, ...]] = {}
    for name, entry in facts.models.items():
        keys = {k: v for k, v in entry.items() if k in MODEL_KEYS} if isinstance(entry, Mapping) else {}
        policy = validate(ModelPolicy, keys, f"models.{name}", problems,
                          known_keys=lambda loc: fields_at(ModelPolicy, loc),
                          context={"policy": defaults, "models": names})
        if policy is None:
            continue
        graph[name] = policy.fallbacks
        if policy != defaults:
            policies[name] = policy
    cycles = _find_cycles(graph)
    for cycle in cycles:
        problems.append(f"models.{cycle[0]}.fallbacks: fallback chains form a cycle: {' -> '.join(cycle)}")
    chains = {} if cycles else {name: _expand(name, graph) for name in graph if graph[name]}
    return ResilienceConfig(defaults=defaults, models=policies, chains=chains,
                            rate_limits=file.rate_limits if file else RateLimitConfig())


# Keys a `models.<name>` entry may carry for resilience.
MODEL_KEYS = frozenset(fields_at(ModelPolicy, ()))

FEATURE = ConfigFeature(attribute="resilience", file=ResilienceFile, model_keys=ModelPolicy,
                        load=load_resilience)

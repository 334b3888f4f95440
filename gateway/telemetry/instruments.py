"""Every metric instrument, created once from a Meter with its advised buckets.

The per-request ones (durations, tokens, chunk timings, overhead, cost, and the
next generation's usage counters) come from `HotMetrics` when one is given
(plain-dict aggregation handed to the readers at collection); otherwise, and for
the rare events, from the SDK. Which of the two GenAI generations an attempt
records into is worked out here once per operation kind (`Plan`), so the request
path only walks the tuples it is handed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from opentelemetry.context import Context
from opentelemetry.metrics import Counter, Meter

from gateway.fastpaths import HotMetrics
from gateway.telemetry import names as n
from gateway.telemetry.semconv import Semconv
from gateway.telemetry.tallies import Tallies


class Recorder(Protocol):
    """What the request path needs of a histogram (the SDK's or a HotHistogram)."""

    def record(self, amount: float, attributes: Mapping[str, Any] | None = None,
               context: Context | None = None) -> None: ...


class Adder(Protocol):
    """What the request path needs of a counter (the SDK's or a HotCounter)."""

    def add(self, amount: float, attributes: Mapping[str, Any] | None = None,
            context: Context | None = None) -> None: ...


class Setter(Protocol):
    """What the request path needs of a gauge (the API's gauge type is still private)."""

    def set(self, amount: float, attributes: Mapping[str, Any] | None = None,
            context: Context | None = None) -> None: ...


@dataclass(frozen=True, slots=True)
class UsageCounters:
    """The next generation's token counters (by gen_ai.token.modality)."""

    input: Adder
    output: Adder
    cache_read: Adder
    cache_write: Adder
    reasoning: Adder


class Plan:
    """What an attempt of one operation kind records, under the chosen generation(s)."""

    __slots__ = ("cache_write_keys", "durations", "first_chunk", "per_chunk", "record_output",
                 "record_usage", "token_histograms", "token_usage", "usage")

    def __init__(self, durations: tuple[Recorder, ...], first_chunk: tuple[Recorder, ...],
                 per_chunk: tuple[Recorder, ...], token_usage: Recorder | None,
                 usage: UsageCounters | None, record_output: bool,
                 cache_write_keys: tuple[str, ...],
                 token_histograms: tuple[Recorder, Recorder] | None = None,
                 record_usage: bool = True) -> None:
        self.durations = durations
        self.first_chunk = first_chunk
        self.per_chunk = per_chunk
        self.token_usage = token_usage  # v1.41's histogram, or None
        self.usage = usage  # the next generation's counters, or None
        self.token_histograms = token_histograms  # its (input, output) histograms, or None
        self.record_output = record_output  # embeddings have no output tokens to record
        self.cache_write_keys = cache_write_keys  # span attribute(s) for cache writes
        # Whether the span gets gen_ai.usage.* from the attempt's usage (count_tokens uses
        # none: the tokens it counts are its answer, set by the dialect, not consumed).
        self.record_usage = record_usage


@dataclass(frozen=True, slots=True)
class Instruments:
    operation_duration: Recorder
    token_usage: Recorder
    time_to_first_chunk: Recorder
    time_per_output_chunk: Recorder
    inference_duration: Recorder
    inference_time_to_first_chunk: Recorder
    inference_time_per_output_chunk: Recorder
    operation_input_tokens: Recorder
    operation_output_tokens: Recorder
    usage: UsageCounters
    cost: Adder
    unpriced_calls: Adder
    cache_savings: Adder
    overhead: Recorder
    fallbacks: Counter
    retries: Counter
    circuit_state: Setter
    rate_limited: Counter
    tallies: Tallies  # requests, tokens and in-flight, as observable series
    semconv: Semconv
    # Which plan an attempt follows is the recorder's `plan_of` (compiled, per attempt).
    inference: Plan  # chat, text_completion
    non_inference: Plan  # embeddings
    counting: Plan  # count_tokens: its duration only


def _histograms(meter: Meter, hot: HotMetrics | None) -> dict[str, Any]:
    specs = {
        "operation_duration": (n.M_OPERATION_DURATION, "s", "GenAI operation duration.",
                               n.DURATION_BUCKETS),
        "token_usage": (n.M_TOKEN_USAGE, "{token}", "Number of input and output tokens used.",
                        n.TOKEN_BUCKETS),
        "time_to_first_chunk": (
            n.M_TIME_TO_FIRST_CHUNK, "s",
            "Time to receive the first chunk in a streaming operation.", n.DURATION_BUCKETS),
        "time_per_output_chunk": (
            n.M_TIME_PER_OUTPUT_CHUNK, "s",
            "Time between consecutive chunks after the first in a streaming operation.",
            n.DURATION_BUCKETS),
        "inference_duration": (n.M_INFERENCE_DURATION, "s", "GenAI inference duration.",
                               n.DURATION_BUCKETS),
        "inference_time_to_first_chunk": (
            n.M_INFERENCE_TIME_TO_FIRST_CHUNK, "s",
            "Time to receive the first chunk in a streaming inference.", n.DURATION_BUCKETS),
        "inference_time_per_output_chunk": (
            n.M_INFERENCE_TIME_PER_OUTPUT_CHUNK, "s",
            "Time between consecutive chunks after the first in a streaming inference.",
            n.DURATION_BUCKETS),
        "operation_input_tokens": (n.M_OPERATION_INPUT_TOKENS, "{token}",
                                   "Input tokens used per inference.", n.TOKEN_BUCKETS),
        "operation_output_tokens": (n.M_OPERATION_OUTPUT_TOKENS, "{token}",
                                    "Output tokens used per inference.", n.TOKEN_BUCKETS),
        "overhead": (n.M_OVERHEAD, "s",
                     "Time spent inside the gateway, excluding waiting on the upstream.",
                     n.OVERHEAD_BUCKETS),
    }
    out: dict[str, Any] = {}
    for field, (name, unit, description, bounds) in specs.items():
        if hot is not None:
            out[field] = hot.histogram(name, unit, description, bounds)
        else:
            out[field] = meter.create_histogram(name, unit=unit, description=description,
                                                explicit_bucket_boundaries_advisory=list(bounds))
    out["cost"] = _counter(meter, hot, n.M_COST, "{USD}", "Cost of upstream calls in US dollars.")
    out["unpriced_calls"] = _counter(meter, hot, n.M_UNPRICED_CALLS, "{call}",
                                     "Upstream calls to a model with no price (no cost recorded).")
    out["cache_savings"] = _counter(
        meter, hot, n.M_CACHE_SAVINGS, "{USD}",
        "What prompt-cache reads saved against paying the full input price, in US dollars.")
    return out


def _counter(meter: Meter, hot: HotMetrics | None, name: str, unit: str,
             description: str) -> Adder:
    if hot is not None:
        return hot.counter(name, unit, description)
    counter: Adder = meter.create_counter(name, unit=unit, description=description)
    return counter


def _usage_counters(meter: Meter, hot: HotMetrics | None) -> UsageCounters:
    def make(name: str, what: str) -> Adder:
        return _counter(meter, hot, name, "{token}", what)

    return UsageCounters(
        input=make(n.M_USAGE_INPUT_TOKENS, "Input tokens used, including cached tokens."),
        output=make(n.M_USAGE_OUTPUT_TOKENS, "Output tokens used, including reasoning tokens."),
        cache_read=make(n.M_USAGE_CACHE_READ_INPUT_TOKENS,
                        "Input tokens served from a provider-managed cache."),
        cache_write=make(n.M_USAGE_CACHE_WRITE_INPUT_TOKENS,
                         "Input tokens written to a provider-managed cache."),
        reasoning=make(n.M_USAGE_REASONING_OUTPUT_TOKENS, "Output tokens used for reasoning."),
    )


def _plans(made: dict[str, Any], semconv: Semconv) -> tuple[Plan, Plan, Plan]:
    """(inference, non-inference, counting): the next generation renames the inference
    metrics only; `gen_ai.client.operation.duration` stays for the other operations
    (embeddings, count_tokens). Counting tokens uses none, so it records no token metric."""
    old, new = semconv.old, semconv.new
    cache_keys = ((n.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,) if old else ()) + (
        (n.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,) if new else ())

    def pick(old_one: Recorder, new_one: Recorder) -> tuple[Recorder, ...]:
        return ((old_one,) if old else ()) + ((new_one,) if new else ())

    inference = Plan(
        durations=pick(made["operation_duration"], made["inference_duration"]),
        first_chunk=pick(made["time_to_first_chunk"], made["inference_time_to_first_chunk"]),
        per_chunk=pick(made["time_per_output_chunk"], made["inference_time_per_output_chunk"]),
        token_usage=made["token_usage"] if old else None,
        usage=made["usage"] if new else None,
        record_output=True, cache_write_keys=cache_keys,
        token_histograms=(made["operation_input_tokens"], made["operation_output_tokens"])
        if new else None)
    other = Plan(
        durations=(made["operation_duration"],), first_chunk=(), per_chunk=(),
        token_usage=made["token_usage"] if old else None, usage=None,
        record_output=False, cache_write_keys=cache_keys)
    counting = Plan(
        durations=(made["operation_duration"],), first_chunk=(), per_chunk=(),
        token_usage=None, usage=None, record_output=False, cache_write_keys=(),
        record_usage=False)
    return inference, other, counting


def create_instruments(meter: Meter, hot: HotMetrics | None = None,
                       semconv: Semconv | None = None) -> Instruments:
    chosen = semconv if semconv is not None else Semconv()
    made = _histograms(meter, hot)
    made["usage"] = _usage_counters(meter, hot)
    inference, other, counting = _plans(made, chosen)
    return Instruments(
        **made,
        semconv=chosen,
        inference=inference,
        non_inference=other,
        counting=counting,
        fallbacks=meter.create_counter(
            n.M_FALLBACKS, unit="{fallback}", description="Fallbacks from one model to the next."
        ),
        retries=meter.create_counter(
            n.M_RETRIES, unit="{retry}", description="Retries of an upstream attempt."
        ),
        circuit_state=meter.create_gauge(
            n.M_CIRCUIT_STATE, unit="{state}",
            description="Circuit breaker state per provider and model: 0 closed, 1 half-open, 2 open.",
        ),
        rate_limited=meter.create_counter(
            n.M_RATE_LIMITED, unit="{request}", description="Requests refused by a rate limit."
        ),
        tallies=Tallies(meter),
    )

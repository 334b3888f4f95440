"""Every metric instrument, created once from a Meter with its advised buckets.

The per-request ones (durations, tokens, chunk timings, overhead, cost) come
from `HotMetrics` when one is given (plain-dict aggregation handed to the
readers at collection); otherwise, and for the rare events, from the SDK.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from opentelemetry.context import Context
from opentelemetry.metrics import Counter, Meter

from gateway.fastpaths import HotMetrics
from gateway.telemetry import names as n
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
class Instruments:
    operation_duration: Recorder
    token_usage: Recorder
    time_to_first_chunk: Recorder
    time_per_output_chunk: Recorder
    cost: Adder
    overhead: Recorder
    fallbacks: Counter
    retries: Counter
    circuit_state: Setter
    rate_limited: Counter
    tallies: Tallies  # requests, tokens and in-flight, as observable series


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
    cost = (n.M_COST, "{USD}", "Cost of upstream calls in US dollars.")
    out["cost"] = hot.counter(*cost) if hot is not None else meter.create_counter(
        cost[0], unit=cost[1], description=cost[2])
    return out


def create_instruments(meter: Meter, hot: HotMetrics | None = None) -> Instruments:
    return Instruments(
        **_histograms(meter, hot),
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

"""Every metric instrument, created once from a Meter with its advised buckets."""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.metrics import Counter, Histogram, Meter
from opentelemetry.metrics import _Gauge as Gauge

from gateway.telemetry import names as n
from gateway.telemetry.tallies import Tallies


@dataclass(frozen=True, slots=True)
class Instruments:
    operation_duration: Histogram
    token_usage: Histogram
    time_to_first_chunk: Histogram
    time_per_output_chunk: Histogram
    cost: Counter
    overhead: Histogram
    fallbacks: Counter
    retries: Counter
    circuit_state: Gauge
    rate_limited: Counter
    tallies: Tallies  # requests, tokens and in-flight, as observable series


def create_instruments(meter: Meter) -> Instruments:
    return Instruments(
        operation_duration=meter.create_histogram(
            n.M_OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=list(n.DURATION_BUCKETS),
        ),
        token_usage=meter.create_histogram(
            n.M_TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=list(n.TOKEN_BUCKETS),
        ),
        time_to_first_chunk=meter.create_histogram(
            n.M_TIME_TO_FIRST_CHUNK,
            unit="s",
            description="Time to receive the first chunk in a streaming operation.",
            explicit_bucket_boundaries_advisory=list(n.DURATION_BUCKETS),
        ),
        time_per_output_chunk=meter.create_histogram(
            n.M_TIME_PER_OUTPUT_CHUNK,
            unit="s",
            description="Time between consecutive chunks after the first in a streaming operation.",
            explicit_bucket_boundaries_advisory=list(n.DURATION_BUCKETS),
        ),
        cost=meter.create_counter(
            n.M_COST, unit="{USD}", description="Cost of upstream calls in US dollars."
        ),
        overhead=meter.create_histogram(
            n.M_OVERHEAD,
            unit="s",
            description="Time spent inside the gateway, excluding waiting on the upstream.",
            explicit_bucket_boundaries_advisory=list(n.OVERHEAD_BUCKETS),
        ),
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

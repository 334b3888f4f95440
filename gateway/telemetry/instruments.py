"""Every metric instrument, created once from a Meter with its advised buckets."""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.metrics import Counter, Histogram, Meter, UpDownCounter

from gateway.telemetry import names as n


@dataclass(frozen=True, slots=True)
class Instruments:
    operation_duration: Histogram
    token_usage: Histogram
    time_to_first_chunk: Histogram
    time_per_output_chunk: Histogram
    requests: Counter
    cost: Counter
    tokens: Counter
    overhead: Histogram
    active_requests: UpDownCounter


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
        requests=meter.create_counter(
            n.M_REQUESTS, unit="{request}", description="Client requests handled by the gateway."
        ),
        cost=meter.create_counter(
            n.M_COST, unit="{USD}", description="Cost of upstream calls in US dollars."
        ),
        tokens=meter.create_counter(
            n.M_TOKENS,
            unit="{token}",
            description="Tokens by model, provider, key and team "
            "(cache_read is part of input, reasoning part of output).",
        ),
        overhead=meter.create_histogram(
            n.M_OVERHEAD,
            unit="s",
            description="Time spent inside the gateway, excluding waiting on the upstream.",
            explicit_bucket_boundaries_advisory=list(n.OVERHEAD_BUCKETS),
        ),
        active_requests=meter.create_up_down_counter(
            n.M_ACTIVE_REQUESTS, unit="{request}", description="Requests in flight."
        ),
    )

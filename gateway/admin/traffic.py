"""Traffic over the last hour and day, per minute, in this process's memory: request
and error counts, latency and time-to-first-chunk histograms (the telemetry
contract's duration buckets, so percentiles cost no per-request sorting), and
tokens and cost per served model. Pure: no clock of its own, no I/O.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# The telemetry contract's duration buckets (seconds); the last bucket is open-ended.
BOUNDS: tuple[float, ...] = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12,
                             10.24, 20.48, 40.96, 81.92)
KEEP_MINUTES = 24 * 60
RANGES = {"hour": (60, 1), "day": (KEEP_MINUTES, 30)}  # minutes shown, minutes per point


@dataclass
class ModelUse:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


@dataclass
class Bucket:
    minute: int
    requests: int = 0
    errors: int = 0
    latency: list[int] = field(default_factory=lambda: [0] * (len(BOUNDS) + 1))
    first_chunk: list[int] = field(default_factory=lambda: [0] * (len(BOUNDS) + 1))
    models: dict[str, ModelUse] = field(default_factory=dict)

    def merge(self, other: Bucket) -> None:
        self.requests += other.requests
        self.errors += other.errors
        for mine, theirs in ((self.latency, other.latency), (self.first_chunk, other.first_chunk)):
            for i, count in enumerate(theirs):
                mine[i] += count
        for name, use in other.models.items():
            total = self.models.setdefault(name, ModelUse())
            total.requests += use.requests
            total.input_tokens += use.input_tokens
            total.output_tokens += use.output_tokens
            total.cost_usd += use.cost_usd


def percentile(histogram: Sequence[int], q: float) -> float | None:
    """The q-quantile of a bucketed histogram, interpolated linearly inside its bucket."""
    total = sum(histogram)
    if not total:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(histogram):
        if count and seen + count >= rank:
            low = BOUNDS[i - 1] if i else 0.0
            high = BOUNDS[i] if i < len(BOUNDS) else BOUNDS[-1] * 2
            return round(low + (high - low) * (rank - seen) / count, 6)
        seen += count
    return BOUNDS[-1]


class Traffic:
    """Per-minute buckets for the last day; older ones are dropped as new ones open."""

    def __init__(self) -> None:
        self._buckets: dict[int, Bucket] = {}

    def add(self, call: Mapping[str, Any]) -> None:
        minute = int(call["ts"] // 60)
        bucket = self._buckets.get(minute)
        if bucket is None:
            bucket = self._buckets[minute] = Bucket(minute)
            self._expire(minute)
        bucket.requests += 1
        if call["status"] >= 400:
            bucket.errors += 1
        bucket.latency[bisect.bisect_left(BOUNDS, call["latency_s"])] += 1
        first = call.get("time_to_first_chunk_s")
        if first is not None:
            bucket.first_chunk[bisect.bisect_left(BOUNDS, first)] += 1
        model = call.get("model_served") or call["model_requested"]
        use = bucket.models.get(model)
        if use is None:
            use = bucket.models[model] = ModelUse()
        use.requests += 1
        use.input_tokens += call["input_tokens"]
        use.output_tokens += call["output_tokens"]
        use.cost_usd += call["cost_usd"]

    def _expire(self, now_minute: int) -> None:
        oldest = now_minute - KEEP_MINUTES
        for minute in [m for m in self._buckets if m <= oldest]:
            del self._buckets[minute]

    def series(self, span: str, now: float) -> dict[str, Any]:
        """Points over the last hour (one a minute) or day (one per 30 minutes), oldest
        first, each with rate, error ratio, p50/p95 latency and first chunk, and per model
        tokens and cost."""
        minutes, step = RANGES[span]
        last = int(now // 60)
        first = last - minutes + 1
        points = []
        for start in range(first, last + 1, step):
            point = Bucket(start)
            for minute in range(start, start + step):
                found = self._buckets.get(minute)
                if found is not None:
                    point.merge(found)
            points.append(_point(point, step))
        return {"range": span, "step_s": step * 60, "points": points}


def _point(bucket: Bucket, step: int) -> dict[str, Any]:
    return {
        "ts": bucket.minute * 60,
        "requests": bucket.requests,
        "rate_per_s": round(bucket.requests / (step * 60), 6),
        "errors": bucket.errors,
        "error_ratio": round(bucket.errors / bucket.requests, 6) if bucket.requests else 0.0,
        "latency_p50_s": percentile(bucket.latency, 0.5),
        "latency_p95_s": percentile(bucket.latency, 0.95),
        "first_chunk_p50_s": percentile(bucket.first_chunk, 0.5),
        "first_chunk_p95_s": percentile(bucket.first_chunk, 0.95),
        "models": {name: {"requests": u.requests, "input_tokens": u.input_tokens,
                          "output_tokens": u.output_tokens, "cost_usd": round(u.cost_usd, 9)}
                   for name, u in sorted(bucket.models.items())},
    }

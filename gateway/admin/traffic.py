"""Traffic over the last 15 minutes, hour and day, in this process's memory: request
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
# range -> (tier, points, buckets per point)
RANGES = {"15m": ("fine", 90, 1), "hour": ("minutes", 60, 1), "day": ("minutes", 48, 30)}


@dataclass
class ModelUse:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


@dataclass
class Bucket:
    start: int  # Unix seconds
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


class Tier:
    """Buckets `width_s` wide for the last `keep` of them; older ones are dropped as new
    ones open."""

    def __init__(self, width_s: int, keep: int) -> None:
        self.width_s = width_s
        self.keep = keep
        self.buckets: dict[int, Bucket] = {}

    def bucket(self, ts: float) -> Bucket:
        slot = int(ts // self.width_s)
        found = self.buckets.get(slot)
        if found is None:
            found = self.buckets[slot] = Bucket(slot * self.width_s)
            oldest = slot - self.keep
            for old in [s for s in self.buckets if s <= oldest]:
                del self.buckets[old]
        return found

    def points(self, count: int, per_point: int, now: float) -> list[Bucket]:
        last = int(now // self.width_s)
        first = last - count * per_point + 1
        merged = []
        for start in range(first, last + 1, per_point):
            point = Bucket(start * self.width_s)
            for slot in range(start, start + per_point):
                found = self.buckets.get(slot)
                if found is not None:
                    point.merge(found)
            merged.append(point)
        return merged


class Traffic:
    """10-second buckets for the last 15 minutes and minute buckets for the last day."""

    def __init__(self) -> None:
        self.fine = Tier(10, 90)
        self.minutes = Tier(60, KEEP_MINUTES)

    def add(self, call: Mapping[str, Any]) -> None:
        for tier in (self.fine, self.minutes):
            _count(tier.bucket(call["ts"]), call)

    def series(self, span: str, now: float) -> dict[str, Any]:
        """Points over the last 15 minutes (one per 10 s), hour (one a minute) or day (one
        per 30 minutes), oldest first, each with rate, error ratio, p50/p95 latency and
        first chunk, and per model tokens and cost."""
        tier_name, count, per_point = RANGES[span]
        tier = self.fine if tier_name == "fine" else self.minutes
        step_s = tier.width_s * per_point
        return {"range": span, "step_s": step_s,
                "points": [_point(b, step_s) for b in tier.points(count, per_point, now)]}


def _count(bucket: Bucket, call: Mapping[str, Any]) -> None:
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


def _point(bucket: Bucket, step_s: int) -> dict[str, Any]:
    return {
        "ts": bucket.start,
        "requests": bucket.requests,
        "rate_per_s": round(bucket.requests / step_s, 6),
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

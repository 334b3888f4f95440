"""The per-request histograms and the cost counter, aggregated in plain dicts.

A synchronous SDK instrument costs every measurement a `Measurement` object,
attribute cleaning and recursive hashing, and an aggregation plus an exemplar
offer per metric reader: 10-15 µs with the two readers a gateway exporting
OTLP has, times five per request and once per streamed chunk. Here a
measurement is one frozenset key, one bisect and a few additions under a lock
(2-3 µs); the series are handed to every metric reader at collection time, as
the same `Metric` data the SDK would have produced (cumulative, explicit
buckets, min/max, one exemplar per bucket from the sampled span of the
measurement's context), so the Prometheus text and OTLP output do not change.

Each reader gets its own exemplars: those recorded since that reader's last
collection, as the SDK's per-reader reservoirs would give it.

Used only where the readers want what this produces: cumulative temporality
and explicit-bucket histograms (`fits` checks the OTLP exporter's
variables); otherwise the gateway keeps the SDK instruments.
"""

from __future__ import annotations

import math
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.metrics import Exemplar
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricReader,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from gateway.fastpaths.litespan import span_context_in

TRACE_BASED, ALWAYS_ON, ALWAYS_OFF = "trace_based", "always_on", "always_off"

# An exemplar: value, time, span id, trace id (ids 0 when recorded outside a span).
_Sample = tuple[float, int, int, int]
# Builds a measurement's attributes from its key (record_keyed, add_keyed).
MakeAttributes = Callable[[tuple[Any, ...]], Mapping[str, Any]]
_MAX_KEYED = 4096  # keys remembered per instrument before the index starts over


def fits(environ: Mapping[str, str]) -> bool:
    """Whether the readers setup_telemetry builds want cumulative explicit-bucket data."""
    temporality = environ.get("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "cumulative")
    aggregation = environ.get("OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
                              "explicit_bucket_histogram")
    return (temporality.strip().lower() == "cumulative"
            and aggregation.strip().lower() == "explicit_bucket_histogram")


def exemplar_filter(environ: Mapping[str, str]) -> str:
    value = environ.get("OTEL_METRICS_EXEMPLAR_FILTER", TRACE_BASED).strip().lower()
    return value if value in (TRACE_BASED, ALWAYS_ON, ALWAYS_OFF) else TRACE_BASED


# The span ids of the last explicit context seen: a request records several measurements
# in a row under one context (duration and tokens under the CLIENT span's, then overhead
# and cost under the SERVER span's), so most lookups are answered here. Holding the
# context itself keeps identity comparison sound.
_last_ids: tuple[Context | None, int, int, bool] = (None, 0, 0, False)


def _span_ids(context: Context | None) -> tuple[Context | None, int, int, bool]:
    """(context, span id, trace id, whether the span is valid and sampled)."""
    global _last_ids
    last = _last_ids
    if context is not None and last[0] is context:
        return last
    span_context = span_context_in(context)
    ids = (context, span_context.span_id, span_context.trace_id,
           span_context.is_valid and bool(span_context.trace_flags.sampled))
    if context is not None:
        _last_ids = ids
    return ids


def _measurable(amount: float) -> bool:
    """What the SDK records: not negative, NaN or infinite."""
    return amount >= 0 and amount != math.inf


def _remember(index: dict[tuple[Any, ...], Any], key: tuple[Any, ...], series: Any) -> Any:
    """`series` under `key` in a keyed index, which starts over past _MAX_KEYED keys."""
    if len(index) >= _MAX_KEYED:
        index.clear()
    index[key] = series
    return series


def _sample(value: float, context: Context | None, mode: str) -> _Sample | None:
    """The exemplar a measurement leaves, under the exemplar filter `mode`."""
    if mode == ALWAYS_OFF:
        return None
    _, span_id, trace_id, sampled = _span_ids(context)
    if sampled:
        return (value, time.time_ns(), span_id, trace_id)
    if mode == ALWAYS_ON:
        return (value, time.time_ns(), 0, 0)
    return None


class _Series:
    __slots__ = ("attributes", "counts", "exemplars", "max", "min", "start", "sum")

    def __init__(self, attributes: Mapping[str, Any], buckets: int) -> None:
        self.attributes = dict(attributes)
        self.start = time.time_ns()
        self.counts = [0] * buckets
        self.exemplars: list[_Sample | None] = [None] * buckets
        self.sum: int | float = 0  # an int while the measurements are, as in the SDK
        self.min = math.inf
        self.max = -math.inf

    def add(self, index: int, amount: float, sample: _Sample | None) -> None:
        """One measurement in bucket `index` (the caller holds the histogram's lock)."""
        self.counts[index] += 1
        self.sum += amount
        if amount < self.min:
            self.min = amount
        if amount > self.max:
            self.max = amount
        if sample is not None:
            self.exemplars[index] = sample

    def merge(self, counts: list[int], total: float, low: float, high: float) -> None:
        """Measurements summed up elsewhere (the caller holds the histogram's lock)."""
        mine = self.counts
        for index, count in enumerate(counts):
            if count:
                mine[index] += count
        self.sum += total
        self.min = min(self.min, low)
        self.max = max(self.max, high)


class HotHistogram:
    """An explicit-bucket histogram with the SDK Histogram's `record` signature."""

    def __init__(self, name: str, unit: str, description: str, bounds: Sequence[float],
                 exemplars: str = TRACE_BASED) -> None:
        self.name, self.unit, self.description = name, unit, description
        self.bounds = tuple(bounds)  # as given: the Prometheus `le` label prints ints as ints
        self._series: dict[frozenset[tuple[str, Any]], _Series] = {}
        self._keyed: dict[tuple[Any, ...], _Series] = {}  # record_keyed's index into _series
        self._lock = threading.Lock()
        self._exemplars = exemplars

    def record(self, amount: float, attributes: Mapping[str, Any] | None = None,
               context: Context | None = None) -> None:
        if _measurable(amount):
            self._add(self._series_for(attributes or {}), amount, context)

    def record_keyed(self, amount: float, key: tuple[Any, ...], make_attributes: MakeAttributes,
                     context: Context | None = None) -> None:
        """`record(amount, make_attributes(key), context)`, with the series found by `key`
        (a plain tuple, cheap to hash) once it exists: no attribute dict and no frozenset
        per measurement. `key` must determine the attributes; the cache is bounded."""
        if _measurable(amount):
            series = self._keyed.get(key)
            if series is None:
                series = _remember(self._keyed, key, self._series_for(make_attributes(key)))
            self._add(series, amount, context)

    def _add(self, series: _Series, amount: float, context: Context | None) -> None:
        index = bisect_left(self.bounds, amount)
        sample = _sample(amount, context, self._exemplars)
        with self._lock:
            series.add(index, amount, sample)

    def _series_for(self, attributes: Mapping[str, Any]) -> _Series:
        key = frozenset(attributes.items())
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = _Series(attributes, len(self.bounds) + 1)
        return series

    def record_many(self, amounts: Sequence[float], attributes: Mapping[str, Any],
                    context: Context | None = None) -> None:
        """`record` of each amount into one series under one context (a stream's chunk
        timings, gathered while it ran), summed up first and merged into the series once:
        one series lookup, clock read and lock for all of them. Each bucket's exemplar is
        its last amount, stamped now."""
        bounds = self.bounds
        counts = [0] * (len(bounds) + 1)
        last: dict[int, float] = {}
        total = 0.0
        low, high = math.inf, -math.inf
        for amount in amounts:
            if not _measurable(amount):
                continue
            index = bisect_left(bounds, amount)
            counts[index] += 1
            last[index] = amount
            total += amount
            low = min(low, amount)
            high = max(high, amount)
        if not last:
            return
        series = self._series_for(attributes)
        ids = _sample(0.0, context, self._exemplars)
        with self._lock:
            series.merge(counts, total, low, high)
            if ids is not None:
                for index, amount in last.items():
                    series.exemplars[index] = (amount, ids[1], ids[2], ids[3])

    def collect(self, now: int, since: int) -> Metric | None:
        with self._lock:
            rows = [(s.attributes, s.start, tuple(s.counts), s.sum, s.min, s.max,
                     [e for e in s.exemplars if e is not None and e[1] > since])
                    for s in self._series.values()]
        if not rows:
            return None
        points = [HistogramDataPoint(
            attributes=attrs, start_time_unix_nano=start, time_unix_nano=now, count=sum(counts),
            sum=total, bucket_counts=counts, explicit_bounds=self.bounds, min=low, max=high,
            exemplars=[_exemplar(e) for e in samples])
            for attrs, start, counts, total, low, high, samples in rows]
        return Metric(self.name, self.description, self.unit,
                      Histogram(points, AggregationTemporality.CUMULATIVE))


class HotCounter:
    """A monotonic sum with the SDK Counter's `add` signature (latest exemplar kept)."""

    def __init__(self, name: str, unit: str, description: str,
                 exemplars: str = TRACE_BASED) -> None:
        self.name, self.unit, self.description = name, unit, description
        self._series: dict[frozenset[tuple[str, Any]], list[Any]] = {}
        self._keyed: dict[tuple[Any, ...], list[Any]] = {}
        self._lock = threading.Lock()
        self._exemplars = exemplars

    def add(self, amount: float, attributes: Mapping[str, Any] | None = None,
            context: Context | None = None) -> None:
        if _measurable(amount):
            self._add(self._series_for(attributes or {}), amount, context)

    def add_keyed(self, amount: float, key: tuple[Any, ...], make_attributes: MakeAttributes,
                  context: Context | None = None) -> None:
        """`add(amount, make_attributes(key), context)`, found by `key` (see
        HotHistogram.record_keyed)."""
        if _measurable(amount):
            series = self._keyed.get(key)
            if series is None:
                series = _remember(self._keyed, key, self._series_for(make_attributes(key)))
            self._add(series, amount, context)

    def _add(self, series: list[Any], amount: float, context: Context | None) -> None:
        sample = _sample(amount, context, self._exemplars)
        with self._lock:
            series[2] += amount
            if sample is not None:
                series[3] = sample

    def _series_for(self, attributes: Mapping[str, Any]) -> list[Any]:
        """[attributes, start time, value, latest exemplar]."""
        key = frozenset(attributes.items())
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = [dict(attributes), time.time_ns(), 0, None]
        return series

    def collect(self, now: int, since: int) -> Metric | None:
        with self._lock:
            rows = [list(s) for s in self._series.values()]
        if not rows:
            return None
        points = [NumberDataPoint(
            attributes=attrs, start_time_unix_nano=start, time_unix_nano=now, value=value,
            exemplars=[_exemplar(sample)] if sample is not None and sample[1] > since else [])
            for attrs, start, value, sample in rows]
        return Metric(self.name, self.description, self.unit,
                      Sum(points, AggregationTemporality.CUMULATIVE, is_monotonic=True))


def record_keyed(histogram: Any, amount: float, key: tuple[Any, ...],
                 make_attributes: MakeAttributes, context: Context | None = None) -> None:
    """A measurement by key on a HotHistogram, or by attributes on an SDK histogram."""
    if type(histogram) is HotHistogram:
        histogram.record_keyed(amount, key, make_attributes, context)
    else:
        histogram.record(amount, make_attributes(key), context=context)


def add_keyed(counter: Any, amount: float, key: tuple[Any, ...],
              make_attributes: MakeAttributes, context: Context | None = None) -> None:
    """An addition by key on a HotCounter, or by attributes on an SDK counter."""
    if type(counter) is HotCounter:
        counter.add_keyed(amount, key, make_attributes, context)
    else:
        counter.add(amount, make_attributes(key), context=context)


def record_many(histogram: Any, amounts: Sequence[float], attributes: Mapping[str, Any],
                context: Context | None = None) -> None:
    """Several measurements of one series and context (a stream's chunk timings), on a
    HotHistogram or an SDK histogram."""
    if type(histogram) is HotHistogram:
        histogram.record_many(amounts, attributes, context)
        return
    for amount in amounts:
        histogram.record(amount, attributes, context=context)


def _exemplar(sample: _Sample) -> Exemplar:
    value, at, span_id, trace_id = sample
    return Exemplar({}, value, at, span_id or None, trace_id or None)


class HotMetrics:
    """The hot instruments of one meter, appended to what its readers collect."""

    def __init__(self, scope: InstrumentationScope, resource: Resource,
                 exemplars: str = TRACE_BASED) -> None:
        self.scope = scope
        self.resource = resource
        self.exemplars = exemplars
        self.instruments: list[HotHistogram | HotCounter] = []

    def histogram(self, name: str, unit: str, description: str,
                  bounds: Sequence[float]) -> HotHistogram:
        instrument = HotHistogram(name, unit, description, bounds, self.exemplars)
        self.instruments.append(instrument)
        return instrument

    def counter(self, name: str, unit: str, description: str) -> HotCounter:
        instrument = HotCounter(name, unit, description, self.exemplars)
        self.instruments.append(instrument)
        return instrument

    def collect(self, since: int) -> list[Metric]:
        now = time.time_ns()
        found = (instrument.collect(now, since) for instrument in self.instruments)
        return [metric for metric in found if metric is not None]

    def attach(self, reader: MetricReader) -> None:
        """Make every collection of `reader` carry these instruments' series too."""
        receive = reader._receive_metrics
        last = [0]  # this reader's previous collection: exemplars after it are new

        def receive_with_hot(metrics_data: MetricsData, *args: Any, **kwargs: Any) -> None:
            now = time.time_ns()
            extra = self.collect(last[0])
            last[0] = now
            receive(self.merge(metrics_data, extra), *args, **kwargs)

        reader._receive_metrics = receive_with_hot  # type: ignore[method-assign]

    def merge(self, metrics_data: MetricsData | None, extra: list[Metric]) -> MetricsData:
        """`metrics_data` with `extra` added to this meter's scope (created if absent)."""
        resource_metrics = list(metrics_data.resource_metrics) if metrics_data else []
        if not extra:
            return MetricsData(resource_metrics)
        for i, rm in enumerate(resource_metrics):
            for j, sm in enumerate(rm.scope_metrics):
                if sm.scope == self.scope:
                    scopes = list(rm.scope_metrics)
                    scopes[j] = ScopeMetrics(sm.scope, [*sm.metrics, *extra], sm.schema_url)
                    resource_metrics[i] = ResourceMetrics(rm.resource, scopes, rm.schema_url)
                    return MetricsData(resource_metrics)
        scope_metrics = ScopeMetrics(self.scope, extra, self.scope.schema_url or "")
        if resource_metrics:
            rm = resource_metrics[0]
            resource_metrics[0] = ResourceMetrics(rm.resource, [*rm.scope_metrics, scope_metrics],
                                                  rm.schema_url)
        else:
            resource_metrics.append(ResourceMetrics(self.resource, [scope_metrics],
                                                    self.resource.schema_url))
        return MetricsData(resource_metrics)

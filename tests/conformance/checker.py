"""A small conformance checker: emitted spans and metrics against the GenAI semantic
conventions' YAML model (semconv/*.yaml, transcribed from the upstream models with
their commits), in the spirit of weaver's registry live-check.

`Model.load(*generations)` reads the registry, the span types and the generation's
attribute groups and metrics, resolving `ref_group`s as weaver does (a later `ref`
of the same attribute overrides its requirement level). `span_problems` and
`metric_problems` return what breaks the model: an attribute outside the registry
or not defined for the span type or metric, a deprecated or renamed one, a value of
the wrong type, a required attribute missing, a conditionally required one missing
where its condition can be checked mechanically, a metric name, instrument or unit
that the generation does not define. `missing_recommended` lists the recommended
attributes a span lacks, for tests to compare with what the gateway knowingly omits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from opentelemetry.sdk.metrics.export import Histogram, Metric, Sum
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

MODEL_DIR = Path(__file__).parent / "semconv"
GENERATIONS = ("v1.41", "latest")
OWN_NAMESPACE = "gateway."
REQUIRED, CONDITIONAL, RECOMMENDED, OPT_IN = ("required", "conditionally_required",
                                              "recommended", "opt_in")

# Conditions of `conditionally_required` attributes that can be decided from the emitted
# data itself; the others ("if available", "if applicable") cannot and are not checked.
_Condition = Callable[[Mapping[str, Any], bool], bool]  # (attributes, is an error) -> required
CONDITIONS: dict[str, _Condition] = {
    "server.port": lambda attrs, error: "server.address" in attrs,
    "error.type": lambda attrs, error: error,
    "gen_ai.request.model": lambda attrs, error: True,  # the gateway always knows it
    "http.route": lambda attrs, error: True,  # every proxied route has one
    "http.response.status_code": lambda attrs, error: True,  # the gateway always answers
}


@dataclass
class Definition:
    """A span type or a metric: its attributes with their requirement levels."""

    name: str
    attributes: dict[str, str]
    kind: str = ""  # span kind, or the metric's instrument
    unit: str = ""
    operations: tuple[str, ...] | None = None  # gen_ai.operation.name values it covers


@dataclass
class Model:
    generations: tuple[str, ...]
    types: dict[str, str] = field(default_factory=dict)  # attribute -> type
    forbidden: dict[str, str] = field(default_factory=dict)  # attribute -> what replaced it
    removed_metrics: dict[str, str] = field(default_factory=dict)
    spans: dict[str, Definition] = field(default_factory=dict)
    metrics: dict[str, Definition] = field(default_factory=dict)

    @classmethod
    def load(cls, *generations: str) -> Model:
        """The model of one generation, or of several at once (what `/dup` emits)."""
        model = cls(generations)
        registry = _read("registry.yaml")
        groups: dict[str, list[dict[str, Any]]] = {}
        docs = [registry, _read("spans.yaml")]
        docs += [_read(f"generation-{g}.yaml") for g in generations]
        for doc in docs:
            for attribute in doc.get("attributes", []):
                model.types[attribute["key"]] = attribute["type"]
            for group in doc.get("attribute_groups", []):
                groups.setdefault(group["id"], []).extend(group["attributes"])
        for entry in registry.get("deprecated", []):
            model.forbidden[entry["key"]] = entry["renamed_to"]
        if len(generations) == 1:  # under /dup both generations' names are expected
            for generation in generations:
                for entry in _read(f"generation-{generation}.yaml").get("removed", []):
                    if "key" in entry:
                        model.forbidden[entry["key"]] = entry["renamed_to"]
                    else:
                        model.removed_metrics[entry["metric"]] = entry["renamed_to"]
        for span in _read("spans.yaml")["spans"]:
            model.spans[span["type"]] = Definition(
                span["type"], _resolve(span["attributes"], groups), span["kind"],
                operations=_operations(span))
        for doc in docs[2:]:
            for metric in doc.get("metrics", []):
                found = model.metrics.get(metric["name"])
                operations = _operations(metric)
                if found is not None and found.operations is not None and operations is not None:
                    operations = tuple(sorted({*found.operations, *operations}))
                elif found is not None:
                    operations = None
                model.metrics[metric["name"]] = Definition(
                    metric["name"], _resolve(metric["attributes"], groups),
                    metric["instrument"], metric["unit"], operations)
        return model

    # --- spans -------------------------------------------------------------------------

    def span_type(self, span: ReadableSpan) -> Definition:
        attrs = span.attributes or {}
        if span.kind is SpanKind.SERVER:
            return self.spans["http.server"]
        operation = attrs.get("gen_ai.operation.name")
        for definition in self.spans.values():
            if definition.operations and operation in definition.operations:
                return definition
        raise AssertionError(f"{span.name}: no span type for operation {operation!r}")

    def span_problems(self, span: ReadableSpan) -> list[str]:
        definition = self.span_type(span)
        attrs = dict(span.attributes or {})
        error = span.status.status_code is StatusCode.ERROR
        where = f"{definition.name} span {span.name!r}"
        kind = SpanKind.SERVER if definition.kind == "server" else SpanKind.CLIENT
        problems = [] if span.kind is kind else [f"{where}: kind {span.kind} is not {kind}"]
        problems += self._attribute_problems(where, attrs, definition)
        problems += _missing(where, attrs, definition, error)
        return problems

    def missing_recommended(self, span: ReadableSpan) -> set[str]:
        definition = self.span_type(span)
        attrs = span.attributes or {}
        return {key for key, level in definition.attributes.items()
                if level == RECOMMENDED and key not in attrs}

    # --- metrics -------------------------------------------------------------------------

    def metric_problems(self, metric: Metric) -> list[str]:
        if not metric.name.startswith("gen_ai."):
            return []
        definition = self.metrics.get(metric.name)
        if definition is None:
            hint = self.removed_metrics.get(metric.name)
            return [f"metric {metric.name} is not in {'+'.join(self.generations)}"
                    + (f" (renamed to {hint})" if hint else "")]
        where = f"metric {metric.name}"
        problems = []
        instrument = _instrument(metric)
        if instrument != definition.kind:
            problems.append(f"{where}: a {instrument}, the conventions say {definition.kind}")
        if metric.unit != definition.unit:
            problems.append(f"{where}: unit {metric.unit!r}, the conventions say {definition.unit!r}")
        for point in metric.data.data_points:
            attrs = dict(point.attributes or {})
            operation = attrs.get("gen_ai.operation.name")
            if definition.operations is not None and operation not in definition.operations:
                problems.append(f"{where}: recorded for operation {operation!r}, defined for "
                                f"{', '.join(definition.operations)}")
            problems += self._attribute_problems(where, attrs, definition)
            problems += _missing(where, attrs, definition, "error.type" in attrs)
        return problems

    def _attribute_problems(self, where: str, attrs: Mapping[str, Any],
                            definition: Definition) -> list[str]:
        problems = []
        for key, value in attrs.items():
            if key.startswith(OWN_NAMESPACE):
                continue
            if key in self.forbidden:
                problems.append(f"{where}: {key} is deprecated or renamed, use "
                                f"{self.forbidden[key]}")
            elif key not in self.types:
                problems.append(f"{where}: {key} is not in the conventions' registry")
            elif key not in definition.attributes:
                problems.append(f"{where}: {key} is not defined for it")
            elif not _has_type(value, self.types[key]):
                problems.append(f"{where}: {key}={value!r} is not of type {self.types[key]}")
        return problems


def problems_of(model: Model, spans: Iterable[ReadableSpan],
                metrics: Iterable[Metric]) -> list[str]:
    """Every problem of every span and metric, sorted and deduplicated."""
    found: set[str] = set()
    for span in spans:
        found.update(model.span_problems(span))
    for metric in metrics:
        found.update(model.metric_problems(metric))
    return sorted(found)


def _missing(where: str, attrs: Mapping[str, Any], definition: Definition,
             error: bool) -> list[str]:
    problems = []
    for key, level in definition.attributes.items():
        if key in attrs:
            continue
        condition = CONDITIONS.get(key)
        if level == REQUIRED or (level == CONDITIONAL and condition and condition(attrs, error)):
            problems.append(f"{where}: {level} attribute {key} is missing")
    return problems


def _read(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((MODEL_DIR / name).read_text(encoding="utf-8"))
    return loaded


def _operations(entry: Mapping[str, Any]) -> tuple[str, ...] | None:
    operations = entry.get("operations")
    return None if operations is None else tuple(operations)


def _level(entry: Mapping[str, Any]) -> str | None:
    level = entry.get("requirement_level")
    if level is None or isinstance(level, str):
        return level
    (name,) = level  # {conditionally_required: "..."} or {recommended: "..."}
    return str(name)


def _resolve(entries: Iterable[Mapping[str, Any]], groups: Mapping[str, list[Any]],
             into: dict[str, str] | None = None) -> dict[str, str]:
    """attribute -> requirement level, `ref_group`s expanded depth-first in order."""
    out: dict[str, str] = {} if into is None else into
    for entry in entries:
        if "ref_group" in entry:
            _resolve(groups[entry["ref_group"]], groups, out)
            continue
        level = _level(entry)
        if level is not None or entry["ref"] not in out:
            out[entry["ref"]] = level or RECOMMENDED
    return out


def _instrument(metric: Metric) -> str:
    if isinstance(metric.data, Histogram):
        return "histogram"
    if isinstance(metric.data, Sum):
        return "counter" if metric.data.is_monotonic else "updowncounter"
    return "gauge"


def _has_type(value: Any, kind: str) -> bool:
    if kind == "any":
        return True
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "double":  # an integral double is often sent as an int (JSON `1`)
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "string[]":
        return isinstance(value, tuple | list) and all(isinstance(v, str) for v in value)
    raise AssertionError(f"unknown attribute type {kind!r} in the model")

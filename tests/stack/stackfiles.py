"""Where the stack's files are and how to read the queries in them.

Shared by the structural tests and the live Prometheus test: loaders for the
shipped YAML/JSON, iteration over dashboard panels and alert rules, and small
PromQL helpers (metric names, selectors, the threshold of an alert).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
DATASOURCE_FILES = sorted((ROOT / "grafana" / "provisioning" / "datasources").glob("*.y*ml"))
RULE_FILES = sorted((ROOT / "prometheus" / "rules").glob("*.yml"))
RULE_TEST_FILES = sorted((ROOT / "prometheus" / "rules" / "tests").glob("*.yml"))

YAML_FILES = [
    ROOT / "otel-collector.yaml",
    ROOT / "prometheus.yml",
    ROOT / "prometheus-direct.yml",
    ROOT / "tempo.yaml",
    ROOT / "alertmanager.yml",
    ROOT / "docker-compose.yml",
    *sorted((ROOT / "grafana" / "provisioning").rglob("*.y*ml")),
    *RULE_FILES,
    *RULE_TEST_FILES,
]

# Counters and the counter parts of classic histograms.
COUNTER_SUFFIXES = ("_total", "_bucket", "_sum", "_count")
SELECTOR = re.compile(r"(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{(?P<matchers>[^}]*)\}")
# Identifiers that are metric names of this stack (not functions or labels).
METRIC_NAME = re.compile(r"\b(?:gateway|gen_ai|traces|tempo|otelcol)_[a-zA-Z0-9_:]+\b")
PROMQL_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})


def load_yaml(path: Path) -> Any:
    """Parse one YAML file."""
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def load_json(path: Path) -> Any:
    """Parse one JSON file."""
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


def iter_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Yield every panel, including those nested in collapsed rows."""
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels", []))


def dashboard_targets(dashboard: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (panel title, target) for every query target of a dashboard."""
    for panel in iter_panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            yield panel.get("title", "?"), target


def target_uid(panel: dict[str, Any], target: dict[str, Any]) -> str:
    """The datasource uid a target runs against (its own, else its panel's)."""
    datasource = target.get("datasource") or panel.get("datasource") or {}
    return str(datasource.get("uid", ""))


def provisioned_datasources() -> dict[str, dict[str, Any]]:
    """Every provisioned datasource by uid."""
    found: dict[str, dict[str, Any]] = {}
    for path in DATASOURCE_FILES:
        for datasource in load_yaml(path).get("datasources", []):
            found[datasource["uid"]] = datasource
    return found


def promql_exprs() -> Iterator[tuple[str, str]]:
    """Yield (where, PromQL) for every dashboard Prometheus target and variable."""
    for path in DASHBOARDS:
        dashboard = load_json(path)
        uids = provisioned_datasources()
        for panel in iter_panels(dashboard["panels"]):
            for target in panel.get("targets", []):
                uid = target_uid(panel, target)
                if uids.get(uid, {}).get("type") == "prometheus":
                    yield f"{path.name}: {panel.get('title')} / {target['refId']}", target["expr"]


def alert_rules() -> Iterator[dict[str, Any]]:
    """Yield every alerting rule of the shipped rule files."""
    for path in RULE_FILES:
        for group in load_yaml(path)["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    yield rule


def raw_counter_uses(expr: str) -> list[str]:
    """Counter selectors in `expr` that are not the direct argument of rate()/increase()."""
    bad = []
    for match in SELECTOR.finditer(expr):
        if not match.group("name").endswith(COUNTER_SUFFIXES):
            continue
        before = expr[: match.start()].rstrip()
        after = expr[match.end() :].lstrip()
        if not re.search(r"\b(rate|irate|increase)\($", before) or not after.startswith("["):
            bad.append(match.group(0))
    return bad


def bare_metric_names(expr: str) -> list[str]:
    """Metric names in `expr` used without a {...} matcher list (so without a job filter)."""
    stripped = re.sub(r"\{[^}]*\}", "{}", expr)
    stripped = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", stripped)
    return [m.group(0) for m in METRIC_NAME.finditer(stripped) if not stripped[m.end() :].startswith("{")]


def metric_names(expr: str) -> set[str]:
    """The stack's metric names an expression reads (label names excluded)."""
    stripped = re.sub(r"\{[^}]*\}", "{}", expr)
    stripped = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", stripped)
    return set(METRIC_NAME.findall(stripped)) | {
        m.group("name") for m in SELECTOR.finditer(expr) if m.group("name") not in PROMQL_KEYWORDS
    }


def matcher_labels(expr: str) -> dict[str, set[str]]:
    """For each metric selector, the label names its matchers use."""
    found: dict[str, set[str]] = {}
    for match in SELECTOR.finditer(expr):
        labels = set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", match.group("matchers")))
        found.setdefault(match.group("name"), set()).update(labels)
    return found


THRESHOLD = re.compile(r"(?s)(?P<lhs>.+?)\s(?P<op>>=|<=|==|!=|>|<)\s*(?P<value>[0-9.]+)\s*")


def split_threshold(expr: str) -> tuple[str, str, float] | None:
    """Split an alert expr `<query> <op> <number>` into its parts (None if not of that form)."""
    match = THRESHOLD.fullmatch(expr)
    if match is None:
        return None
    return match["lhs"].strip(), match["op"], float(match["value"])


def documented_series() -> dict[str, str]:
    """Series names from docs/metrics.md (the naming contract), each with its table row.

    Rows whose label column says "same" or "as above" / "as <series>" get the
    referenced row appended, so a row's text lists every label it has.
    """
    rows: dict[str, str] = {}
    previous = ""
    for line in (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8").splitlines():
        match = re.match(r"\|\s*`(?P<name>[a-z_]+?)(?:_\{(?P<parts>[a-z,]+)\})?`", line)
        if match is None:
            continue
        cells = [cell.strip() for cell in line.split("|")]
        labels = cells[3] if len(cells) > 3 else ""
        text = line
        if re.search(r"\bsame\b|\bas above\b", labels):
            text += " " + previous
        for word in re.findall(r"\bas (\w+)", labels):
            text += " " + " ".join(row for name, row in rows.items() if word in name and word != "above")
        parts = match["parts"].split(",") if match["parts"] else [""]
        for part in parts:
            rows[match["name"] + (f"_{part}" if part else "")] = text
        previous = text
    return rows


def grouping_labels(expr: str) -> set[str]:
    """Label names used in by/without/on/ignoring/group_* clauses."""
    found: set[str] = set()
    for clause in re.findall(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", expr):
        found.update(label.strip() for label in clause.split(",") if label.strip())
    return found

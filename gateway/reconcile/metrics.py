"""`gateway_reconcile_difference_usd` for the last run, per provider and model: the
provider's cost minus the ledger's over the run's period. A CLI run is over before any
scrape, so it hands the numbers on two ways, either or both:

- `--metrics-file PATH`: Prometheus text, written atomically, for node_exporter's
  textfile collector (the usual home of a nightly job's results);
- OTLP: when the standard variables name a metrics exporter (`OTEL_EXPORTER_OTLP_ENDPOINT`
  or `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`, `OTEL_METRICS_EXPORTER`, `..._PROTOCOL`), the
  SDK's exporter pushes one collection before the command exits.

Labels are the OTel attribute names (`gen_ai.provider.name`, `gen_ai.request.model`), so
both paths land on the same Prometheus series.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path

from gateway.reconcile.compare import Line, Thresholds

DIFFERENCE = "gateway_reconcile_difference_usd"
EXCEEDED = "gateway_reconcile_exceeded_lines"
LAST_RUN = "gateway_reconcile_last_run_timestamp_seconds"
OTLP_DIFFERENCE = "gateway.reconcile.difference.usd"  # the same series once in Prometheus
OTLP_EXCEEDED = "gateway.reconcile.exceeded_lines"
PROVIDER = "gen_ai.provider.name"
MODEL = "gen_ai.request.model"


def per_model(lines: Sequence[Line]) -> dict[str, Decimal]:
    """The difference per model over the whole period."""
    out: dict[str, Decimal] = {}
    for line in lines:
        out[line.model] = out.get(line.model, Decimal(0)) + line.diff_usd
    return out


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def prometheus_text(lines: Sequence[Line], provider: str, thresholds: Thresholds,
                    now: float) -> str:
    p = f'gen_ai_provider_name="{_label(provider)}"'
    out = [f"# HELP {DIFFERENCE} Provider cost minus ledger cost in the last reconcile run.",
           f"# TYPE {DIFFERENCE} gauge"]
    for model, diff in sorted(per_model(lines).items()):
        out.append(f'{DIFFERENCE}{{{p},gen_ai_request_model="{_label(model)}"}} {float(diff)!r}')
    out += [f"# HELP {EXCEEDED} Day-and-model lines past the thresholds in the last run.",
            f"# TYPE {EXCEEDED} gauge",
            f"{EXCEEDED}{{{p}}} {sum(1 for line in lines if thresholds.exceeded(line))}",
            f"# HELP {LAST_RUN} When the last reconcile run finished.",
            f"# TYPE {LAST_RUN} gauge", f"{LAST_RUN}{{{p}}} {now!r}"]
    return "\n".join(out) + "\n"


def write_textfile(path: str, text: str) -> None:
    """Write `text` to `path` atomically: a collector never reads half a file."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def push_otlp(lines: Sequence[Line], provider: str, thresholds: Thresholds,
              environ: Mapping[str, str]) -> list[str]:
    """Export the gauges once through the exporters the OTEL_* variables name; the names of
    the exporters used ([] when none is configured)."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader

    from gateway.telemetry.setup import _default_otlp, _load, _sdk_exporter_names, resource_from_env

    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    names = _sdk_exporter_names("metrics", environ)
    names = [n for n in (names if names is not None else _default_otlp("metrics", environ))
             if n not in ("prometheus", "none")]
    if not names:
        return []
    readers: list[MetricReader] = []
    for exporter_cls in _load(names, "opentelemetry_metrics_exporter"):
        readers.append(PeriodicExportingMetricReader(exporter_cls(),
                                                     export_interval_millis=3_600_000))
    meter_provider = MeterProvider(resource=resource_from_env(environ), metric_readers=readers,
                                   shutdown_on_exit=False)
    meter = meter_provider.get_meter("gateway.reconcile")
    difference = meter.create_gauge(OTLP_DIFFERENCE, unit="{USD}",
                                    description="Provider cost minus ledger cost in the last "
                                                "reconcile run")
    for model, diff in per_model(lines).items():
        difference.set(float(diff), {PROVIDER: provider, MODEL: model})
    meter.create_gauge(OTLP_EXCEEDED, unit="{line}").set(
        sum(1 for line in lines if thresholds.exceeded(line)), {PROVIDER: provider})
    meter_provider.force_flush(10_000)
    meter_provider.shutdown(10_000)
    return names

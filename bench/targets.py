"""What the benchmark measures and how each piece is started: one process per target.

The upstream and the OTLP sink serve every target; each gateway variant tags
its telemetry with the resource attribute `bench.target` so the shared sink
can count spans per variant.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench import gateway_config, procs

ROOT = Path(__file__).resolve().parent.parent
MODEL = "gpt-4.1"
TRICKLE_MODEL = "bench-trickle"
TRICKLE = {"completion_tokens": 10, "chunk_delay_s": 0.002}
UPSTREAM_KEY = "sk-bench"
ALL = ("direct", "bare", "gateway", "gateway-10pct", "gateway-extra")


@dataclass(frozen=True)
class TargetSpec:
    name: str
    kind: str  # direct | bare | gateway
    description: str
    env: dict[str, str] = field(default_factory=dict)
    extra_config: Path | None = None


def specs(
    names: tuple[str, ...], loop: str, extra_env: Mapping[str, str], extra_config: Path | None
) -> list[TargetSpec]:
    known = {
        "direct": TargetSpec("direct", "direct", "fake upstream called directly"),
        "bare": TargetSpec("bare", "bare", f"bare aiohttp pass-through ({loop})"),
        "gateway": TargetSpec(
            "gateway", "gateway", "gateway, OTLP export, 100% sampled", {"OTEL_TRACES_SAMPLER": "always_on"}
        ),
        "gateway-10pct": TargetSpec(
            "gateway-10pct",
            "gateway",
            "gateway, OTLP export, 10% sampled",
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
        ),
        "gateway-extra": TargetSpec(
            "gateway-extra",
            "gateway",
            "gateway, 100% sampled, extra config/env",
            {"OTEL_TRACES_SAMPLER": "always_on", **extra_env},
            extra_config,
        ),
    }
    return [known[name] for name in names]


def python_env() -> dict[str, str]:
    """The parent's environment without OTEL_ or gateway settings that would skew a target."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_") and k != "GATEWAY_CONFIG"}
    env["PYTHONPATH"] = str(ROOT)
    return env


def start_upstream(completion_tokens: int, loop: str, log_dir: Path) -> procs.Child:
    port = procs.free_port()
    argv = [
        sys.executable,
        "-m",
        "tests.fakes.openai_upstream",
        "--port",
        str(port),
        "--api-key",
        UPSTREAM_KEY,
        "--any-model",
        "--completion-tokens",
        str(completion_tokens),
        "--model-behaviour",
        f"{TRICKLE_MODEL}={json.dumps(TRICKLE)}",
    ]
    if loop != "uvloop":
        argv.append("--no-uvloop")
    url = f"http://127.0.0.1:{port}"
    return procs.start("upstream", argv, url=url, log_dir=log_dir, cwd=ROOT, env=python_env())


def start_sink(log_dir: Path) -> procs.Child:
    port = procs.free_port()
    argv = [sys.executable, "-m", "bench.otlp_sink", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    return procs.start("otlp-sink", argv, url=url, log_dir=log_dir, cwd=ROOT, env=python_env())


def start_bare(spec: TargetSpec, upstream: procs.Child, loop: str, log_dir: Path) -> procs.Child:
    port = procs.free_port()
    argv = [
        sys.executable,
        "-m",
        "bench.bare_proxy",
        "--port",
        str(port),
        "--upstream",
        upstream.url + "/v1",
        "--api-key",
        UPSTREAM_KEY,
        "--loop",
        loop,
    ]
    url = f"http://127.0.0.1:{port}"
    return procs.start(spec.name, argv, url=url, log_dir=log_dir, cwd=ROOT, env=python_env())


def start_gateway(
    spec: TargetSpec,
    upstream: procs.Child,
    sink: procs.Child,
    command: tuple[str, ...],
    work: Path,
    log_dir: Path,
) -> procs.Child:
    port = procs.free_port()
    config = work / f"{spec.name}.yaml"
    models = [MODEL, TRICKLE_MODEL]
    config.write_text(gateway_config.render(upstream.url + "/v1", models, extra=spec.extra_config))
    env = python_env()
    env.update(
        {
            "BENCH_UPSTREAM_KEY": UPSTREAM_KEY,
            "OTEL_SERVICE_NAME": "llm-gateway-bench",
            "OTEL_RESOURCE_ATTRIBUTES": f"bench.target={spec.name}",
            "OTEL_EXPORTER_OTLP_ENDPOINT": sink.url,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_METRIC_EXPORT_INTERVAL": "10000",
        }
    )
    env.update(spec.env)
    argv = [*command, "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    return procs.start(spec.name, argv, url=url, log_dir=log_dir, cwd=ROOT, env=env)

"""Benchmark the gateway against the bare floor, in one command.

    python bench/run.py                # direct, bare proxy, gateway 100% and 10% sampling
    python bench/run.py --quick        # shorter cells, for a smoke run
    python bench/run.py --connections 1,32,256 --extra-config bench/keys.yaml

Starts the fake upstream, the OTLP sink, then each target in its own process,
drives it with wrk (throughput, p50, p99) and a Python client (time to first
chunk), and prints one markdown table, also written to bench/results/latest.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/run.py`: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp

from bench import gateway_config, load, procs, report

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
MODEL = "gpt-4.1"
TRICKLE_MODEL = "bench-trickle"
UPSTREAM_KEY = "sk-bench"
PROMPT = [{"role": "user", "content": "Say hello to the gateway in a few words please"}]
TRICKLE = {"completion_tokens": 10, "chunk_delay_s": 0.002}
ALL_TARGETS = ("direct", "bare", "gateway", "gateway-10pct", "gateway-extra")


@dataclass(frozen=True)
class Options:
    duration_s: float
    warmup_s: float
    connections: tuple[int, ...]
    modes: tuple[str, ...]
    targets: tuple[str, ...]
    ttfc_requests: int
    completion_tokens: int
    client_key: str
    loop: str
    gateway_cmd: tuple[str, ...]
    extra_config: Path | None
    extra_env: dict[str, str]
    output: Path


@dataclass(frozen=True)
class TargetSpec:
    name: str
    kind: str  # direct | bare | gateway
    description: str
    env: dict[str, str] = field(default_factory=dict)
    extra_config: Path | None = None


def _specs(opts: Options) -> list[TargetSpec]:
    specs = {
        "direct": TargetSpec("direct", "direct", "fake upstream called directly"),
        "bare": TargetSpec("bare", "bare", f"bare aiohttp pass-through ({opts.loop})"),
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
            {"OTEL_TRACES_SAMPLER": "always_on", **opts.extra_env},
            opts.extra_config,
        ),
    }
    return [specs[name] for name in opts.targets]


# --- processes ------------------------------------------------------------


def _python_env() -> dict[str, str]:
    """The parent's environment without any OTEL_ or gateway settings that would skew a target."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_") and k not in ("GATEWAY_CONFIG",)}
    env["PYTHONPATH"] = str(ROOT)
    return env


def _start_upstream(opts: Options, log_dir: Path) -> procs.Child:
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
        str(opts.completion_tokens),
        "--model-behaviour",
        f"{TRICKLE_MODEL}={json.dumps(TRICKLE)}",
    ]
    if opts.loop != "uvloop":
        argv.append("--no-uvloop")
    url = f"http://127.0.0.1:{port}"
    return procs.start("upstream", argv, url=url, log_dir=log_dir, cwd=ROOT, env=_python_env())


def _start_sink(log_dir: Path) -> procs.Child:
    port = procs.free_port()
    argv = [sys.executable, "-m", "bench.otlp_sink", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    return procs.start("otlp-sink", argv, url=url, log_dir=log_dir, cwd=ROOT, env=_python_env())


def _start_target(
    spec: TargetSpec, opts: Options, upstream: procs.Child, sink: procs.Child, work: Path
) -> procs.Child:
    port = procs.free_port()
    url = f"http://127.0.0.1:{port}"
    log_dir = RESULTS / "logs"
    if spec.kind == "bare":
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
            opts.loop,
        ]
        return procs.start(spec.name, argv, url=url, log_dir=log_dir, cwd=ROOT, env=_python_env())
    config = work / f"{spec.name}.yaml"
    config.write_text(
        gateway_config.render(upstream.url + "/v1", [MODEL, TRICKLE_MODEL], extra=spec.extra_config)
    )
    env = _python_env()
    env.update(
        {
            "BENCH_UPSTREAM_KEY": UPSTREAM_KEY,
            "OTEL_SERVICE_NAME": "llm-gateway-bench",
            "OTEL_EXPORTER_OTLP_ENDPOINT": sink.url,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_METRIC_EXPORT_INTERVAL": "10000",
        }
    )
    env.update(spec.env)
    argv = [*opts.gateway_cmd, "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    return procs.start(spec.name, argv, url=url, log_dir=log_dir, cwd=ROOT, env=env)


# --- measuring ------------------------------------------------------------


def _body(mode: str, model: str = MODEL) -> dict[str, object]:
    body: dict[str, object] = {"model": model, "messages": PROMPT}
    if mode == "stream":
        body["stream"] = True
    return body


async def _sink_stats(sink: procs.Child, reset: bool = False) -> dict[str, int]:
    async with aiohttp.ClientSession() as session:
        if reset:
            async with session.post(sink.url + "/reset"):
                return {}
        async with session.get(sink.url + "/stats") as response:
            stats: dict[str, int] = await response.json()
            return stats


async def _measure(
    spec: TargetSpec, child: procs.Child, opts: Options, work: Path, run: report.TargetRun
) -> None:
    chat_url = child.url + "/v1/chat/completions"
    for mode in opts.modes:
        await load.check_answer(chat_url, _body(mode), opts.client_key)
        run.requests_sent += 1
        script = load.write_lua(work / f"{spec.name}-{mode}.lua", _body(mode), opts.client_key)
        for conns in opts.connections:
            warm = await load.run_wrk(chat_url, script, connections=conns, duration_s=opts.warmup_s)
            cpu_before = child.cpu_seconds()
            result = await load.run_wrk(chat_url, script, connections=conns, duration_s=opts.duration_s)
            cpu = child.cpu_seconds() - cpu_before
            run.requests_sent += warm.requests + result.requests
            per_req = cpu * 1e6 / result.requests if result.requests else 0.0
            run.cells.append(report.Cell(spec.name, mode, conns, result, per_req))
            print(
                f"  {spec.name:14} {mode:6} c={conns:<4} {result.rps:9,.0f} req/s  "
                f"p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms  "
                f"errors {result.errors}",
                flush=True,
            )
    if "stream" in opts.modes and opts.ttfc_requests > 0:
        run.ttfc = await load.measure_ttfc(
            chat_url,
            _body("stream", TRICKLE_MODEL),
            opts.client_key,
            requests=opts.ttfc_requests,
        )
        run.requests_sent += opts.ttfc_requests + 20
        print(
            f"  {spec.name:14} ttfc   p50 {run.ttfc.ttfc_p50_ms:.3f} ms  p99 {run.ttfc.ttfc_p99_ms:.3f} ms",
            flush=True,
        )


async def _run_target(
    spec: TargetSpec, opts: Options, upstream: procs.Child, sink: procs.Child, work: Path
) -> report.TargetRun:
    run = report.TargetRun(spec.name, spec.description)
    if spec.kind == "direct":
        child = upstream
    else:
        child = _start_target(spec, opts, upstream, sink, work)
        await procs.wait_ready(child, "/health")
    await _sink_stats(sink, reset=True)
    try:
        await _measure(spec, child, opts, work, run)
        run.peak_rss_mb = child.rss_mb()[1]
    except (load.LoadError, procs.NotReadyError) as exc:
        run.failure = str(exc).splitlines()[0]
        print(f"  {spec.name}: FAILED: {exc}", flush=True)
    finally:
        if child is not upstream:
            code = child.stop()
            if code not in (0, -15) and run.failure is None:
                run.failure = f"exited with {code} on SIGTERM (see {child.log_path})"
    if spec.kind == "gateway":
        await asyncio.sleep(0.5)
        stats = await _sink_stats(sink)
        run.spans = stats.get("spans", 0)
        run.metric_exports = stats.get("metrics_exports", 0)
    return run


def _header(opts: Options) -> list[str]:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return [
        f"- when: {time.strftime('%Y-%m-%d %H:%M:%S %z')}, commit {commit or '?'}",
        f"- machine: {os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, aiohttp {aiohttp.__version__}, loop {opts.loop}",
        f"- cells: {opts.warmup_s:g} s warmup + {opts.duration_s:g} s measured, wrk 1 thread; "
        f"one process each for wrk, upstream, target, OTLP sink",
        f"- upstream: fake OpenAI, instant, {opts.completion_tokens} completion tokens "
        f"({opts.completion_tokens + 2} SSE events + [DONE] per stream); TTFC uses "
        f"`{TRICKLE_MODEL}`: 10 chunks 2 ms apart",
        "- gateway: OTLP http/protobuf to a local sink, metrics exported every 10 s",
    ]


async def _main(opts: Options) -> int:
    if shutil.which("wrk") is None:
        print("wrk not found on PATH (apt-get install wrk)", file=sys.stderr)
        return 2
    specs = _specs(opts)
    if any(s.kind == "gateway" for s in specs) and not (ROOT / "gateway" / "__main__.py").exists():
        print("gateway package not found: gateway targets skipped", flush=True)
        specs = [s for s in specs if s.kind != "gateway"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    log_dir = RESULTS / "logs"
    runs: list[report.TargetRun] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work = Path(tmp)
        upstream = _start_upstream(opts, log_dir)
        sink = _start_sink(log_dir)
        try:
            await procs.wait_ready(
                upstream, "/v1/models", headers={"Authorization": f"Bearer {UPSTREAM_KEY}"}
            )
            await procs.wait_ready(sink, "/stats")
            for spec in specs:
                print(f"{spec.name}: {spec.description}", flush=True)
                runs.append(await _run_target(spec, opts, upstream, sink, work))
        finally:
            upstream.stop()
            sink.stop()
    text = report.render(runs, _header(opts))
    opts.output.parent.mkdir(parents=True, exist_ok=True)
    opts.output.write_text(text)
    print()
    print(text)
    return 1 if any(run.failure for run in runs) else 0


def _csv_ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x)


def _parse(argv: Sequence[str] | None) -> Options:
    p = argparse.ArgumentParser(description="Benchmark the gateway against a bare aiohttp proxy.")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per measured cell")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds of warmup per cell")
    p.add_argument("--connections", default="1,32", help="comma-separated, e.g. 1,32,256")
    p.add_argument("--modes", default="json,stream", help="json, stream or both")
    p.add_argument("--targets", default=None, help=f"comma-separated subset of {ALL_TARGETS}")
    p.add_argument("--ttfc-requests", type=int, default=200)
    p.add_argument("--completion-tokens", type=int, default=20)
    p.add_argument("--client-key", default=UPSTREAM_KEY, help="key the load generator sends")
    p.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    p.add_argument("--gateway-cmd", default=f"{sys.executable} -m gateway serve")
    p.add_argument("--extra-config", type=Path, help="YAML merged into the gateway-extra config")
    p.add_argument("--extra-env", action="append", default=[], metavar="K=V", help="env for gateway-extra")
    p.add_argument("--quick", action="store_true", help="2 s cells, 1 s warmup, 50 TTFC requests")
    p.add_argument("--output", type=Path, default=RESULTS / "latest.md")
    a = p.parse_args(argv)
    extra_env = dict(item.split("=", 1) for item in a.extra_env)
    if a.targets is None:
        wanted = ["direct", "bare", "gateway", "gateway-10pct"]
        if a.extra_config or extra_env:
            wanted.append("gateway-extra")
    else:
        wanted = [t for t in a.targets.split(",") if t]
    unknown = set(wanted) - set(ALL_TARGETS)
    if unknown:
        p.error(f"unknown targets: {sorted(unknown)}")
    return Options(
        duration_s=2.0 if a.quick else a.duration,
        warmup_s=1.0 if a.quick else a.warmup,
        connections=_csv_ints(a.connections),
        modes=tuple(m for m in a.modes.split(",") if m),
        targets=tuple(wanted),
        ttfc_requests=50 if a.quick else a.ttfc_requests,
        completion_tokens=a.completion_tokens,
        client_key=a.client_key,
        loop=a.loop,
        gateway_cmd=tuple(shlex.split(a.gateway_cmd)),
        extra_config=a.extra_config,
        extra_env=extra_env,
        output=a.output,
    )


def main(argv: Sequence[str] | None = None) -> int:
    opts = _parse(argv)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(_main(opts))
    return uvloop.run(_main(opts))


if __name__ == "__main__":
    sys.exit(main())

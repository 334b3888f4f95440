"""Benchmark the gateway against the bare floor, in one command.

    python bench/run.py                # direct, bare proxy, gateway 100% and 10% sampling, LiteLLM
    python bench/run.py --quick        # shorter cells, for a smoke run
    python bench/run.py --targets bare,gateway,gateway-nospend --connections 1,32,256
    python bench/run.py --litellm-python /path/to/venv/bin/python

Starts the fake upstream, the OTLP sink, then each target in its own process,
drives it with wrk (throughput, p50, p99) and a Python client (time to first
chunk), and prints one markdown table, also written to bench/results/latest.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python bench/run.py`: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp

from bench import build, dialects, load, longstreams, procs, report, targets

RESULTS = targets.ROOT / "bench" / "results"
PROMPT = [{"role": "user", "content": "Say hello to the gateway in a few words please"}]
TTFC_ROUNDS = 4


@dataclass(frozen=True)
class Options:
    duration_s: float
    warmup_s: float
    connections: tuple[int, ...]
    modes: tuple[str, ...]
    targets: tuple[str, ...]
    repeat: int
    ttfc_requests: int
    completion_tokens: int
    client_key: str
    litellm_python: str
    loop: str
    gateway_cmd: tuple[str, ...]
    build: str  # bench/build.py: compiled | source
    extra_config: Path | None
    extra_env: dict[str, str]
    output: Path
    baseline: Path | None = None  # the code of the gateway-base target
    memory_streams: int = 1000  # 0: no memory measurements
    memory_soak: int = 100_000
    portkey_dir: Path = Path("portkey")
    dialects: tuple[str, ...] = dialects.DEFAULT  # chat is the main table; the others their own
    dialect_connections: tuple[int, ...] = (32,)
    dialect_targets: tuple[str, ...] = ("bare", "gateway")
    long_streams: longstreams.Plan | None = None  # None: no long-stream section


@dataclass
class Live:
    """A target being measured: its spec, process, and what was measured so far."""

    spec: targets.TargetSpec
    child: procs.Child
    run: report.TargetRun
    cells: dict[tuple[str, str, int], list[report.Cell]] = field(default_factory=dict)
    ttfc: load.TtfcSamples = field(default_factory=load.TtfcSamples)
    modes: tuple[str, ...] = ("json", "stream")  # a peer that fails a mode is measured without it

    @property
    def name(self) -> str:
        return self.spec.name


def _body(mode: str, model: str = targets.MODEL) -> dict[str, object]:
    body: dict[str, object] = {"model": model, "messages": PROMPT}
    if mode == "stream":
        body["stream"] = True
    return body


# Where each kind of target says it is up, and how long it may take (LiteLLM imports for seconds).
READY = {"bare": ("/health", 60.0), "gateway": ("/health", 120.0), "litellm": ("/health/liveliness", 180.0),
         "portkey": ("/", 120.0)}  # generous: a loaded machine can take a minute to import
CHAT = dialects.ALL["chat"]


async def _start_all(
    specs: list[targets.TargetSpec], opts: Options, upstream: procs.Child, sink: procs.Child, work: Path,
    code: Path, portkey: targets.PortkeyProbe | None,
) -> tuple[list[Live], list[report.TargetRun]]:
    """Start every target, then wait for all; a target that does not come up is reported, not fatal."""
    log_dir = RESULTS / "logs"
    started: list[Live] = []
    failed: list[report.TargetRun] = []
    for spec in specs:
        run = report.TargetRun(spec.name, spec.description)
        if spec.kind == "direct":
            child = upstream
        elif spec.kind == "bare":
            child = targets.start_bare(spec, upstream, opts.loop, log_dir)
        elif spec.kind == "litellm":
            child = targets.start_litellm(spec, upstream, opts.litellm_python, work, log_dir)
        elif spec.kind == "portkey":
            assert portkey is not None
            child = targets.start_portkey(spec, portkey, work, log_dir)
        else:
            child = targets.start_gateway(spec, upstream, sink, opts.gateway_cmd, work, log_dir,
                                          code)
        started.append(Live(spec, child, run, modes=opts.modes))
    live: list[Live] = []
    for target in started:
        try:
            if target.child is not upstream:
                path, timeout_s = READY[target.spec.kind]
                await procs.wait_ready(target.child, path, timeout_s=timeout_s)
            for mode in opts.modes:
                try:
                    await load.check_answer(target.child.url + "/v1/chat/completions", _body(mode),
                                            target.spec.client_key, target.spec.headers(upstream.url))
                except load.LoadError as exc:
                    if target.name not in targets.PEERS or len(target.modes) == 1:
                        raise
                    # A peer that cannot do one mode is compared on the other, with the reason.
                    target.modes = tuple(m for m in target.modes if m != mode)
                    target.run.notes.append(f"{mode} not measured: {str(exc).splitlines()[0]}")
                    print(f"{target.name}: {target.run.notes[-1]}", flush=True)
                target.run.requests_sent += 1
            live.append(target)
        except (procs.NotReadyError, load.LoadError) as exc:
            target.run.failure = str(exc).splitlines()[0]
            print(f"{target.name}: FAILED to start: {exc}", flush=True)
            failed.append(target.run)
            if target.child is not upstream:
                target.child.stop()
    return live, failed


async def _cell(target: Live, mode: str, conns: int, script: Path, opts: Options,
                dialect: dialects.Dialect = CHAT) -> None:
    url = target.child.url + dialect.path(mode)
    warm = await load.run_wrk(url, script, connections=conns, duration_s=opts.warmup_s)
    cpu_before = target.child.cpu_seconds()
    result = await load.run_wrk(url, script, connections=conns, duration_s=opts.duration_s)
    cpu = target.child.cpu_seconds() - cpu_before
    target.run.requests_sent += warm.requests + result.requests
    per_req = cpu * 1e6 / result.requests if result.requests else 0.0
    cell = report.Cell(target.name, mode, conns, result, per_req, dialect.name)
    target.cells.setdefault((dialect.name, mode, conns), []).append(cell)
    label = "" if dialect is CHAT else f" {dialect.name}"
    print(
        f"  {target.name:14}{label} {mode:6} c={conns:<4} {result.rps:9,.0f} req/s  "
        f"p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms  errors {result.errors}",
        flush=True,
    )


async def _measure(live: list[Live], opts: Options, work: Path, upstream: procs.Child) -> None:
    """Cells interleaved across targets (order rotated each repeat) so background load hits all alike."""
    scripts = {
        (target.name, mode): load.write_lua(
            work / f"{target.name}-{mode}.lua", _body(mode), target.spec.client_key,
            target.spec.headers(upstream.url),
        )
        for target in live
        for mode in opts.modes
    }
    for rep in range(opts.repeat):
        order = live[rep % len(live) :] + live[: rep % len(live)]
        for mode in opts.modes:
            for conns in opts.connections:
                for target in order:
                    if target.run.failure is None and mode in target.modes:
                        script = scripts[target.name, mode]
                        await _guarded(target, _cell(target, mode, conns, script, opts))
    if "stream" not in opts.modes or opts.ttfc_requests <= 0:
        return
    per_round = max(1, opts.ttfc_requests // TTFC_ROUNDS)
    body = _body("stream", targets.TRICKLE_MODEL)
    for _ in range(TTFC_ROUNDS):
        for target in live:
            if target.run.failure is None and "stream" in target.modes:
                await _guarded(target, _ttfc(target, body, per_round, upstream))


async def _ttfc(target: Live, body: dict[str, object], requests: int, upstream: procs.Child) -> None:
    url = target.child.url + "/v1/chat/completions"
    headers = target.spec.headers(upstream.url)
    target.ttfc.extend(await load.measure_ttfc(url, body, headers, requests=requests))
    target.run.requests_sent += requests + 10


async def _measure_dialects(live: list[Live], opts: Options, work: Path, upstream: procs.Child,
                            skipped: dict[str, str]) -> None:
    """Every dialect but chat, on the dialect targets, interleaved like the main table. A dialect
    that a gateway target answers 404 on is not measured (on any target) and goes to `skipped`."""
    chosen = [t for t in live if t.name in opts.dialect_targets and t.run.failure is None]
    for dialect in dialects.select(opts.dialects):
        if dialect is CHAT:
            continue
        modes = dialect.modes(opts.modes)
        scripts: dict[tuple[str, str], Path] = {}
        try:
            for target in chosen:
                key = target.spec.client_key
                headers = dialect.request_headers(key)
                for mode in modes:
                    url = target.child.url + dialect.path(mode)
                    await load.check_answer(url, dialect.body(mode), key, headers, dialect.stream_end)
                    scripts[target.name, mode] = load.write_lua(
                        work / f"{target.name}-{dialect.name}-{mode}.lua", dialect.body(mode), key, headers)
        except load.NotServedError as exc:
            skipped[dialect.name] = f"{target.name} does not serve it: {str(exc).splitlines()[0]}"
            print(f"  {dialect.name}: skipped ({skipped[dialect.name]})", flush=True)
            continue
        except load.LoadError as exc:
            skipped[dialect.name] = f"FAILED on {target.name}: {str(exc).splitlines()[0]}"
            print(f"  {dialect.name}: {skipped[dialect.name]}", flush=True)
            continue
        for rep in range(opts.repeat):
            order = chosen[rep % len(chosen):] + chosen[: rep % len(chosen)]
            for mode in modes:
                for conns in opts.dialect_connections:
                    for target in order:
                        if target.run.failure is None:
                            step = _cell(target, mode, conns, scripts[target.name, mode], opts, dialect)
                            await _guarded(target, step)


async def _guarded(target: Live, step: Coroutine[Any, Any, None]) -> None:
    try:
        await step
    except load.LoadError as exc:
        target.run.failure = str(exc).splitlines()[0]
        print(f"  {target.name}: FAILED: {exc}", flush=True)


def _median_cell(cells: list[report.Cell]) -> report.Cell:
    """The repeat with the median req/s, so its p50 and p99 come from the same run."""
    ordered = sorted(cells, key=lambda c: c.result.rps)
    return ordered[(len(ordered) - 1) // 2]


async def _sink_stats(sink: procs.Child, reset: bool = False) -> dict[str, int]:
    async with aiohttp.ClientSession() as session:
        if reset:
            async with session.post(sink.url + "/reset"):
                return {}
        async with session.get(sink.url + "/stats") as response:
            stats: dict[str, int] = await response.json()
            return stats


async def _finish(live: list[Live], upstream: procs.Child, sink: procs.Child) -> str:
    """Stop the targets (SIGTERM flushes telemetry), then read what the sink received from each;
    returns a line on the telemetry's volume (bytes per span, the sink's CPU per span)."""
    for target in live:
        with contextlib.suppress(OSError):
            target.run.peak_rss_mb = target.child.rss_mb()[1]
        if target.child is upstream:
            continue
        code = target.child.stop()
        if code not in (0, -15) and target.run.failure is None:
            target.run.failure = f"exited with {code} on SIGTERM (see {target.child.log_path})"
    await asyncio.sleep(0.5)
    stats = await _sink_stats(sink)
    for target in live:
        if target.spec.kind == "gateway":
            target.run.spans = stats.get(f"spans:{target.name}", 0)
            target.run.metric_exports = stats.get(f"metrics_exports:{target.name}", 0)
        target.run.cells = [_median_cell(cells) for cells in target.cells.values()]
        target.run.ttfc = target.ttfc.summary()
    spans = sum(v for k, v in stats.items() if k.startswith("spans:"))
    if not spans:
        return ""
    return (f"The OTLP sink received {spans:,} spans in {stats.get('traces_exports', 0):,} exports, "
            f"{stats.get('traces_bytes', 0) / spans:,.0f} bytes a span (protobuf, uncompressed), and "
            f"{sink.cpu_seconds() * 1e6 / spans:,.1f} µs of the sink's CPU a span (decoding and "
            "counting only: the floor of what a collector spends on them, metrics included).")


def _header(opts: Options, litellm: targets.LitellmProbe | None,
            portkey: targets.PortkeyProbe | None) -> list[str]:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=targets.ROOT, capture_output=True, text=True
    ).stdout.strip()
    repeats = f", median of {opts.repeat} interleaved repeats" if opts.repeat > 1 else ""
    return [
        f"- when: {time.strftime('%Y-%m-%d %H:%M:%S %z')}, commit {commit or '?'}",
        f"- machine: {os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, aiohttp {aiohttp.__version__}, loop {opts.loop}",
        f"- cells: {opts.warmup_s:g} s warmup + {opts.duration_s:g} s measured{repeats}, wrk 1 thread; "
        "one process each for wrk, upstream, each target, OTLP sink; targets interleaved cell by cell",
        f"- upstream: bench/upstream.py, every dialect, instant, {opts.completion_tokens} completion "
        f"tokens (chat: {opts.completion_tokens + 2} SSE events + [DONE] per stream); TTFC uses "
        f"`{targets.TRICKLE_MODEL}`: 10 chunks 2 ms apart",
        "- gateway: OTLP http/protobuf to a local sink, metrics exported every 10 s; each variant "
        "its own SQLite ledger; `gateway`, `gateway-10pct`, `gateway-py`, `gateway-extra` with the key "
        "and budgets of bench/spend.yaml",
        f"- gateway build: {_build_line(opts.build)}",
    ] + (
        [f"- litellm: LiteLLM {litellm.version} proxy, 1 worker, default settings, no callbacks "
         f"({litellm.python})"]
        if litellm is not None and litellm.available
        else []
    ) + (
        [f"- portkey: @portkey-ai/gateway {portkey.version} (Node.js {_node_version()}), "
         "`--headless`, NODE_ENV=production, no telemetry configured"]
        if portkey is not None and portkey.available
        else []
    )


def _node_version() -> str:
    done = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "?"


def _build_line(build_name: str) -> str:
    if build_name == "compiled":
        return ("request path compiled with mypyc (scripts/build-compiled, as the Docker image ships "
                "it); `gateway-py` runs the same code as pure-Python source")
    return "pure-Python source (`--build source`)"


def select(
    specs: list[targets.TargetSpec], litellm: targets.LitellmProbe | None,
    portkey: targets.PortkeyProbe | None = None,
) -> tuple[list[targets.TargetSpec], list[report.TargetRun]]:
    """The targets to start, and those skipped (a peer not installed): reported, not failed."""
    run: list[targets.TargetSpec] = []
    skipped: list[report.TargetRun] = []
    probes: dict[str, targets.LitellmProbe | targets.PortkeyProbe | None] = {
        "litellm": litellm, "portkey": portkey}
    for spec in specs:
        if spec.kind not in probes:
            run.append(spec)
            continue
        probe = probes[spec.kind]
        if probe is not None and probe.available:
            run.append(spec)
        else:
            reason = probe.reason if probe is not None else "not probed"
            skipped.append(report.TargetRun(spec.name, spec.description, skipped=reason))
    return run, skipped


def exit_status(runs: Sequence[report.TargetRun], dialect_notes: dict[str, str] | None = None) -> int:
    """1 when a target or a dialect failed; a skipped one is not a failure."""
    failed_dialect = any(note.startswith("FAILED") for note in (dialect_notes or {}).values())
    return 1 if failed_dialect or any(run.failure for run in runs) else 0


async def _main(opts: Options, code: Path) -> int:
    if shutil.which("wrk") is None:
        print("wrk not found on PATH (apt-get install wrk)", file=sys.stderr)
        return 2
    specs = targets.specs(opts.targets, opts.loop, opts.extra_env, opts.extra_config, opts.client_key,
                          opts.baseline)
    if any(s.kind == "gateway" for s in specs) and not (targets.ROOT / "gateway" / "__main__.py").exists():
        print("gateway package not found: gateway targets skipped", flush=True)
        specs = [s for s in specs if s.kind != "gateway"]
    litellm = targets.probe_litellm(opts.litellm_python) if "litellm" in opts.targets else None
    portkey = targets.probe_portkey(opts.portkey_dir) if "portkey" in opts.targets else None
    specs, skipped = select(specs, litellm, portkey)
    for run in skipped:
        print(f"{run.name}: skipped: {run.skipped}", flush=True)
    log_dir = RESULTS / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work = Path(tmp)
        upstream = targets.start_upstream(opts.completion_tokens, opts.loop, log_dir)
        sink = targets.start_sink(log_dir)
        live: list[Live] = []
        failed: list[report.TargetRun] = []
        dialect_notes: dict[str, str] = {}
        long_rows: list[longstreams.Row] = []
        volume = ""
        try:
            auth = {"Authorization": f"Bearer {targets.UPSTREAM_KEY}"}
            await procs.wait_ready(upstream, "/v1/models", headers=auth)
            await procs.wait_ready(sink, "/stats")
            await _sink_stats(sink, reset=True)
            live, failed = await _start_all(specs, opts, upstream, sink, work, code, portkey)
            await _measure(live, opts, work, upstream)
            await _measure_dialects(live, opts, work, upstream, dialect_notes)
            long_rows = await _long_streams(live, opts, work, upstream)
        finally:
            try:
                volume = await _finish(live, upstream, sink)
            except Exception as exc:  # report what was measured even if the sink went away
                print(f"could not collect telemetry counts: {exc!r}", file=sys.stderr)
            for target in live:
                target.child.stop()
            upstream.stop()
            sink.stop()
    runs = sorted([t.run for t in live] + failed + skipped, key=lambda r: opts.targets.index(r.name))
    sections = report.dialect_sections(runs, dialect_notes, opts.dialect_targets)
    if long_rows:
        sections.append(("Long streams (CPU and added latency per event)", longstreams.table(long_rows)))
    if volume:
        sections.append(("Telemetry volume", volume))
    text = report.render(runs, _header(opts, litellm, portkey), sections)
    opts.output.parent.mkdir(parents=True, exist_ok=True)
    opts.output.write_text(text)
    print()
    print(text)
    return exit_status(runs, dialect_notes)


async def _long_streams(live: list[Live], opts: Options, work: Path,
                        upstream: procs.Child) -> list[longstreams.Row]:
    """The long-stream rows for the bare proxy and the gateway (the dialect targets)."""
    if opts.long_streams is None or "stream" not in opts.modes:
        return []
    subjects = [longstreams.Subject(t.name, t.child, t.spec.client_key, t.spec.headers(upstream.url))
                for t in live if t.name in opts.dialect_targets and t.run.failure is None]
    print(f"long streams: {', '.join(s.name for s in subjects)} ...", flush=True)
    try:
        return await longstreams.measure(subjects, opts.long_streams, work)
    except load.LoadError as exc:
        print(f"long streams FAILED: {exc}", flush=True)
        return []


def _csv_ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x)


def _parse(argv: Sequence[str] | None) -> Options:
    p = argparse.ArgumentParser(description="Benchmark the gateway against a bare aiohttp proxy.")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per measured cell")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds of warmup per cell")
    p.add_argument("--connections", default="1,32,256", help="comma-separated, e.g. 1,32,256")
    p.add_argument("--modes", default="json,stream", help="json, stream or both")
    p.add_argument("--targets", default=None, help=f"comma-separated subset of {targets.ALL}")
    p.add_argument("--repeat", type=int, default=1, help="interleaved repeats; the median is reported")
    p.add_argument("--ttfc-requests", type=int, default=200)
    p.add_argument("--completion-tokens", type=int, default=20)
    p.add_argument(
        "--client-key",
        default=targets.CLIENT_KEY,
        help="key sent to gateway-extra (default: the key of bench/spend.yaml); other targets get theirs",
    )
    p.add_argument(
        "--litellm-python",
        default=os.environ.get("BENCH_LITELLM_PYTHON") or sys.executable,
        help="Python that runs the litellm target, one with `litellm[proxy]` installed "
        "(default: $BENCH_LITELLM_PYTHON, else this Python); without LiteLLM the target is skipped",
    )
    p.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    p.add_argument("--gateway-cmd", default=f"{sys.executable} -m gateway serve")
    p.add_argument("--build", choices=build.CHOICES, default="compiled",
                   help="the gateway targets' code: mypyc-compiled copy (default) or the source tree")
    p.add_argument("--extra-config", type=Path, help="YAML merged into the gateway-extra config")
    p.add_argument("--extra-env", action="append", default=[], metavar="K=V", help="env for gateway-extra")
    p.add_argument("--memory-streams", type=int, default=1000,
                   help="concurrent streams for the peak-RSS measurement (0: no memory section)")
    p.add_argument("--memory-soak", type=int, default=100_000,
                   help="requests in the RSS soak (after a warm-up of up to 10,000)")
    p.add_argument("--portkey-dir", type=Path,
                   default=Path(os.environ.get("BENCH_PORTKEY_DIR") or targets.ROOT.parent / "portkey"),
                   help="directory where `npm install @portkey-ai/gateway` was run (default: "
                        "$BENCH_PORTKEY_DIR, else ../portkey beside the repository); without it the "
                        "portkey target is skipped")
    p.add_argument("--dialects", default=",".join(dialects.DEFAULT),
                   help=f"comma-separated subset of {','.join(dialects.ALL)} (chat is the main table)")
    p.add_argument("--dialect-connections", default="32", help="connections of the dialect rows")
    p.add_argument("--dialect-targets", default="bare,gateway",
                   help="targets measured on every dialect and on long streams")
    p.add_argument("--long-streams", choices=["on", "off"], default="on",
                   help="the long-stream rows (1,000-event streams; 100 concurrent 30 s streams)")
    p.add_argument("--slow-streams", type=int, default=100, help="concurrent slow streams")
    p.add_argument("--slow-seconds", type=float, default=30.0, help="length of each slow stream")
    p.add_argument("--quick", action="store_true",
                   help="2 s cells, 1 s warmup, 50 TTFC requests, 200 streams and a 10,000-request soak")
    p.add_argument("--output", type=Path, default=RESULTS / "latest.md")
    p.add_argument("--baseline", type=Path,
                   help="a directory holding another commit's gateway (e.g. its compiled build): adds the "
                        "target gateway-base, measured in the same interleaved run")
    a = p.parse_args(argv)
    extra_env = dict(item.split("=", 1) for item in a.extra_env)
    if a.targets is None:
        wanted = list(targets.DEFAULT)
        if a.extra_config or extra_env:
            wanted.append("gateway-extra")
        if a.baseline:
            wanted.append("gateway-base")
    else:
        wanted = [t for t in a.targets.split(",") if t]
    unknown = set(wanted) - set(targets.ALL)
    if unknown:
        p.error(f"unknown targets: {sorted(unknown)}")
    try:
        dialects.select(tuple(d for d in a.dialects.split(",") if d))
    except ValueError as exc:
        p.error(str(exc))
    return Options(
        duration_s=2.0 if a.quick else a.duration,
        warmup_s=1.0 if a.quick else a.warmup,
        connections=_csv_ints(a.connections),
        modes=tuple(m for m in a.modes.split(",") if m),
        targets=tuple(wanted),
        repeat=max(1, a.repeat),
        ttfc_requests=50 if a.quick else a.ttfc_requests,
        completion_tokens=a.completion_tokens,
        client_key=a.client_key,
        litellm_python=a.litellm_python,
        loop=a.loop,
        gateway_cmd=tuple(shlex.split(a.gateway_cmd)),
        build=a.build,
        extra_config=a.extra_config,
        extra_env=extra_env,
        output=a.output,
        baseline=a.baseline.resolve() if a.baseline else None,
        memory_streams=min(a.memory_streams, 200) if a.quick else a.memory_streams,
        memory_soak=min(a.memory_soak, 10_000) if a.quick else a.memory_soak,
        portkey_dir=a.portkey_dir,
        dialects=tuple(d for d in a.dialects.split(",") if d),
        dialect_connections=_csv_ints(a.dialect_connections),
        dialect_targets=tuple(t for t in a.dialect_targets.split(",") if t),
        long_streams=_long_plan(a),
    )


def _long_plan(a: argparse.Namespace) -> longstreams.Plan | None:
    if a.long_streams == "off":
        return None
    seconds = min(a.slow_seconds, 5.0) if a.quick else a.slow_seconds
    gap_ms = 100
    return longstreams.Plan(duration_s=2.0 if a.quick else a.duration, slow_streams=a.slow_streams,
                            slow_events=max(1, round(seconds * 1000 / gap_ms)), slow_gap_ms=gap_ms)


def main(argv: Sequence[str] | None = None) -> int:
    opts = _parse(argv)
    code = targets.ROOT
    if any(name.startswith("gateway") for name in opts.targets):
        try:
            code = build.code_dir(opts.build)
        except build.BuildError as exc:
            print(f"could not build the compiled gateway: {exc}", file=sys.stderr)
            return 2
    try:
        import uvloop
    except ImportError:
        status = asyncio.run(_main(opts, code))
    else:
        status = uvloop.run(_main(opts, code))
    if opts.memory_streams > 0 and "gateway" in opts.targets and status != 2:
        _memory(opts, code)
    return status


def _memory(opts: Options, code: Path) -> None:
    """Peak RSS with concurrent streams and RSS across a soak (bench/memory.py), appended to
    the report."""
    from bench import memory

    print(f"\nmemory: {opts.memory_streams} concurrent streams, then a "
          f"{opts.memory_soak:,}-request soak ...", flush=True)
    try:
        table = memory.measure(opts.memory_streams, opts.memory_soak, code)
    except (procs.NotReadyError, load.LoadError) as exc:
        table = f"memory measurement failed: {exc}"
    section = ("\n\n## Memory (gateway, 100% sampled, OTLP export)\n\n" + table + "\n")
    with opts.output.open("a") as out:
        out.write(section)
    print(section)


if __name__ == "__main__":
    sys.exit(main())

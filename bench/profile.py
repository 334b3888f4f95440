"""Python-level calls a request in a running gateway, by function: what is left to take off.

    python -m bench.profile                          # chat, JSON, 32 connections, compiled build
    python -m bench.profile --mode stream --connections 8 --top 40
    python -m bench.profile --baseline ../base-compiled   # another commit's build beside it
    python -m bench.profile --callers web_request.py --callers instancecheck   # who calls them

Starts the fake upstream, the OTLP sink and the gateway as bench/run.py's `gateway` target
(key and budgets, 100% sampled, OTLP export; the compiled build unless `--build source`),
warms it up with wrk, then switches cProfile on inside the gateway (bench/profiled.py, by
signal), drives it for `--duration` seconds and switches it off. The calls each function
made in that window over the requests wrk completed are the calls a request (the window
also holds the up to `--connections` requests wrk cut off at its end, and whatever the
gateway did in the background meanwhile: a fraction of a call a request). Counts, unlike
CPU time, do not depend on what else the machine runs. With `--baseline`, the gateway
in that directory is profiled the same way after it, and both are printed side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp

from bench import build, callcounts, dialects, load, procs, targets

HOOK = targets.ROOT / "bench" / "profiled.py"
LOG_DIR = targets.ROOT / "bench" / "results" / "profile-logs"


@dataclasses.dataclass(frozen=True)
class Options:
    mode: str
    dialect: str
    connections: int
    duration_s: float
    warmup_s: float
    top: int
    build: str
    baseline: Path | None
    loop: str
    output: Path | None
    callers: tuple[str, ...] = ()


async def _profile_one(child: procs.Child, stats_path: Path, url: str, script: Path,
                       opts: Options, code: Path) -> callcounts.Profile:
    """Warm the gateway up, then profile `duration_s` of load."""
    await load.run_wrk(url, script, connections=opts.connections, duration_s=opts.warmup_s)
    os.kill(child.pid, signal.SIGUSR1)
    result = await load.run_wrk(url, script, connections=opts.connections,
                                duration_s=opts.duration_s)
    await asyncio.sleep(0.5)  # the requests wrk cut off finish (cancelled) before the switch
    os.kill(child.pid, signal.SIGUSR2)
    await _wait_for(stats_path, child)
    if result.errors:
        raise load.LoadError(f"{child.name}: {result.errors} of {result.requests} requests "
                             f"failed while profiled (see {child.log_path})")
    print(f"  {child.name}: {result.requests:,} requests profiled", flush=True)
    return callcounts.profile(child.name, callcounts.read_stats(stats_path), result.requests,
                              (code,))


async def _wait_for(path: Path, child: procs.Child, timeout_s: float = 30.0) -> None:
    """The stats file, once the gateway wrote it. A signal's Python handler runs when the
    process next runs Python code: an idle gateway is poked with `/health` until then."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while not path.exists():
            if time.monotonic() > deadline or child.popen.poll() is not None:
                raise load.LoadError(f"{child.name} wrote no profile:\n{child.log_tail()}")
            async with session.get(child.url + "/health") as response:
                await response.read()
            await asyncio.sleep(0.1)


async def _main(opts: Options, code: Path) -> str:
    dialect = dialects.ALL[opts.dialect]
    names = ("gateway", "gateway-base") if opts.baseline else ("gateway",)
    specs = targets.specs(names, opts.loop, {}, None, baseline=opts.baseline)
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        work = Path(tmp)
        upstream = targets.start_upstream(20, opts.loop, LOG_DIR)
        sink = targets.start_sink(LOG_DIR)
        children: list[tuple[procs.Child, Path, Path]] = []
        try:
            await procs.wait_ready(upstream, "/v1/models",
                                   headers={"Authorization": f"Bearer {targets.UPSTREAM_KEY}"})
            await procs.wait_ready(sink, "/stats")
            for spec in specs:
                stats_path = work / f"{spec.name}.pstats"
                spec = dataclasses.replace(
                    spec, env={**spec.env, "BENCH_PROFILE_OUT": str(stats_path)})
                child = targets.start_gateway(spec, upstream, sink, (sys.executable, str(HOOK), "serve"),
                                              work, LOG_DIR, code)
                children.append((child, stats_path, spec.code or code))
            profiles = []
            for child, stats_path, child_code in children:
                await procs.wait_ready(child, "/health", timeout_s=120.0)
                headers = dialect.request_headers(targets.CLIENT_KEY)
                url = child.url + dialect.path(opts.mode)
                body = dialect.body(opts.mode)
                await load.check_answer(url, body, targets.CLIENT_KEY, headers, dialect.stream_end)
                script = load.write_lua(work / f"{child.name}.lua", body, targets.CLIENT_KEY, headers)
                profiles.append(await _profile_one(child, stats_path, url, script, opts, child_code))
        finally:
            for child, _, _ in children:
                child.stop()
            upstream.stop()
            sink.stop()
    text = _header(opts, code) + "\n" + callcounts.report(profiles, opts.top)
    for match in opts.callers:
        for prof in profiles:
            text += f"\n## Callers of `{match}` in {prof.name}\n" + callcounts.callers_report(prof, match)
    return text


def _header(opts: Options, code: Path) -> str:
    base = f"; `gateway-base`: {opts.baseline}" if opts.baseline else ""
    return (f"{opts.dialect} {opts.mode}, {opts.connections} connections, {opts.duration_s:g} s "
            f"profiled after {opts.warmup_s:g} s of warm-up; `gateway`: {code} "
            f"({opts.build}){base}\n")


def _parse(argv: Sequence[str] | None) -> Options:
    p = argparse.ArgumentParser(description="Per-request Python calls of a running gateway.")
    p.add_argument("--mode", choices=["json", "stream"], default="json")
    p.add_argument("--dialect", choices=list(dialects.ALL), default="chat")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--duration", type=float, default=3.0, help="seconds profiled")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of load before profiling")
    p.add_argument("--top", type=int, default=30, help="functions listed, most calls first")
    p.add_argument("--build", choices=build.CHOICES, default="compiled",
                   help="the gateway's code: mypyc-compiled copy (default) or the source tree")
    p.add_argument("--baseline", type=Path,
                   help="another commit's gateway (e.g. its compiled build), profiled after it")
    p.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop",
                   help="event loop of the fake upstream")
    p.add_argument("--output", type=Path, help="also write the report here")
    p.add_argument("--callers", action="append", default=[], metavar="TEXT",
                   help="also list who calls each function whose name contains TEXT (repeatable)")
    a = p.parse_args(argv)
    return Options(a.mode, a.dialect, a.connections, a.duration, a.warmup, a.top, a.build,
                   a.baseline.resolve() if a.baseline else None, a.loop, a.output,
                   tuple(a.callers))


def main(argv: Sequence[str] | None = None) -> int:
    opts = _parse(argv)
    if opts.mode == "stream" and dialects.ALL[opts.dialect].stream_path is None:
        print(f"{opts.dialect} has no streamed form", file=sys.stderr)
        return 2
    try:
        code = build.code_dir(opts.build)
        text = asyncio.run(_main(opts, code))
    except (build.BuildError, procs.NotReadyError, load.LoadError, ValueError) as exc:
        print(f"profile failed: {exc}", file=sys.stderr)
        return 1
    print(text)
    if opts.output is not None:
        opts.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

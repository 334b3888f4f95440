"""Scaling out, checked for correctness at the highest load the machine takes: `serve --workers N`
on SQLite, and N single-process replicas sharing budgets and the ledger on Redis.

    python -m bench.scaleout [--processes 2] [--duration 8] [--cap-usd 0.5]

Each layout serves from the built-in simulator with zero latency (no upstream process
competing for the CPUs) and is driven by wrk at 64 connections in all (split over the
replicas' ports) in two phases:

1. **load**: key `bench-load` (team `load`, no budget in reach) for `--duration` seconds:
   requests/s, and the CPU of every gateway process;
2. **cap**: key `bench-cap` (team `capped`, a `--cap-usd` monthly team budget, `max_tokens`
   set so each call's worst case is small) for 3 seconds, far past the budget.

Then, from `/metrics` (any worker's page carries every worker's series; each replica's its
own): `gateway_requests_total` summed must equal the requests wrk completed plus the checks
sent, and `gateway_cost_usd_total` of team `capped` must not pass the cap. With SQLite each
worker enforces 1/N of the cap (docs/spend.md); on Redis the replicas share it exactly, so
their spend ends close to the cap.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/scaleout.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import yaml

from bench import build, load, procs, targets, workers

LOAD_KEY, CAP_KEY = "sk-bench-load", "sk-bench-cap"
METRICS_TOKEN = "bench-metrics"  # /metrics shows teams and spend, so it needs a token with keys on
CONNECTIONS = 64
CAP_SECONDS = 3.0
MAX_TOKENS = 32  # the cap phase's worst case: prompt + 32 output tokens


def config(storage: dict[str, str], cap_usd: float) -> str:
    def key(alias: str, team: str, secret: str) -> dict[str, str]:
        return {"alias": alias, "team": team, "key_sha256": hashlib.sha256(secret.encode()).hexdigest()}

    return yaml.safe_dump({
        "providers": {"sim": {"kind": "mock", "mock": {
            "latency_ms": 0, "ms_per_chunk": 0, "jitter": 0, "completion_tokens": 20}}},
        "models": {targets.MODEL: {"provider": "sim", "upstream_model": targets.MODEL,
                                   "price_per_mtok": {"input": 2.5, "output": 8}}},
        "keys": [key("bench-load", "load", LOAD_KEY), key("bench-cap", "capped", CAP_KEY)],
        "budgets": [{"name": "cap", "scope": "team", "team": "capped", "window": "month",
                     "limit_usd": cap_usd}],
        "storage": storage,
        "server": {"metrics_token": "${BENCH_METRICS_TOKEN}"},
    }, sort_keys=False)


@contextmanager
def redis_server(work: Path) -> Iterator[tuple[str, int]]:
    """A throwaway redis-server: its URL and pid."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not on the PATH (apt-get install redis-server)")
    port = procs.free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(work),
                             "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield f"redis://127.0.0.1:{port}/0", proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


_SAMPLE = re.compile(r"^(gateway_requests_total|gateway_cost_usd_total)\{([^}]*)\} (\S+)")


@dataclass
class Tally:
    requests: float = 0.0
    by_status: dict[str, float] | None = None
    capped_cost: float = 0.0


def tally(pages: list[str]) -> Tally:
    """Requests by status and team `capped`'s cost, summed over the given /metrics pages."""
    out = Tally(by_status={})
    assert out.by_status is not None
    for page in pages:
        for line in page.splitlines():
            match = _SAMPLE.match(line)
            if match is None:
                continue
            name, labels, value = match.group(1), match.group(2), float(match.group(3))
            if name == "gateway_requests_total":
                out.requests += value
                status = re.search(r'http_response_status_code="(\d+)"', labels)
                code = status.group(1) if status else "?"
                out.by_status[code] = out.by_status.get(code, 0.0) + value
            elif 'gateway_team="capped"' in labels:
                out.capped_cost += value
    return out


@dataclass(frozen=True)
class Result:
    layout: str
    load_rps: float
    load_p50_ms: float
    gateway_cores: float
    wrk_requests: int
    counted: Tally
    cap_usd: float
    cap_ok: int  # 200s in the cap phase
    cap_refused: int
    cut_off: int  # requests wrk may have left in flight when it stopped: its connections x its runs
    redis_us_per_call: float | None = None  # redis-server CPU per call in the load phase

    @property
    def metrics_match(self) -> bool:
        """Every request wrk completed is counted, and no more than those plus the ones in
        flight when each wrk run stopped (the gateway finishes and counts those too)."""
        return self.wrk_requests <= round(self.counted.requests) <= self.wrk_requests + self.cut_off

    @property
    def within_cap(self) -> bool:
        return self.counted.capped_cost <= self.cap_usd + 1e-9


async def _drive(urls: list[str], script: Path, duration_s: float) -> list[load.WrkResult]:
    per = max(1, CONNECTIONS // len(urls))
    return list(await asyncio.gather(*(
        load.run_wrk(url + "/v1/chat/completions", script, connections=per, duration_s=duration_s)
        for url in urls)))


async def _pages(urls: list[str]) -> list[str]:
    async with aiohttp.ClientSession() as session:
        out = []
        for url in urls:
            headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
            async with session.get(url + "/metrics", headers=headers) as response:
                if response.status != 200:
                    raise load.LoadError(f"{url}/metrics answered {response.status}")
                out.append(await response.text())
        return out


async def measure(layout: str, processes: int, duration_s: float, cap_usd: float, work: Path,
                  code: Path) -> Result:
    """One layout: `workers` (one serve --workers N on SQLite) or `redis` (N serves on Redis)."""
    body = {"model": targets.MODEL, "max_tokens": MAX_TOKENS,
            "messages": [{"role": "user", "content": "Say hello"}]}
    load_script = load.write_lua(work / "load.lua", body, LOAD_KEY)
    cap_script = load.write_lua(work / "cap.lua", body, CAP_KEY)
    children: list[procs.Child] = []
    with _storage(layout, work) as (storage, redis_pid):
        path = work / f"{layout}.yaml"
        path.write_text(config(storage, cap_usd))
        count = 1 if layout == "workers" else processes
        extra = ["--workers", str(processes)] if layout == "workers" else []
        port = procs.free_port()
        for i in range(count):
            if layout == "redis":
                port = procs.free_port()
            argv = [sys.executable, "-m", "gateway", "serve", "--config", str(path), "--host",
                    "127.0.0.1", "--port", str(port), *extra]
            env = {**targets.python_env(code), "BENCH_METRICS_TOKEN": METRICS_TOKEN}
            children.append(procs.start(f"scaleout-{layout}-{i}", argv, url=f"http://127.0.0.1:{port}",
                                        log_dir=work / "logs", cwd=code, env=env))
        try:
            for child in children:
                await procs.wait_ready(child, "/health", timeout_s=60)
            if layout == "workers":
                await workers.all_listening(port, processes)
            urls = [c.url for c in children]
            checks = 0
            for url in urls:
                await load.check_answer(url + "/v1/chat/completions", body, LOAD_KEY)
                checks += 1
            warm = await _drive(urls, load_script, 2)
            before = sum(workers.tree_cpu_s(c.pid) for c in children)
            redis_before = workers.tree_cpu_s(redis_pid) if redis_pid else 0.0
            started = time.monotonic()
            loaded = await _drive(urls, load_script, duration_s)
            cores = (sum(workers.tree_cpu_s(c.pid) for c in children) - before) / (time.monotonic() - started)
            redis_cpu = workers.tree_cpu_s(redis_pid) - redis_before if redis_pid else 0.0
            capped = await _drive(urls, cap_script, CAP_SECONDS)
            await asyncio.sleep(2.5)  # workers share their series every second
            pages = await _pages(urls[:1] if layout == "workers" else urls)
        finally:
            for child in children:
                child.stop()
    runs = warm + loaded + capped
    sent = checks + sum(r.requests for r in runs)
    per = max(1, CONNECTIONS // len(children))
    cap_refused = sum(r.errors for r in capped)
    return Result(
        layout=f"{processes} workers, SQLite" if layout == "workers" else f"{processes} replicas, Redis",
        load_rps=sum(r.rps for r in loaded), load_p50_ms=max(r.p50_ms for r in loaded),
        gateway_cores=cores, wrk_requests=sent, counted=tally(pages), cap_usd=cap_usd,
        cap_ok=sum(r.requests for r in capped) - cap_refused, cap_refused=cap_refused,
        cut_off=per * len(runs),
        redis_us_per_call=redis_cpu * 1e6 / max(1, sum(r.requests for r in loaded)) if redis_pid else None)


@contextmanager
def _storage(layout: str, work: Path) -> Iterator[tuple[dict[str, str], int | None]]:
    """The storage section, and the pid of the redis-server if there is one."""
    if layout == "workers":
        yield {"backend": "sqlite", "sqlite_path": str(work / "ledger.sqlite3")}, None
        return
    with redis_server(work) as (url, pid):
        yield {"backend": "redis", "redis_url": url, "redis_prefix": "bench"}, pid


def table(results: list[Result]) -> str:
    lines = ["| layout | req/s (load phase) | p50 ms | gateway cores | requests completed (wrk) "
             "| counted in `gateway_requests_total`, by status | 200 / 429 in the cap phase "
             "| capped team's cost / cap, USD | metrics account for every request | within the cap "
             "| Redis CPU µs/call |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|---|---:|"]
    for r in results:
        lines.append(
            f"| {r.layout} | {r.load_rps:,.0f} | {r.load_p50_ms:.2f} | {r.gateway_cores:.2f} "
            f"| {r.wrk_requests:,} (+ up to {r.cut_off} cut off) | {r.counted.requests:,.0f} "
            f"({', '.join(f'{k}: {v:,.0f}' for k, v in sorted((r.counted.by_status or {}).items()))}) "
            f"| {r.cap_ok:,} / {r.cap_refused:,} "
            f"| {r.counted.capped_cost:.4f} / {r.cap_usd:g} | {'yes' if r.metrics_match else '**NO**'} "
            f"| {'yes' if r.within_cap else '**NO**'} "
            f"| {'-' if r.redis_us_per_call is None else f'{r.redis_us_per_call:.1f}'} |")
    return "\n".join(lines)


async def run(processes: int, duration_s: float, cap_usd: float, layouts: list[str], code: Path) -> str:
    with tempfile.TemporaryDirectory(prefix="bench-scaleout-") as tmp:
        results = []
        for layout in layouts:
            work = Path(tmp) / layout
            work.mkdir()
            result = await measure(layout, processes, duration_s, cap_usd, work, code)
            print(f"{result.layout}: {result.load_rps:,.0f} req/s, {result.gateway_cores:.2f} cores, "
                  f"counted {result.counted.requests:,.0f} of {result.wrk_requests:,}, capped cost "
                  f"{result.counted.capped_cost:.4f} of {cap_usd:g}", flush=True)
            results.append(result)
        return table(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--processes", type=int, default=2, help="workers, and replicas")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of the load phase")
    parser.add_argument("--cap-usd", type=float, default=0.1, help="the capped team's budget")
    parser.add_argument("--layouts", default="workers,redis")
    parser.add_argument("--build", choices=build.CHOICES, default="compiled")
    args = parser.parse_args()
    code = build.code_dir(args.build)
    print(asyncio.run(run(args.processes, args.duration, args.cap_usd, args.layouts.split(","), code)))


if __name__ == "__main__":
    main()

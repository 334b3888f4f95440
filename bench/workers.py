"""Does `serve --workers N` scale? One worker against N, on the built-in simulator.

    python -m bench.workers [--workers 2] [--rounds 3] [--duration 8]

The gateway serves from its simulated provider with zero latency (no upstream
process competing for the CPUs), with a key and a budget on and metrics on
/metrics. wrk drives it at 64 connections; rounds alternate 1 and N workers.
Besides requests/s, each cell reports the CPU the gateway's whole process tree
used (parent, workers, ledger writers) and the CPU wrk used, both in cores, so
the table shows whether the load generator was the limit: on a 2-core machine,
N workers can only use what wrk leaves. `req/s per gateway core` staying flat
from 1 to N workers means nothing is shared between workers that serialises them.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/workers.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml

from bench import build, load, procs, targets

CLIENT_KEY = "sk-bench-client"
_TICKS = os.sysconf("SC_CLK_TCK")


def config(ledger: Path) -> str:
    digest = hashlib.sha256(CLIENT_KEY.encode()).hexdigest()
    return yaml.safe_dump({
        "providers": {"sim": {"kind": "mock", "mock": {
            "latency_ms": 0, "ms_per_chunk": 0, "jitter": 0, "completion_tokens": 20}}},
        "models": {targets.MODEL: {"provider": "sim", "upstream_model": targets.MODEL,
                                   "price_per_mtok": {"input": 2.5, "output": 8}}},
        "keys": [{"alias": "bench", "team": "perf", "key_sha256": digest}],
        "budgets": [{"name": "fuse", "scope": "global", "limit_usd": 1e9}],
        "storage": {"backend": "sqlite", "sqlite_path": str(ledger)},
    }, sort_keys=False)


def tree_cpu_s(root: int) -> float:
    """CPU seconds of `root` and every live descendant."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        times[pid] = (int(fields[11]) + int(fields[12])) / _TICKS
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += times.get(pid, 0.0)
        todo += [child for child, parent in parents.items() if parent == pid]
    return total


def listening_sockets(port: int) -> int:
    """Listening TCP sockets on `port` (one per worker with SO_REUSEPORT)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[1].rsplit(":", 1)[1] == f"{port:04X}" and fields[3] == "0A":
                count += 1
    return count


async def all_listening(port: int, workers: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while listening_sockets(port) < workers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {listening_sockets(port)} of {workers} workers listen")
        await asyncio.sleep(0.1)


@dataclass(frozen=True)
class Cell:
    workers: int
    rps: float
    p50_ms: float
    gateway_cores: float
    wrk_cores: float
    errors: int


async def measure(workers: int, duration_s: float, script: Path, work: Path,
                  code: Path = targets.ROOT) -> Cell:
    port = procs.free_port()
    ledger_dir = Path(tempfile.mkdtemp(dir=work))
    path = ledger_dir / "config.yaml"
    path.write_text(config(ledger_dir / "ledger.sqlite3"))
    argv = [sys.executable, "-m", "gateway", "serve", "--config", str(path), "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers)]
    child = procs.start(f"workers-{workers}", argv, url=f"http://127.0.0.1:{port}",
                        log_dir=work / "logs", cwd=code, env=targets.python_env(code))
    try:
        await procs.wait_ready(child, "/health")
        try:  # /health answers once the first worker is up
            await all_listening(port, workers)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; the gateway's log:\n{child.log_tail(40)}") from None
        url = child.url + "/v1/chat/completions"
        await load.run_wrk(url, script, connections=64, duration_s=2)  # warm every worker
        before_gw = tree_cpu_s(child.pid)
        before_wrk = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        result = await load.run_wrk(url, script, connections=64, duration_s=duration_s)
        elapsed = time.monotonic() - started
        after_wrk = resource.getrusage(resource.RUSAGE_CHILDREN)
        gateway_cores = (tree_cpu_s(child.pid) - before_gw) / elapsed
        wrk_cpu = (after_wrk.ru_utime + after_wrk.ru_stime) - (before_wrk.ru_utime + before_wrk.ru_stime)
        return Cell(workers, result.rps, result.p50_ms, gateway_cores, wrk_cpu / elapsed, result.errors)
    finally:
        child.stop()


def table(cells: list[Cell], workers: int) -> str:
    lines = ["| workers | req/s (median) | p50 ms | gateway cores | wrk cores | req/s per gateway core "
             "| errors |", "|---:|---:|---:|---:|---:|---:|---:|"]
    medians: dict[int, float] = {}
    for count in (1, workers):
        mine = [c for c in cells if c.workers == count]
        rps = statistics.median(c.rps for c in mine)
        medians[count] = rps
        cores = statistics.median(c.gateway_cores for c in mine)
        lines.append(
            f"| {count} | {rps:,.0f} | {statistics.median(c.p50_ms for c in mine):.2f} | {cores:.2f} "
            f"| {statistics.median(c.wrk_cores for c in mine):.2f} | {rps / cores:,.0f} "
            f"| {sum(c.errors for c in mine)} |")
    lines.append("")
    lines.append(f"{workers} workers / 1 worker: {medians[workers] / medians[1]:.2f}x "
                 f"(rounds: {', '.join(f'{c.workers}w {c.rps:,.0f}' for c in cells)}; "
                 f"{os.cpu_count()} CPUs)")
    return "\n".join(lines)


async def run(workers: int, rounds: int, duration_s: float, code: Path = targets.ROOT) -> str:
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        work = Path(tmp)
        body = {"model": targets.MODEL, "messages": [{"role": "user", "content": "Say hello"}]}
        script = load.write_lua(work / "json.lua", body, CLIENT_KEY)
        cells = []
        for _ in range(rounds):
            for count in (1, workers):
                cell = await measure(count, duration_s, script, work, code)
                print(f"{count} worker(s): {cell.rps:,.0f} req/s, gateway {cell.gateway_cores:.2f} "
                      f"cores, wrk {cell.wrk_cores:.2f} cores", flush=True)
                cells.append(cell)
        return table(cells, workers)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per cell")
    parser.add_argument("--build", choices=build.CHOICES, default="compiled")
    args = parser.parse_args()
    code = build.code_dir(args.build)
    print(asyncio.run(run(args.workers, args.rounds, args.duration, code)))


if __name__ == "__main__":
    main()

"""Memory of the gateway under load: peak RSS with 1,000 concurrent streams, and RSS
before and after a 100,000-request soak (performance target), with full telemetry on.

    python -m bench.memory [--streams 1000] [--soak 100000]

Every piece runs in its own process (fake upstream, OTLP sink, gateway); the
streams come from one aiohttp client with no connection limit, the soak from
wrk. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench import build, gateway_config, load, procs, targets

SLOW_MODEL = "bench-slow"
SLOW = {"completion_tokens": 20, "chunk_delay_s": 0.05}  # a stream lasts about a second


def _start_upstream(log_dir: Path) -> procs.Child:
    port = procs.free_port()
    argv = [sys.executable, "-m", "tests.fakes.openai_upstream", "--port", str(port),
            "--api-key", targets.UPSTREAM_KEY, "--any-model", "--completion-tokens", "20",
            "--model-behaviour", f"{SLOW_MODEL}={json.dumps(SLOW)}"]
    return procs.start("upstream", argv, url=f"http://127.0.0.1:{port}", log_dir=log_dir,
                       cwd=targets.ROOT, env=targets.python_env())


def _start_gateway(upstream: procs.Child, sink: procs.Child, work: Path, code: Path) -> procs.Child:
    spec = targets.TargetSpec("gateway", "gateway", "gateway, OTLP export, 100% sampled",
                              targets.UPSTREAM_KEY, {"OTEL_TRACES_SAMPLER": "always_on"})
    config = work / "memory.yaml"
    config.write_text(gateway_config.render(upstream.url, [targets.MODEL, SLOW_MODEL],
                                            ledger=work / "ledger.sqlite3"))
    port = procs.free_port()
    env = targets.python_env(code)
    env.update({
        "BENCH_UPSTREAM_KEY": targets.UPSTREAM_KEY,
        "OTEL_SERVICE_NAME": "llm-gateway-bench",
        "OTEL_EXPORTER_OTLP_ENDPOINT": sink.url,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_METRIC_EXPORT_INTERVAL": "10000",
        **spec.env,
    })
    argv = [sys.executable, "-m", "gateway", "serve", "--config", str(config),
            "--host", "127.0.0.1", "--port", str(port)]
    return procs.start("gateway", argv, url=f"http://127.0.0.1:{port}", log_dir=work, cwd=code,
                       env=env)


async def _one_stream(http: aiohttp.ClientSession, url: str) -> bool:
    body = {"model": SLOW_MODEL, "stream": True,
            "messages": [{"role": "user", "content": "stream please"}]}
    async with http.post(url, json=body) as resp:
        data = await resp.read()
    return resp.status == 200 and data.endswith(b"data: [DONE]\n\n")


async def concurrent_streams(base_url: str, count: int) -> int:
    """Open `count` streams at once and read each to its end; returns how many completed."""
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        url = f"{base_url}/v1/chat/completions"
        results = await asyncio.gather(*(_one_stream(http, url) for _ in range(count)),
                                       return_exceptions=True)
    return sum(1 for r in results if r is True)


async def soak(base_url: str, script: Path, total: int) -> int:
    """Send at least `total` non-streamed requests with wrk (32 connections); returns the count."""
    sent = 0
    while sent < total:
        result = await load.run_wrk(f"{base_url}/v1/chat/completions", script, connections=32,
                                    duration_s=10)
        if result.errors:
            raise load.LoadError(f"{result.errors} of {result.requests} soak requests failed")
        sent += result.requests
    return sent


def measure(streams: int, soak_total: int, code: Path = targets.ROOT) -> str:
    """Run the memory measurements on the gateway imported from `code`; a markdown table."""
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        work = Path(tmp)
        upstream = _start_upstream(work)
        sink = targets.start_sink(work)
        gateway = _start_gateway(upstream, sink, work, code)
        try:
            auth = {"Authorization": f"Bearer {targets.UPSTREAM_KEY}"}
            asyncio.run(procs.wait_ready(upstream, "/v1/models", headers=auth))
            asyncio.run(procs.wait_ready(sink, "/stats"))
            asyncio.run(procs.wait_ready(gateway, "/health"))
            body = {"model": targets.MODEL, "messages": [{"role": "user", "content": "hi"}]}
            script = load.write_lua(work / "soak.lua", body, "sk-bench")
            idle, _ = gateway.rss_mb()
            started = time.perf_counter()
            done = asyncio.run(concurrent_streams(gateway.url, streams))
            streams_s = time.perf_counter() - started
            after_streams, peak = gateway.rss_mb()
            warm = asyncio.run(soak(gateway.url, script, min(10_000, soak_total)))
            before_soak, _ = gateway.rss_mb()
            soaked = asyncio.run(soak(gateway.url, script, soak_total))
            after_soak, peak_all = gateway.rss_mb()
        finally:
            for child in (gateway, sink, upstream):
                child.stop()
    return "\n".join([
        "| measure | value |", "|---|---:|",
        f"| RSS idle | {idle:.0f} MB |",
        f"| {streams} concurrent streams completed | {done} in {streams_s:.1f} s |",
        f"| peak RSS during the streams | {peak:.0f} MB |",
        f"| RSS after the streams | {after_streams:.0f} MB |",
        f"| RSS after {warm:,} warm-up requests | {before_soak:.0f} MB |",
        f"| RSS after {soaked:,} more requests | {after_soak:.0f} MB "
        f"({after_soak - before_soak:+.1f} MB) |",
        f"| peak RSS overall | {peak_all:.0f} MB |",
        "",
        _check(f"peak RSS with {streams} concurrent streams <= 150 MB (performance target)", peak <= 150),
        _check("RSS growth over the soak <= 5 MB (performance target: none beyond noise)",
               after_soak - before_soak <= 5),
    ])


def _check(text: str, ok: bool) -> str:
    return f"- [{'x' if ok else ' '}] {text}: {'met' if ok else 'NOT met'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--soak", type=int, default=100_000)
    parser.add_argument("--build", choices=build.CHOICES, default="compiled")
    args = parser.parse_args()
    print(measure(args.streams, args.soak, build.code_dir(args.build)))


if __name__ == "__main__":
    main()

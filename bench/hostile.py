"""Measures what a hostile upstream costs the gateway: CPU seconds, /health latency
during the attack, peak and final RSS (docs/security.md has the numbers).

    python -m bench.hostile [scenario ...]

Each scenario starts a fresh `python -m gateway serve` in front of a hostile upstream
(its own process, so its CPU is not counted), sends one call, polls /health every
50 ms while the call runs, and reads the gateway's CPU time and memory from /proc.
Linux only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import aiohttp
from aiohttp import web

MB = 1 << 20
SCENARIOS = ("comments", "big_event", "huge_json", "gzip_bomb")


# --- the hostile upstream ---------------------------------------------------------------

async def _comments(request: web.Request) -> web.StreamResponse:
    """64 MB of SSE comment lines before any data, in one event (no blank line)."""
    out = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await out.prepare(request)
    block = b": keep-alive padding padding padding padding padding\n" * 1200
    sent = 0
    while sent < 64 * MB:
        await out.write(block)
        sent += len(block)
    await out.write(b'\ndata: {"id":"x","object":"chat.completion.chunk","model":"m",'
                    b'"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}\n\n'
                    b"data: [DONE]\n\n")
    return out


async def _big_event(request: web.Request) -> web.StreamResponse:
    """A normal first event, then one 52 MB event sent in 64 KB writes."""
    out = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await out.prepare(request)
    await out.write(b'data: {"id":"x","object":"chat.completion.chunk","model":"m",'
                    b'"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\n\n')
    await out.write(b'data: {"id":"x","choices":[{"index":0,"delta":{"content":"')
    block = b"y" * (64 * 1024)
    for _ in range(52 * 16):
        await out.write(block)
    await out.write(b'"},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n')
    return out


async def _huge_json(request: web.Request) -> web.StreamResponse:
    """A JSON answer that keeps growing (2 GB) without ending."""
    out = web.StreamResponse(headers={"content-type": "application/json"})
    await out.prepare(request)
    await out.write(b'{"id":"x","choices":[{"message":{"content":"')
    block = b"z" * MB
    for _ in range(2048):
        await out.write(block)
    await out.write(b'"}}]}')
    return out


def _bomb() -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [packer.compress(b'{"id":"x","choices":[{"message":{"content":"')]
    block = b"0" * MB
    parts.extend(packer.compress(block) for _ in range(512))
    parts.append(packer.compress(b'"}}]}'))
    parts.append(packer.flush())
    return b"".join(parts)


def upstream_app() -> web.Application:
    bomb = _bomb()

    async def gzip_bomb(request: web.Request) -> web.Response:
        """512 MB of JSON as a gzip response of about half a megabyte."""
        return web.Response(body=bomb, headers={"content-type": "application/json",
                                                "content-encoding": "gzip"})

    handlers = {"comments": _comments, "big_event": _big_event, "huge_json": _huge_json,
                "gzip_bomb": gzip_bomb}

    async def chat(request: web.Request) -> web.StreamResponse:
        await request.read()
        return await handlers[request.match_info["scenario"]](request)

    app = web.Application()
    app.router.add_post("/{scenario}/chat/completions", chat)
    return app


# --- the measurement --------------------------------------------------------------------

def _proc(pid: int) -> tuple[float, int, int]:
    """CPU seconds, peak RSS and current RSS (bytes) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return cpu, int(status["VmHWM"].split()[0]) * 1024, int(status["VmRSS"].split()[0]) * 1024


CONFIG = """
providers:
  bad:
    kind: openai
    base_url: "http://127.0.0.1:{port}/{scenario}"
    api_key: "${{HOSTILE_KEY}}"
    timeout_s: 60
models:
  m:
    provider: bad
    price_per_mtok: {{input: 1, output: 1}}
    request_timeout_s: 20
"""


async def _health_probe(root: str, stop: asyncio.Event) -> float:
    worst = 0.0
    async with aiohttp.ClientSession() as http:
        while not stop.is_set():
            began = time.perf_counter()
            try:
                async with http.get(f"{root}/health", timeout=aiohttp.ClientTimeout(total=30)) as r:
                    await r.read()
            except aiohttp.ClientError:
                pass
            worst = max(worst, time.perf_counter() - began)
            await asyncio.sleep(0.05)
    return worst


async def measure(scenario: str, upstream_port: int) -> dict[str, float | str]:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp, "gateway.yaml")
        config.write_text(CONFIG.format(port=upstream_port, scenario=scenario))
        port = 18000 + os.getpid() % 1000
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "GATEWAY_"))}
        env.update(HOSTILE_KEY="sk-hostile-bench", OTEL_SDK_DISABLED="true",
                   GATEWAY_SQLITE_PATH=str(Path(tmp, "g.sqlite3")))
        proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--port", str(port),
                                 "--config", str(config)], env=env, cwd=tmp,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        root = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as http:
                for _ in range(200):
                    try:
                        async with http.get(f"{root}/health") as r:
                            if r.status == 200:
                                break
                    except aiohttp.ClientError:
                        await asyncio.sleep(0.1)
                cpu0, _, rss0 = _proc(proc.pid)
                stop = asyncio.Event()
                probe = asyncio.create_task(_health_probe(root, stop))
                body = {"model": "m", "messages": [{"role": "user", "content": "hi"}],
                        "stream": scenario in ("comments", "big_event")}
                began = time.perf_counter()
                async with http.post(f"{root}/v1/chat/completions", json=body,
                                     timeout=aiohttp.ClientTimeout(total=120)) as r:
                    answer = await r.read()
                    received, status = len(answer), r.status
                elapsed = time.perf_counter() - began
                await asyncio.sleep(1.0)  # memory after the answer
                stop.set()
                worst = await probe
                cpu1, peak, rss1 = _proc(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    return {"scenario": scenario, "status": status, "client_bytes": received,
            "answer_end": answer[-160:].decode("utf-8", "replace"),
            "elapsed_s": round(elapsed, 2), "cpu_s": round(cpu1 - cpu0, 2),
            "health_worst_s": round(worst, 3), "rss_before_mb": round(rss0 / MB),
            "rss_peak_mb": round(peak / MB), "rss_after_mb": round(rss1 / MB)}


async def main_async(scenarios: list[str]) -> None:
    port = 17000 + os.getpid() % 1000
    upstream = subprocess.Popen([sys.executable, "-m", "bench.hostile", "--upstream", str(port)])
    try:
        await asyncio.sleep(4.0)  # the bomb takes a moment to build
        for scenario in scenarios:
            print(await measure(scenario, port), flush=True)
    finally:
        upstream.terminate()
        upstream.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", choices=[*SCENARIOS, []], default=[])
    parser.add_argument("--upstream", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.upstream:
        web.run_app(upstream_app(), host="127.0.0.1", port=args.upstream, print=None)
        return
    asyncio.run(main_async(args.scenarios or list(SCENARIOS)))


if __name__ == "__main__":
    main()

"""Load generation: wrk for throughput and latency, a small aiohttp client for time to first chunk.

wrk runs as its own process with a Lua script that sets the POST body and
prints its summary as one JSON line, so nothing is parsed from human text.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

_MARK = "BENCH_JSON "

_LUA = """\
wrk.method = "POST"
wrk.body = [==[{body}]==]
{headers}

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{mark}{{"requests":%d,"duration_us":%d,"bytes":%d,'
    .. '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,'
    .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f}}\\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean))
end
"""


def write_lua(path: Path, body: dict[str, Any], api_key: str,
              headers: dict[str, str] | None = None) -> Path:
    """wrk's script: POST `body` with `headers` (default: JSON and the key as a bearer token)."""
    text = json.dumps(body, separators=(",", ":"))
    if headers is None:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"}
    lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    path.write_text(_LUA.format(body=text, headers=lines, mark=_MARK))
    return path


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: int
    bytes: int

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0


class LoadError(RuntimeError):
    """wrk failed or printed no summary."""


class NotServedError(LoadError):
    """The target answered 404 for the path: it does not serve that dialect (yet)."""


async def run_wrk(
    url: str, script: Path, *, connections: int, duration_s: float, timeout_s: float = 10.0
) -> WrkResult:
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        f"--timeout={round(timeout_s)}s",
        "-s",
        str(script),
        url,
    ]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    for line in out.decode(errors="replace").splitlines():
        if line.startswith(_MARK):
            return _parse(json.loads(line[len(_MARK) :]))
    raise LoadError(f"wrk exited {proc.returncode}: {err.decode(errors='replace')}{out.decode()}")


def _parse(raw: dict[str, Any]) -> WrkResult:
    errors = sum(int(raw[k]) for k in ("connect", "read", "write", "status", "timeout"))
    return WrkResult(
        requests=int(raw["requests"]),
        duration_s=int(raw["duration_us"]) / 1e6,
        p50_ms=int(raw["p50_us"]) / 1000,
        p90_ms=int(raw["p90_us"]) / 1000,
        p99_ms=int(raw["p99_us"]) / 1000,
        errors=errors,
        bytes=int(raw["bytes"]),
    )


# --- time to first chunk --------------------------------------------------


@dataclass(frozen=True)
class TtfcResult:
    samples: int
    ttfc_p50_ms: float
    ttfc_p99_ms: float
    last_p50_ms: float
    events_p50: float


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


@dataclass
class TtfcSamples:
    """Per-stream timings in ms; batches from several rounds are merged before summarising."""

    first_ms: list[float] = field(default_factory=list)
    last_ms: list[float] = field(default_factory=list)
    events: list[float] = field(default_factory=list)

    def extend(self, other: TtfcSamples) -> None:
        self.first_ms += other.first_ms
        self.last_ms += other.last_ms
        self.events += other.events

    def summary(self) -> TtfcResult | None:
        if not self.first_ms:
            return None
        return TtfcResult(
            samples=len(self.first_ms),
            ttfc_p50_ms=_percentile(self.first_ms, 50),
            ttfc_p99_ms=_percentile(self.first_ms, 99),
            last_p50_ms=_percentile(self.last_ms, 50),
            events_p50=statistics.median(self.events),
        )


async def _one_stream(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> tuple[float, float, int]:
    """(time to the first complete SSE event, time to the end, number of events)."""
    started = time.perf_counter()
    async with session.post(url, data=body, headers=headers) as response:
        if response.status != 200:
            raise LoadError(f"stream answered {response.status}: {await response.text()}")
        await response.content.readuntil(b"\n\n")
        first_at = time.perf_counter() - started
        rest = await response.read()
    last_at = time.perf_counter() - started
    return first_at, last_at, 1 + rest.count(b"\n\n")


async def measure_ttfc(
    url: str, body: dict[str, Any], headers: dict[str, str], *, requests: int, warmup: int = 10
) -> TtfcSamples:
    """Sequential streams over one keep-alive connection, like a single interactive user."""
    payload = json.dumps(body).encode()
    connector = aiohttp.TCPConnector(limit=1)
    samples = TtfcSamples()
    async with aiohttp.ClientSession(connector=connector) as session:
        for i in range(warmup + requests):
            first, last, n_events = await _one_stream(session, url, payload, headers)
            if i >= warmup:
                samples.first_ms.append(first * 1000)
                samples.last_ms.append(last * 1000)
                samples.events.append(n_events)
    return samples


async def check_answer(url: str, body: dict[str, Any], api_key: str,
                       headers: dict[str, str] | None = None, stream_end: bytes = b"[DONE]") -> None:
    """One request before measuring, so a misconfigured target fails loudly instead of fast;
    a 404 raises NotServedError (the target does not serve this path)."""
    headers = headers if headers is not None else {"Authorization": f"Bearer {api_key}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=body, headers=headers) as response,
    ):
        raw = await response.read()
        text = raw.decode(errors="replace")
        if response.status == 404:
            raise NotServedError(f"{url} answered 404: {text[:300]}")
        if response.status != 200:
            raise LoadError(f"{url} answered {response.status}: {text[:500]}")
        streamed = body.get("stream") is True or "alt=sse" in url
        if streamed and stream_end not in raw:
            raise LoadError(f"{url} stream ended without {stream_end.decode()}: {text[-300:]}")

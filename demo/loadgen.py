"""A load generator that makes the demo dashboard look like production.

The docker-compose stack runs it against the gateway's built-in simulated
provider, so every panel and alert has data without an API key:

    python demo/loadgen.py --url http://gateway:8080 --rps 5 [--duration 60]

The mix: the four default models (gpt-4.1, claude-sonnet-4.5,
gemini-2.5-flash, deepseek-v3.2), about 40% streamed with
`stream_options.include_usage`, prompts from a few words to a couple of
thousand (long ones exercise cached-token accounting), a few client errors (an
unknown model -> 404, a malformed body -> 400), a few upstream errors forced
with the simulated provider's `x-mock-error` header (500/503/429), and a slow
model whose calls get 2.5-6 s of extra latency through `x-mock-latency-ms`
(enough to trip the p95 latency alert after five minutes, on purpose).

Arrivals are open-loop (Poisson at --rps) but bounded: at most
--max-in-flight requests run at once and arrivals beyond that are counted as
skipped, never queued. Only aiohttp's client is used; the module imports
nothing else from the gateway, so it also runs against a remote deployment.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import aiohttp
import orjson

_log = logging.getLogger("loadgen")

MODELS: tuple[str, ...] = ("gpt-4.1", "claude-sonnet-4.5", "gemini-2.5-flash", "deepseek-v3.2")
MODEL_WEIGHTS: tuple[float, ...] = (0.30, 0.25, 0.25, 0.20)
DEFAULT_SLOW_MODEL = "claude-sonnet-4.5"
UNKNOWN_MODEL = "gpt-5-typo-does-not-exist"
CHAT_PATH = "/v1/chat/completions"
_VOCABULARY = (
    "summarise the incident report and list the three most likely root causes "
    "translate this paragraph into formal english keeping the product names "
    "write a sql query that returns monthly revenue per region for last year "
    "explain why the latency of the checkout service doubled after the deploy "
    "draft a polite reply to the customer asking for an invoice correction"
).split()


@dataclass(frozen=True)
class MixSettings:
    """Shares of each kind of request (the rest are ordinary chat calls)."""

    stream_share: float = 0.40
    slow_share: float = 0.08
    slow_model: str = DEFAULT_SLOW_MODEL
    slow_latency_ms: tuple[int, int] = (2500, 6000)
    upstream_error_share: float = 0.03
    unknown_model_share: float = 0.015
    malformed_share: float = 0.015


@dataclass(frozen=True)
class Shot:
    """One request to send: what kind it is, its headers and raw body."""

    kind: str
    model: str
    stream: bool
    headers: Mapping[str, str]
    body: bytes


@dataclass
class Stats:
    """Outcome counters, printed periodically and at the end."""

    by_outcome: Counter[str] = field(default_factory=Counter)
    skipped: int = 0
    sent: int = 0
    chunks: int = 0
    started: float = field(default_factory=time.monotonic)

    def record(self, kind: str, status: int | str) -> None:
        self.by_outcome[f"{kind}:{status}"] += 1

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        outcomes = " ".join(f"{key}={count}" for key, count in sorted(self.by_outcome.items()))
        return (
            f"sent={self.sent} ({self.sent / elapsed:.2f}/s) skipped={self.skipped} "
            f"stream_chunks={self.chunks} {outcomes}"
        )


def _prompt(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.70:
        words = rng.randint(8, 150)
    elif roll < 0.95:
        words = rng.randint(150, 700)
    else:
        words = rng.randint(1200, 2500)
    return " ".join(rng.choice(_VOCABULARY) for _ in range(words))


def _chat_body(rng: random.Random, model: str, stream: bool) -> dict[str, object]:
    body: dict[str, object] = {
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a concise assistant for an operations team."},
            {"role": "user", "content": _prompt(rng)},
        ],
        "temperature": round(rng.uniform(0.0, 1.0), 2),
    }
    if rng.random() < 0.6:
        body["max_tokens"] = rng.choice((64, 128, 256, 512))
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def next_shot(rng: random.Random, mix: MixSettings) -> Shot:
    """Draw the next request of the mix (pure: depends only on the RNG)."""
    headers = {"content-type": "application/json"}
    roll = rng.random()
    stream = rng.random() < mix.stream_share
    edges = (
        mix.malformed_share,
        mix.malformed_share + mix.unknown_model_share,
        mix.malformed_share + mix.unknown_model_share + mix.upstream_error_share,
        mix.malformed_share + mix.unknown_model_share + mix.upstream_error_share + mix.slow_share,
    )
    if roll < edges[0]:
        return Shot("malformed", "-", False, headers, b'{"model": "gpt-4.1", "messages": [')
    if roll < edges[1]:
        body = _chat_body(rng, UNKNOWN_MODEL, False)
        return Shot("unknown_model", UNKNOWN_MODEL, False, headers, orjson.dumps(body))
    model = rng.choices(MODELS, weights=MODEL_WEIGHTS)[0]
    if roll < edges[2]:
        status = rng.choices(("500", "503", "429"), weights=(0.6, 0.2, 0.2))[0]
        body = _chat_body(rng, model, stream)
        error_headers = {**headers, "x-mock-error": status}
        return Shot("upstream_error", model, stream, error_headers, orjson.dumps(body))
    if roll < edges[3]:
        latency = rng.randint(*mix.slow_latency_ms)
        slow_headers = {**headers, "x-mock-latency-ms": str(latency)}
        body = _chat_body(rng, mix.slow_model, stream)
        return Shot("slow", mix.slow_model, stream, slow_headers, orjson.dumps(body))
    return Shot("chat", model, stream, headers, orjson.dumps(_chat_body(rng, model, stream)))


async def _drain_stream(response: aiohttp.ClientResponse) -> int:
    """Read an SSE body to its end; returns the number of data events."""
    events = 0
    async for raw in response.content:
        line = raw.strip()
        if not line.startswith(b"data:"):
            continue
        if line == b"data: [DONE]":
            break
        events += 1
    return events


async def send(
    session: aiohttp.ClientSession, url: str, shot: Shot, api_key: str | None, stats: Stats
) -> None:
    """Send one request and record its outcome; never raises for HTTP or network errors."""
    headers = dict(shot.headers)
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    try:
        async with session.post(url + CHAT_PATH, data=shot.body, headers=headers) as response:
            if response.status == 200 and shot.stream:
                stats.chunks += await _drain_stream(response)
            else:
                await response.read()
            stats.record(shot.kind, response.status)
    except (aiohttp.ClientError, TimeoutError) as exc:
        stats.record(shot.kind, type(exc).__name__)


async def wait_until_healthy(session: aiohttp.ClientSession, url: str, timeout_s: float) -> bool:
    """Poll /health until it answers 200 or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with session.get(url + "/health") as response:
                if response.status == 200:
                    return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(1.0)


@dataclass(frozen=True)
class RunSettings:
    """What `run` needs, independent of argparse."""

    url: str
    rps: float
    duration_s: float | None = None
    max_requests: int | None = None
    max_in_flight: int = 64
    api_keys: tuple[str, ...] = ()
    report_every_s: float = 30.0
    wait_s: float = 60.0
    seed: int | None = None
    mix: MixSettings = field(default_factory=MixSettings)


async def run(settings: RunSettings, stop: asyncio.Event | None = None) -> Stats:
    """Generate load until the duration, the request count or `stop` ends it."""
    stop = stop or asyncio.Event()
    rng = random.Random(settings.seed)
    stats = Stats()
    url = settings.url.rstrip("/")
    timeout = aiohttp.ClientTimeout(total=120, sock_connect=10)
    connector = aiohttp.TCPConnector(limit=settings.max_in_flight)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        if not await wait_until_healthy(session, url, settings.wait_s):
            raise RuntimeError(f"{url}/health did not answer 200 within {settings.wait_s:.0f}s")
        _log.info("driving %s at %.2f req/s", url, settings.rps)
        in_flight: set[asyncio.Task[None]] = set()
        deadline = None if settings.duration_s is None else time.monotonic() + settings.duration_s
        next_report = time.monotonic() + settings.report_every_s
        while not stop.is_set():
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            if settings.max_requests is not None and stats.sent + stats.skipped >= settings.max_requests:
                break
            if now >= next_report:
                _log.info("%s", stats.line())
                next_report = now + settings.report_every_s
            if len(in_flight) >= settings.max_in_flight:
                stats.skipped += 1
            else:
                key = rng.choice(settings.api_keys) if settings.api_keys else None
                task = asyncio.create_task(send(session, url, next_shot(rng, settings.mix), key, stats))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                stats.sent += 1
            pause = rng.expovariate(settings.rps)
            if deadline is not None:
                pause = min(pause, max(deadline - time.monotonic(), 0.0))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=pause)
        if in_flight:
            _, pending = await asyncio.wait(in_flight, timeout=30)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
    _log.info("done: %s", stats.line())
    return stats


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python demo/loadgen.py",
        description="Drive the LLM gateway with a realistic request mix.",
    )
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="gateway base URL")
    parser.add_argument("--rps", type=float, default=5.0, help="mean requests per second")
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument("--requests", type=int, help="stop after this many requests")
    parser.add_argument("--max-in-flight", type=int, default=64, help="concurrency cap")
    parser.add_argument(
        "--api-key",
        action="append",
        default=None,
        help="gateway key to send (repeat to rotate; default: $LOADGEN_API_KEYS, comma-separated)",
    )
    parser.add_argument("--slow-model", default=DEFAULT_SLOW_MODEL, help="model made slow")
    parser.add_argument("--slow-share", type=float, default=0.08, help="share of slow requests")
    parser.add_argument("--error-share", type=float, default=0.03, help="forced upstream errors")
    parser.add_argument("--stream-share", type=float, default=0.40, help="share streamed")
    parser.add_argument("--report-every", type=float, default=30.0, help="seconds between reports")
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for /health")
    parser.add_argument("--seed", type=int, help="random seed for a repeatable mix")
    return parser


def settings_from_args(argv: Sequence[str], environ: Mapping[str, str]) -> RunSettings:
    """Parse the command line (and $LOADGEN_API_KEYS) into RunSettings."""
    args = _parser().parse_args(list(argv))
    if args.rps <= 0:
        raise SystemExit("--rps must be positive")
    keys = args.api_key or [k.strip() for k in environ.get("LOADGEN_API_KEYS", "").split(",")]
    mix = MixSettings(
        stream_share=args.stream_share,
        slow_share=args.slow_share,
        slow_model=args.slow_model,
        upstream_error_share=args.error_share,
    )
    return RunSettings(
        url=args.url,
        rps=args.rps,
        duration_s=args.duration,
        max_requests=args.requests,
        max_in_flight=max(1, args.max_in_flight),
        api_keys=tuple(k for k in keys if k),
        report_every_s=args.report_every,
        wait_s=args.wait,
        seed=args.seed,
        mix=mix,
    )


async def _main(settings: RunSettings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    try:
        await run(settings, stop)
    except RuntimeError as exc:
        _log.error("%s", exc)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings_from_args(sys.argv[1:] if argv is None else argv, os.environ)
    return asyncio.run(_main(settings))


if __name__ == "__main__":
    raise SystemExit(main())

"""Which fast paths run, decided once at start.

Each fast path has one switch, and `GATEWAY_FAST_PATHS=false` turns them all
off. The three that read the OpenTelemetry SDK's private attributes (lite
spans, hot metrics, the OTLP span encoder) also turn themselves off when the
installed SDK or API is outside the minor versions they were tested against
(`TESTED_SDK`, the same range as pyproject.toml's pin), or when their own
self-check fails at start; the gateway then runs on the SDK's own span,
instrument and exporter classes and says so in one log line.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata

from gateway.fastpaths import selfcheck
from gateway.fastpaths.hotmetrics import fits as hot_metrics_fit
from gateway.fastpaths.litespan import limits_set

_log = logging.getLogger("gateway.fastpaths")

# The OpenTelemetry SDK and API minor versions the fast paths were tested against:
# >= 1.45, < 1.46 (pyproject.toml pins the same range; a test keeps the two equal).
TESTED_SDK = ((1, 45), (1, 46))
SDK_DISTRIBUTIONS = ("opentelemetry-sdk", "opentelemetry-api")

ALL = "GATEWAY_FAST_PATHS"
HTTP_CLIENT = "GATEWAY_HTTP_CLIENT"  # "aiohttp" switches the gateway's own client off
HTTP_CLIENT_SPANS = "GATEWAY_HTTP_CLIENT_SPANS"  # aiohttp's instrumentation needs its client
COARSE_TIMERS = "GATEWAY_COARSE_TIMERS"
LITE_SPANS = "GATEWAY_LITE_SPANS"
HOT_METRICS = "GATEWAY_FAST_METRICS"
OTLP_EXPORT = "GATEWAY_OTLP_FAST_EXPORT"
ENCODE_ON_END = "GATEWAY_OTLP_ENCODE_ON_END"


@dataclass(frozen=True, slots=True)
class FastPaths:
    """The fast paths in use (True) or replaced by the library's own code (False)."""

    http_client: bool = True  # httpclient/ for upstream calls, else aiohttp's ClientSession
    coarse_timers: bool = True  # timers.py, else the loop's own call_at
    lite_spans: bool = True  # litespan.py, else the SDK's tracer and spans
    hot_metrics: bool = True  # hotmetrics.py, else the SDK's instruments
    otlp_export: bool = True  # fastexport.py, else the SDK's OTLP span exporters
    encode_on_end: bool = True  # fastexport's PreEncodingSpanProcessor, else the SDK's batching
    fallback: str | None = None  # why the SDK-dependent ones stepped aside by themselves

    def describe(self) -> str:
        """One line for `check-config` and the start-up log."""
        names = {"http_client": "HTTP client", "coarse_timers": "coarse timers",
                 "lite_spans": "lite spans", "hot_metrics": "hot metrics",
                 "otlp_export": "OTLP span encoder"}
        on = [label for name, label in names.items() if getattr(self, name)]
        off = [label for name, label in names.items() if not getattr(self, name)]
        return f"on: {', '.join(on) or 'none'}; off: {', '.join(off) or 'none'}"


def _off(environ: Mapping[str, str], name: str) -> bool:
    return environ.get(name, "").strip().lower() == "false"


def _minor(version: str) -> tuple[int, int] | None:
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match[1]), int(match[2])) if match else None


@functools.cache
def installed_sdk_versions() -> dict[str, str | None]:
    """The installed version of each SDK distribution the fast paths depend on (read once:
    what is imported does not change while the process runs)."""
    found: dict[str, str | None] = {}
    for name in SDK_DISTRIBUTIONS:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def untested_sdk(versions: Mapping[str, str | None]) -> str | None:
    """Why `versions` are outside TESTED_SDK, or None when they are all within it."""
    low, high = TESTED_SDK
    tested = f">={low[0]}.{low[1]},<{high[0]}.{high[1]}"
    for name, version in versions.items():
        minor = _minor(version) if version else None
        if minor is None or not low <= minor < high:
            return f"{name} {version or '(not found)'} is outside the tested range {tested}"
    return None


@functools.cache
def _self_check(name: str) -> str | None:
    """The failure of one fast path's self-check, or None; run once per process."""
    checks: dict[str, Callable[[], None]] = {
        "lite_spans": selfcheck.lite_spans, "hot_metrics": selfcheck.hot_metrics,
        "otlp_export": selfcheck.otlp_export}
    try:
        checks[name]()
    except Exception as error:  # any failure means: do not trust it on this SDK
        return f"{type(error).__name__}: {error}"
    return None


def select(environ: Mapping[str, str],
           sdk_versions: Mapping[str, str | None] | None = None,
           self_check: Callable[[str], str | None] | None = None) -> FastPaths:
    """The fast paths for this environment and this SDK (`sdk_versions`: the installed
    ones unless given; `self_check`: a fast path's name -> its failure or None, the
    checks in selfcheck.py unless given)."""
    check = _self_check if self_check is None else self_check
    if _off(environ, ALL):
        return FastPaths(False, False, False, False, False, False)
    http_client = not (environ.get(HTTP_CLIENT, "").strip().lower() == "aiohttp"
                       or environ.get(HTTP_CLIENT_SPANS, "").strip().lower() == "true")
    coarse_timers = not _off(environ, COARSE_TIMERS)
    wanted = {
        # lite spans and hot metrics step aside where their output would differ
        "lite_spans": not _off(environ, LITE_SPANS) and not limits_set(environ),
        "hot_metrics": not _off(environ, HOT_METRICS) and hot_metrics_fit(environ),
        "otlp_export": not _off(environ, OTLP_EXPORT),
    }
    fallback = None
    if any(wanted.values()):
        fallback = untested_sdk(installed_sdk_versions() if sdk_versions is None
                                else sdk_versions)
        if fallback is not None:
            wanted = dict.fromkeys(wanted, False)
        errors = {name: check(name) for name, on in wanted.items() if on}
        failed = [f"{name} ({error})" for name, error in errors.items() if error is not None]
        if failed:
            fallback = "self-check failed: " + "; ".join(failed)
            wanted = {name: on and errors[name] is None for name, on in wanted.items()}
    return FastPaths(http_client=http_client, coarse_timers=coarse_timers,
                     lite_spans=wanted["lite_spans"], hot_metrics=wanted["hot_metrics"],
                     otlp_export=wanted["otlp_export"],
                     encode_on_end=wanted["otlp_export"] and not _off(environ, ENCODE_ON_END),
                     fallback=fallback)


def log_fallback(fast: FastPaths) -> None:
    """The one log line for fast paths that stepped aside by themselves."""
    if fast.fallback is not None:
        _log.warning("fast paths: using the OpenTelemetry SDK's own span, metric and exporter "
                     "classes where ours stepped aside (%s); %s", fast.fallback, fast.describe())

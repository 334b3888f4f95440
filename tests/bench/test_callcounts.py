"""The profile tool's counting: a cProfile dump read back as calls a request, by function and
package, the gateway's own interpreted functions told apart, two builds side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import callcounts
from bench.callcounts import BUILTIN, FuncKey

SITE = "/venv/lib/python3.11/site-packages"
CODE = Path("/work/tree/.build/bench-compiled")


def _entry(calls: int) -> tuple[Any, ...]:
    """A pstats entry: (primitive calls, all calls, own time, cumulative time, callers)."""
    return (calls, calls, 0.001, 0.002, {})


def test_where_shortens_library_stdlib_tree_and_builtin_files() -> None:
    """Installed packages and the standard library read from their package down, the
    gateway's files from its code root, built-ins as such."""
    assert callcounts.where(f"{SITE}/aiohttp/web_request.py") == "aiohttp/web_request.py"
    assert callcounts.where("/usr/lib/python3.11/asyncio/events.py") == "asyncio/events.py"
    assert callcounts.where(f"{CODE}/gateway/edge/proxy.py", [CODE]) == "gateway/edge/proxy.py"
    assert callcounts.where("~") == BUILTIN


def test_calls_are_divided_by_requests_and_merged_by_file_and_name() -> None:
    """Two entries of one name in one file (other lines: another build) count as one function,
    and every count is over the requests."""
    stats: dict[FuncKey, tuple[Any, ...]] = {
        (f"{SITE}/aiohttp/web_request.py", 454, "scheme"): _entry(100),
        (f"{CODE}/gateway/telemetry/setup.py", 10, "__init__"): _entry(50),
        (f"{CODE}/gateway/telemetry/setup.py", 90, "__init__"): _entry(50),
        ("~", 0, "<method 'get' of 'dict' objects>"): _entry(300),
    }
    prof = callcounts.profile("gateway", stats, 100, [CODE])
    assert [(r.label, r.per_request) for r in prof.rows] == [
        ("<method 'get' of 'dict' objects>", 3.0),
        ("aiohttp/web_request.py:scheme", 1.0),
        ("gateway/telemetry/setup.py:__init__", 1.0),
    ]
    assert prof.total() == 5.0
    assert prof.total(python=True) == 2.0
    assert prof.total(python=False) == 3.0
    assert prof.total(gateway=True) == 1.0
    assert prof.by_package() == {BUILTIN: 3.0, "aiohttp": 1.0, "gateway": 1.0}


def test_no_requests_is_an_error() -> None:
    """A window in which no request completed has no calls a request to give."""
    with pytest.raises(ValueError, match="no requests"):
        callcounts.profile("gateway", {}, 0)


def test_report_puts_two_builds_side_by_side_with_the_difference() -> None:
    """Each function gets a column per build and their difference; one only a build ran
    reads 0.00 in the other; the gateway's own functions get their table."""
    now = callcounts.profile("gateway", {
        (f"{SITE}/aiohttp/web_request.py", 454, "scheme"): _entry(10),
        (f"{CODE}/gateway/edge/proxy.py", 5, "handle"): _entry(10),
    }, 10, [CODE])
    base_root = Path("/work/base")
    base = callcounts.profile("gateway-base", {
        (f"{SITE}/aiohttp/web_request.py", 454, "scheme"): _entry(10),
        (f"{SITE}/aiohttp/web_request.py", 486, "host"): _entry(20),
        (f"{base_root}/gateway/edge/proxy.py", 9, "handle"): _entry(20),
    }, 10, [base_root])
    text = callcounts.report([now, base], top=10)
    assert "| requests profiled | 10 | 10 |" in text
    assert "| all | 2.00 | 5.00 | -3.00 |" in text
    assert "| of them, the gateway's own (interpreted) | 1.00 | 2.00 | -1.00 |" in text
    assert "| aiohttp | 1.00 | 3.00 | -2.00 |" in text
    assert "| `aiohttp/web_request.py:host` | 0.00 | 2.00 | -2.00 |" in text
    own = text.split("the gateway's interpreted functions", 1)[1]
    assert "| `gateway/edge/proxy.py:handle` | 1.00 | 2.00 | -1.00 |" in own
    assert "web_request" not in own


def test_callers_are_counted_per_request_by_label() -> None:
    """Who calls a function comes from the dump's caller entries (all calls, recursive ones
    included: a caller's entry leads with them), over the requests, and a function with no
    Python caller says so."""
    proxy = (f"{CODE}/gateway/edge/proxy.py", 5, "handle")
    handle = (f"{SITE}/aiohttp/web_app.py", 500, "_handle")
    stats: dict[FuncKey, tuple[Any, ...]] = {
        (f"{SITE}/aiohttp/web_request.py", 454, "scheme"): (
            24, 30, 0.0, 0.0, {proxy: (10, 4, 0.0, 0.0), handle: (20, 20, 0.0, 0.0)}),
        handle: _entry(10),
    }
    text = callcounts.callers_report(callcounts.profile("gateway", stats, 10, [CODE]), "web_")
    assert "`aiohttp/web_request.py:scheme`, 3.00 a request, called by:\n" in text
    assert "- 2.00 `aiohttp/web_app.py:_handle`\n- 1.00 `gateway/edge/proxy.py:handle`" in text
    assert "`aiohttp/web_app.py:_handle`, 1.00 a request, called by:\n- (no Python caller" in text
    assert "No function matching 'zzz'" in callcounts.callers_report(
        callcounts.profile("gateway", stats, 10), "zzz")

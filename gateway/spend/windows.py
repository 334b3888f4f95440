"""Calendar-aligned budget windows (day, month) in a time zone, and the clock.

Budgets reset at local midnight (or the first of the month) in their zone, not
every 24 hours since start; DST days are 23 or 25 hours long. Time is always
read through a `Clock`, so tests move it instead of waiting for midnight.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    def now(self) -> float:
        """Unix time in seconds."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that only moves when told to (tests, simulations)."""

    def __init__(self, start: float) -> None:
        self.value = start

    def now(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds

    def set(self, value: float) -> None:
        self.value = value


@dataclass(frozen=True, slots=True)
class Window:
    """One calendar window: `[start, end)` in Unix seconds, named by its local date."""

    id: str  # "2026-11-29" for a day, "2026-11" for a month
    start: float
    end: float  # when it resets

    def contains(self, ts: float) -> bool:
        return self.start <= ts < self.end


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _midnight(day: date, tz: ZoneInfo) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()


def window_at(ts: float, kind: str, tz: ZoneInfo) -> Window:
    """The `kind` ("day" or "month") window of `tz` that contains `ts`."""
    local = datetime.fromtimestamp(ts, tz).date()
    if kind == "day":
        start, nxt = local, local + timedelta(days=1)
        name = local.isoformat()
    elif kind == "month":
        start = local.replace(day=1)
        nxt = date(start.year + start.month // 12, start.month % 12 + 1, 1)
        name = f"{start.year:04d}-{start.month:02d}"
    else:
        raise ValueError(f"unknown window kind {kind!r}")
    return Window(name, _midnight(start, tz), _midnight(nxt, tz))


def window_named(window_id: str, kind: str, tz: ZoneInfo) -> Window:
    """The window with this id (`2026-11-29` or `2026-11`), e.g. for `--since`."""
    parts = [int(p) for p in window_id.split("-")]
    day = date(parts[0], parts[1], parts[2] if kind == "day" else 1)
    return window_at(_midnight(day, tz) + 1, kind, tz)


def local_time(ts: float, tz: ZoneInfo) -> str:
    """`2026-11-30 00:00 Asia/Shanghai`, for messages."""
    return f"{datetime.fromtimestamp(ts, tz):%Y-%m-%d %H:%M} {tz.key}"


def duration(seconds: float) -> str:
    """`3h 12m` / `45s`: how long until a reset, for messages."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours >= 48:
        return f"{hours // 24}d {hours % 24}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


class WindowTracker:
    """The current window of one (kind, zone), recomputed only when time leaves it: O(1)."""

    __slots__ = ("_current", "kind", "tz")

    def __init__(self, kind: str, tz: ZoneInfo) -> None:
        self.kind = kind
        self.tz = tz
        self._current: Window | None = None

    def at(self, ts: float) -> Window:
        current = self._current
        if current is None or not current.start <= ts < current.end:
            current = window_at(ts, self.kind, self.tz)
            self._current = current
        return current

"""Calendar windows: local midnight and the first of the month in the budget's zone,
DST-length days, and the O(1) tracker."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from gateway.spend.windows import WindowTracker, duration, local_time, window_at, window_named

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")


def _ts(text: str, tz: ZoneInfo) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=tz).timestamp()


def test_day_window_runs_from_local_midnight_to_local_midnight() -> None:
    """16:30 UTC on Nov 29 is 00:30 on Nov 30 in Shanghai: that day's window."""
    window = window_at(_ts("2026-11-29 16:30", ZoneInfo("UTC")), "day", SH)
    assert window.id == "2026-11-30"
    assert window.start == _ts("2026-11-30 00:00", SH)
    assert window.end == _ts("2026-12-01 00:00", SH)
    assert window.end - window.start == 86400


def test_month_window_and_the_year_boundary() -> None:
    """December's window ends at midnight on January 1, local time."""
    window = window_at(_ts("2026-12-31 23:59", SH), "month", SH)
    assert window.id == "2026-12"
    assert window.start == _ts("2026-12-01 00:00", SH)
    assert window.end == _ts("2027-01-01 00:00", SH)


def test_dst_days_are_23_and_25_hours() -> None:
    """In New York the spring-forward day is 23 h long and the fall-back day 25 h."""
    spring = window_at(_ts("2026-03-08 12:00", NY), "day", NY)
    fall = window_at(_ts("2026-11-01 12:00", NY), "day", NY)
    assert spring.end - spring.start == 23 * 3600
    assert fall.end - fall.start == 25 * 3600


def test_window_named_and_messages() -> None:
    """A window is found again by its id; reset times and durations read naturally."""
    assert window_named("2026-11-30", "day", SH) == window_at(_ts("2026-11-30 08:00", SH), "day", SH)
    assert window_named("2026-02", "month", SH).id == "2026-02"
    assert local_time(_ts("2026-12-01 00:00", SH), SH) == "2026-12-01 00:00 Asia/Shanghai"
    assert duration(3 * 3600 + 12 * 60) == "3h 12m"
    assert duration(45) == "45s"
    assert duration(5 * 86400) == "5d 0h"


def test_tracker_recomputes_only_when_time_leaves_the_window() -> None:
    """The tracker returns the cached window inside it and a new one after midnight."""
    tracker = WindowTracker("day", SH)
    first = tracker.at(_ts("2026-11-29 10:00", SH))
    assert tracker.at(_ts("2026-11-29 23:59", SH)) is first
    assert tracker.at(_ts("2026-11-30 00:00", SH)).id == "2026-11-30"

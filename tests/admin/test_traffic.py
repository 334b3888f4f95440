"""Traffic buckets: per-minute counts, percentiles from buckets, hour and day series."""

from __future__ import annotations

from typing import Any

from gateway.admin.traffic import KEEP_MINUTES, Traffic, percentile

NOW = 1_800_000_030.0  # 30 s into a minute


def _call(ts: float, latency: float = 0.1, status: int = 200, first: float | None = None,
          model: str = "gpt-4.1") -> dict[str, Any]:
    return {"ts": ts, "status": status, "latency_s": latency, "time_to_first_chunk_s": first,
            "model_requested": model, "model_served": model, "input_tokens": 10,
            "output_tokens": 5, "cost_usd": 0.001}


def test_percentile_interpolates_inside_the_bucket() -> None:
    """Half the samples in (0.08, 0.16] and half in (0.16, 0.32]: p50 is at 0.16."""
    histogram = [0] * 15
    histogram[4], histogram[5] = 50, 50
    assert percentile(histogram, 0.5) == 0.16
    assert 0.16 < (percentile(histogram, 0.95) or 0) <= 0.32
    assert percentile([0] * 15, 0.5) is None


def test_hour_series_has_sixty_points_with_the_calls_in_their_minute() -> None:
    """Calls land in their minute; the newest point is the current minute."""
    traffic = Traffic()
    for i in range(3):
        traffic.add(_call(NOW - 5, latency=0.05 * (i + 1), first=0.03))
    traffic.add(_call(NOW - 5, status=502, model="cheap"))
    series = traffic.series("hour", NOW)
    assert len(series["points"]) == 60 and series["step_s"] == 60
    last = series["points"][-1]
    assert last["requests"] == 4 and last["errors"] == 1 and last["error_ratio"] == 0.25
    assert last["models"]["gpt-4.1"]["requests"] == 3
    assert last["models"]["cheap"]["input_tokens"] == 10
    assert last["first_chunk_p50_s"] is not None and last["latency_p95_s"] is not None
    assert sum(p["requests"] for p in series["points"][:-1]) == 0


def test_fifteen_minute_series_has_ten_second_points() -> None:
    """The 15-minute view has 90 points of 10 s; a call 25 s ago (30 s into a minute) is in
    the point three before the current one."""
    traffic = Traffic()
    traffic.add(_call(NOW - 25))
    traffic.add(_call(NOW - 16 * 60))  # outside the view
    series = traffic.series("15m", NOW)
    assert len(series["points"]) == 90 and series["step_s"] == 10
    assert [p["requests"] for p in series["points"][-5:]] == [0, 1, 0, 0, 0]
    assert series["points"][-4]["rate_per_s"] == 0.1


def test_day_series_merges_half_hours_and_old_minutes_expire() -> None:
    """The day view has 48 half-hour points; minutes older than a day are dropped."""
    traffic = Traffic()
    traffic.add(_call(NOW - KEEP_MINUTES * 60 - 120))  # older than a day
    traffic.add(_call(NOW - 3600))
    traffic.add(_call(NOW))
    series = traffic.series("day", NOW)
    assert len(series["points"]) == 48 and series["step_s"] == 1800
    assert sum(p["requests"] for p in series["points"]) == 2
    assert len(traffic.minutes.buckets) == 2

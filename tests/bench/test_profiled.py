"""The profiling hook the profile tool runs the gateway under: cProfile on and off by call
(the gateway's signals call the same methods), the stats written whole."""

from __future__ import annotations

import json
from pathlib import Path

from bench import callcounts
from bench.profiled import Switch


def test_switch_profiles_between_start_and_stop(tmp_path: Path) -> None:
    """What runs between start and stop is in the written stats, and nothing after stop;
    the file appears whole (under its final name only once written)."""
    out = tmp_path / "gateway.pstats"
    switch = Switch(out)
    switch.start()
    for _ in range(7):
        json.dumps({"a": 1})
    switch.stop()
    json.loads("[1]")
    switch.stop()  # a second stop writes nothing more
    assert [p.name for p in tmp_path.iterdir()] == ["gateway.pstats"]
    prof = callcounts.profile("gateway", callcounts.read_stats(out), 7)
    by_label = {r.label: r.per_request for r in prof.rows}
    assert by_label["json/__init__.py:dumps"] == 1.0
    assert "json/__init__.py:loads" not in by_label

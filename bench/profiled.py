"""The gateway as `python -m gateway` runs it, with cProfile switched on by SIGUSR1 and off by
SIGUSR2, which then writes the stats to $BENCH_PROFILE_OUT: bench/profile.py profiles a
warmed-up gateway this way, so start-up and warm-up stay out of the counts. It lives here,
not in the gateway package, and so also profiles another commit's gateway (`--baseline`).

    cd <the gateway's code> && BENCH_PROFILE_OUT=/tmp/x.pstats python <repo>/bench/profiled.py serve ...

cProfile sees the thread that switched it on: the event loop's, where the requests run
(the span exporter's thread is left out). Compiled (mypyc) functions do not show up,
only the calls that still run as Python, and the built-ins those call.
"""

from __future__ import annotations

import os
import sys

# Run by path, this file's directory would be first on sys.path, and bench/profile.py would
# stand in for the standard library's `profile` (which cProfile imports). `python -m`
# puts the working directory first instead (the gateway's code): do the same.
if __name__ == "__main__":
    sys.path[0] = os.getcwd()

import cProfile
import runpy
import signal
from pathlib import Path
from types import FrameType

OUT_ENV = "BENCH_PROFILE_OUT"


class Switch:
    """Profiles the thread that calls `start` until `stop`, then writes the stats to `out`
    (whole or not at all: written beside it, then renamed)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self._profiler: cProfile.Profile | None = None

    def start(self, signum: int = 0, frame: FrameType | None = None) -> None:
        if self._profiler is None:
            self._profiler = cProfile.Profile()
            self._profiler.enable()

    def stop(self, signum: int = 0, frame: FrameType | None = None) -> None:
        profiler, self._profiler = self._profiler, None
        if profiler is None:
            return
        profiler.disable()
        partial = self.out.with_name(self.out.name + ".partial")
        profiler.dump_stats(str(partial))
        os.replace(partial, self.out)

    def install(self) -> None:
        signal.signal(signal.SIGUSR1, self.start)
        signal.signal(signal.SIGUSR2, self.stop)


def main() -> None:
    Switch(Path(os.environ[OUT_ENV])).install()
    runpy.run_module("gateway", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()

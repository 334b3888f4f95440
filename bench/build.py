"""Which gateway code the benchmark runs.

`compiled` (the default) is the optimised build the Docker image ships: this
tree copied to .build/bench-compiled with its request path compiled by mypyc
(scripts/build-compiled, about a minute), built for the interpreter running the
benchmark. `source` runs the tree as it is. The `gateway-py` target always runs
the source, so one table shows both builds.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPILED_DIR = ROOT / ".build" / "bench-compiled"
CHOICES = ("compiled", "source")


class BuildError(RuntimeError):
    pass


def code_dir(build: str) -> Path:
    """The directory to put first on the gateway's PYTHONPATH (and run it from)."""
    if build == "source":
        return ROOT
    print("building the compiled gateway (scripts/build-compiled, about a minute) ...", flush=True)
    result = subprocess.run(
        [str(ROOT / "scripts" / "build-compiled"), str(COMPILED_DIR)],
        env={**os.environ, "GATEWAY_BUILD_PYTHON": sys.executable},
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        raise BuildError(f"{(result.stderr or result.stdout).strip()}\n"
                         "(no C compiler? `--build source` runs the pure-Python gateway)")
    print(result.stdout.strip(), flush=True)
    return COMPILED_DIR


"""Which gateway code the benchmark runs.

`compiled` (the default) is the optimised build the Docker image ships: this
tree copied to .build/bench-compiled with its request path compiled by mypyc
(scripts/build-compiled, about a minute), built for the interpreter running the
benchmark. `source` runs the tree as it is. The `gateway-py` target always runs
the source, so one table shows both builds.

A build is reused while the gateway's source is the same: the copy records a hash of
`gateway/` and `setup.py` (as they are in the working tree) once its build succeeded,
so a half-built copy is never taken for a finished one.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPILED_DIR = ROOT / ".build" / "bench-compiled"
MARKER = ".bench-source-sha256"  # in the copy: the hash of the source it was built from
CHOICES = ("compiled", "source")


class BuildError(RuntimeError):
    pass


def code_dir(build: str) -> Path:
    """The directory to put first on the gateway's PYTHONPATH (and run it from)."""
    if build == "source":
        return ROOT
    digest = source_digest(ROOT)
    marker = COMPILED_DIR / MARKER
    if marker.exists() and marker.read_text() == digest:
        print(f"reusing the compiled gateway in {COMPILED_DIR} (same source)", flush=True)
        return COMPILED_DIR
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
    marker.write_text(digest)
    return COMPILED_DIR


def source_digest(root: Path) -> str:
    """SHA-256 over the gateway package's files and setup.py, paths and contents."""
    digest = hashlib.sha256()
    files = sorted(p for p in (root / "gateway").rglob("*") if p.is_file() and "__pycache__" not in p.parts
                   and p.suffix not in (".so", ".pyc"))
    for path in [*files, root / "setup.py"]:
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


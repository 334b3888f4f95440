"""Real npm-packaged clients for the tests (Claude Code, Gemini CLI): installed once
into a cache directory, the test skipped when npm (or a recent enough Node.js) is not
there."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def npm_client(package: str, version: str, command: str, *, label: str, cache_env: str,
               cache_name: str, min_node: int | None = None) -> Path:
    """The path of `command` from `package@version`, installed with npm under the cache
    directory (`$cache_env`, default ~/.cache/llm-gateway-tests/<cache_name>) unless there
    already; skips the test when npm, or Node.js `min_node` or later, is missing."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip(f"npm is not installed: {label} cannot be installed here")
    if min_node is not None:
        node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False)
        major = node.stdout.strip().lstrip("v").split(".")[0]
        if not major.isdigit() or int(major) < min_node:
            pytest.skip(f"{label} needs Node.js {min_node} or later "
                        f"(found {node.stdout.strip()!r})")
    cache = Path(os.environ.get(cache_env,
                                Path.home() / ".cache" / "llm-gateway-tests" / cache_name))
    prefix = cache / version
    binary = prefix / "node_modules" / ".bin" / command
    if not binary.exists():
        prefix.mkdir(parents=True, exist_ok=True)
        subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix", str(prefix),
                        f"{package}@{version}"],
                       check=True, capture_output=True, timeout=600)
    return binary

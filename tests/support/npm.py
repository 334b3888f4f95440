"""Real npm-packaged clients for the tests (Claude Code, Gemini CLI): installed once
into a cache directory, the test skipped when npm (or a recent enough Node.js) is not
there; run with a deadline, their JSON output read."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import orjson
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


async def run_json(binary: Path, *args: str, cwd: Path, env: dict[str, str],
                   timeout_s: float = 180) -> Any:
    """Run the client to its end (killed past `timeout_s`), require a zero exit (the
    failure shows the output's tail) and return its stdout parsed as JSON."""
    process = await asyncio.create_subprocess_exec(
        str(binary), *args, cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout_s)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, (out + err).decode()[-2000:]
    return orjson.loads(out)

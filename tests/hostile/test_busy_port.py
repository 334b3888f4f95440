"""Threat (to a new user, mostly): a port already in use. `llm-gateway serve` on a busy
port used to log the open-mode warning and hang for ever, the bind error swallowed
while start-up's clean-up waited on the ledger writer: a new user's likeliest first
error, with nothing saying what happened.

The gateway binds its sockets before starting anything else, so a busy port (the
API's or the metrics port) ends the command at once with a non-zero status and a
message naming the port. These tests hold a real port with a listening socket and
run the real command as a subprocess, under a timeout.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration  # sockets or processes: the slow tier


@contextmanager
def busy_port() -> Iterator[int]:
    """A loopback port with another program listening on it."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def serve(args: list[str], tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "GATEWAY_"))}
    env["GATEWAY_SQLITE_PATH"] = str(tmp_path / "gateway.sqlite3")
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-m", "gateway", "serve", *args], env=env,
                              cwd=tmp_path, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("llm-gateway serve hung on a busy port")
    return done, time.monotonic() - started


def test_a_busy_port_exits_at_once_naming_the_port(tmp_path: Path) -> None:
    """`serve --port P` with P in use exits non-zero within seconds, saying which port."""
    with busy_port() as port:
        done, elapsed = serve(["--port", str(port)], tmp_path)
    assert done.returncode != 0
    assert f"127.0.0.1:{port}" in done.stderr and "in use" in done.stderr
    assert "Traceback" not in done.stderr
    assert elapsed < 15


def test_a_busy_metrics_port_exits_too(tmp_path: Path) -> None:
    """A busy `server.metrics_port` fails the start the same way, naming that port."""
    with busy_port() as port, socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        api_port = free.getsockname()[1]
        free.close()
        config = tmp_path / "gateway.yaml"
        config.write_text(f"""
server: {{metrics_port: {port}}}
providers: {{sim: {{kind: mock}}}}
models: {{gpt-4.1: {{provider: sim, price_per_mtok: {{input: 1, output: 1}}}}}}
""")
        done, elapsed = serve(["--port", str(api_port), "--config", str(config)], tmp_path)
    assert done.returncode != 0 and f":{port}" in done.stderr and elapsed < 15

"""Starts `python -m gateway serve` as a real subprocess and stops it cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ledger_writers(ledger: str | Path) -> dict[int, list[str]]:
    """The SQLite ledger writer processes running on `ledger`: pid to command line."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").rstrip("\0").split("\0")
        except OSError:
            continue
        if "gateway.spend.ledger_writer" in argv and str(ledger) in argv:
            found[int(proc.name)] = argv
    return found


@dataclass
class GatewayProcess:
    proc: subprocess.Popen[bytes]
    root: str
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"{self.root}/v1"

    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace")


async def wait_healthy(root: str, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession() as http:
        while loop.time() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {proc.returncode}")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{root}/health") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise TimeoutError("gateway did not become healthy")


@contextlib.asynccontextmanager
async def gateway_process(config_text: str | None, env: Mapping[str, str] | None = None,
                          args: tuple[str, ...] = ()) -> AsyncIterator[GatewayProcess]:
    """Run the gateway CLI on a free port; SIGTERM it on exit."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "gateway", "serve", "--port", str(port), *args]
        if config_text is not None:
            path = Path(tmp, "gateway.yaml")
            path.write_text(config_text)
            cmd += ["--config", str(path)]
        full_env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("OTEL_", "GATEWAY_"))}
        full_env.update(env or {})
        full_env.setdefault("GATEWAY_SQLITE_PATH", str(Path(tmp, "gateway.sqlite3")))
        log_path = Path(tmp, "gateway.log")
        with log_path.open("wb") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env,
                                    cwd=tmp)
        root = f"http://127.0.0.1:{port}"
        try:
            await wait_healthy(root, proc)
            yield GatewayProcess(proc, root, log_path)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.to_thread(proc.wait, 30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

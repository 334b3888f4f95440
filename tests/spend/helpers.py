"""Helpers for the spend tests: configs, a gateway with an injected clock, the ledger, Redis."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import redis

from gateway.config import load
from gateway.spend.control import SpendControl, build_spend
from gateway.spend.ledger import LedgerEntry
from gateway.spend.sqlite_store import connect, entries, init_schema
from gateway.spend.windows import Clock
from tests.conftest import UPSTREAM_KEY
from tests.support.gateway import RunningGateway, running_gateway, upstream_config
from tests.support.process import free_port
from tests.support.telemetry import make_test_telemetry

ENV = {"UPSTREAM_KEY": UPSTREAM_KEY}
SHANGHAI = ZoneInfo("Asia/Shanghai")
MESSAGES: list[Any] = [{"role": "user", "content": "hello there friend"}]
# The gateway's estimate of MESSAGES (chars/4 + 4 per message + 3); the fake upstream
# reports 9 prompt tokens for it (words + 3 per message + 3), never more than this.
PROMPT_ESTIMATE = 12
GPT41_IN, GPT41_OUT = 2.5, 8.0  # $/Mtok of gpt-4.1 in tests/support/gateway.py


def worst_case_usd(max_tokens: int, prompt: int = PROMPT_ESTIMATE) -> float:
    return (prompt * GPT41_IN + max_tokens * GPT41_OUT) / 1e6


def shanghai(text: str) -> float:
    """Unix time of a wall-clock time in Asia/Shanghai, e.g. '2026-11-29 23:59:00'."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI).timestamp()


def spend_config(upstream_url: str, ledger: Path, extra: str = "", models: str = "") -> str:
    """The test upstream config plus a SQLite ledger at `ledger`, `extra` YAML and `models`
    (more model entries)."""
    return upstream_config(upstream_url, extra=f"storage: {{sqlite_path: \"{ledger}\"}}\n{extra}",
                           models=models)


@contextlib.asynccontextmanager
async def spend_gateway(config_text: str, *, clock: Clock | None = None,
                        environ: dict[str, str] | None = None
                        ) -> AsyncIterator[tuple[RunningGateway, SpendControl]]:
    """A gateway on a real port whose spend control uses `clock`."""
    env = {**ENV, **(environ or {})}
    config = load(config_text, env)
    tt = make_test_telemetry()
    spend = build_spend(config, tt.telemetry, clock=clock)
    async with running_gateway(config, environ=env, telemetry=tt, spend=spend) as gw:
        yield gw, spend


def ledger_rows(path: Path) -> list[LedgerEntry]:
    conn = connect(str(path))
    try:
        init_schema(conn)
        return list(entries(conn, 0, 1e12))
    finally:
        conn.close()


def ledger_status(path: Path) -> list[tuple[str, int]]:
    conn = connect(str(path))
    try:
        return conn.execute("SELECT status, cost_nanos FROM ledger ORDER BY id").fetchall()
    finally:
        conn.close()


def prom_value(text: str, name: str, labels: dict[str, str]) -> float | None:
    """The value of the Prometheus sample `name` whose labels include `labels`."""
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


@dataclass
class RedisServer:
    url: str
    process: subprocess.Popen[bytes] | None


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    """$REDIS_URL if set, else a throwaway redis-server on a free port in a temp dir."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield RedisServer(url, None)
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server) "
                           "and REDIS_URL is not set")
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp, "--save", "",
             "--appendonly", "no", "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"redis://127.0.0.1:{port}/0"
        try:
            _wait_redis(url, proc)
            yield RedisServer(url, proc)
        finally:
            proc.terminate()
            proc.wait(10)


def _wait_redis(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with {proc.returncode}")
        client = redis.Redis.from_url(url)
        try:
            if client.ping():
                return
        except redis.ConnectionError:
            time.sleep(0.05)
        finally:
            client.close()
    raise TimeoutError("redis-server did not start")

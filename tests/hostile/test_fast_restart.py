"""Threat: a crash followed by a restart within a second (a supervisor's immediate
restart, a container's `restart: always`). The dead gateway, not yet reaped by its
parent, is a zombie: its pid still answers `kill(pid, 0)` with its own start time, so
it looked alive and its journaled streams stayed `pending` for the new process's whole
life, left out of every budget (`spend` said "N calls in flight").

What it gets now: the new gateway holds the ledger's lock, so every row of an earlier
lock session is recovered at start (charged at its worst case, `unsettled`), whether
the old process is a zombie, gone, or its pid reused. Under `serve --workers` a
sibling's rows are left to it only while it runs and is not a zombie."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from openai import AsyncOpenAI

from tests.fakes.openai_upstream import Behaviour, RunningUpstream
from tests.spend.helpers import ENV, MESSAGES, ledger_rows, spend_config, worst_case_usd
from tests.support.process import free_port, gateway_process, wait_healthy

pytestmark = pytest.mark.integration  # sockets or processes: the slow tier


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


async def test_streams_of_a_crashed_gateway_are_recovered_while_it_is_a_zombie(
        upstream: RunningUpstream, tmp_path: Path) -> None:
    """Three streams in flight, SIGKILL, and a new gateway on the same ledger while the
    dead one is still an unreaped zombie: the new one charges the three at their worst
    case at start."""
    upstream.state.behaviour = Behaviour(completion_tokens=200, chunk_delay_s=0.05)
    ledger = tmp_path / "ledger.db"
    config = spend_config(upstream.base_url, ledger)
    config_path = tmp_path / "gateway.yaml"
    config_path.write_text(config)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "GATEWAY_"))}
    with tempfile.TemporaryFile() as log:
        crashed = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--port", str(port), "--config",
             str(config_path)], stdout=log, stderr=subprocess.STDOUT, env={**env, **ENV})
        try:
            root = f"http://127.0.0.1:{port}"
            await wait_healthy(root, crashed)
            async with AsyncOpenAI(base_url=f"{root}/v1", api_key="k", max_retries=0) as sdk:
                streams = [await sdk.chat.completions.create(
                    model="gpt-4.1", messages=MESSAGES, max_tokens=500, stream=True)
                    for _ in range(3)]
                for stream in streams:
                    await anext(aiter(stream))
                os.kill(crashed.pid, signal.SIGKILL)  # and not reaped: no wait(), no poll()
                for _ in range(200):
                    if _state(crashed.pid) == "Z":
                        break
                    await asyncio.sleep(0.01)
                assert _state(crashed.pid) == "Z"
                assert [r.status for r in ledger_rows(ledger)] == ["pending"] * 3
                async with gateway_process(config, ENV):
                    assert _state(crashed.pid) == "Z"  # still a zombie while it restarted
                    rows = ledger_rows(ledger)
            assert [r.status for r in rows] == ["unsettled"] * 3
            assert all(r.cost_nanos == round(worst_case_usd(500) * 1e9) for r in rows)
        finally:
            if crashed.poll() is None:
                crashed.kill()
            crashed.wait()

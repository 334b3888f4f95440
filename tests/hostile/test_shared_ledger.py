"""Threat: two gateways on one SQLite ledger (a second container on the same volume, a
forgotten process, a copy-pasted service unit). Each counted budgets in its own memory:
200 concurrent calls split over two gateways against a budget that fits 10 served 22.

What it gets now: one storage owner. The second gateway refuses to start, at once,
naming the ledger and the pid of the process that holds it; `serve --workers N` holds
it for its workers, which share each budget in 1/N parts. Once the owner stops, the
file is free. Several gateways that must share budgets use storage.backend: redis."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import openai
import pytest
from openai import AsyncOpenAI

from tests.fakes.openai_upstream import Behaviour, RunningUpstream
from tests.spend.helpers import ENV, MESSAGES, ledger_rows, spend_config, worst_case_usd
from tests.support.process import free_port, gateway_process

pytestmark = pytest.mark.integration  # sockets or processes: the slow tier

FITS = 10
BUDGET = f"budgets: [{{name: fits-ten, scope: global, limit_usd: {worst_case_usd(100) * FITS:.9f}}}]\n"


def _second_gateway(config_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Start another gateway on the same config; it must exit on its own, quickly."""
    return subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--port", str(free_port()),
         "--config", str(config_path), *args],
        capture_output=True, text=True, timeout=30, env={**_env(), **ENV},
        cwd=config_path.parent)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "GATEWAY_"))}


async def _fire(base_url: str, count: int) -> Counter[str]:
    async with AsyncOpenAI(base_url=base_url, api_key="k", max_retries=0, timeout=60) as sdk:
        async def one() -> str:
            try:
                await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES,
                                                  max_tokens=100)
            except openai.RateLimitError:
                return "refused"
            return "ok"

        return Counter(await asyncio.gather(*(one() for _ in range(count))))


async def test_a_second_gateway_on_the_same_ledger_refuses_to_start(
        upstream: RunningUpstream, tmp_path: Path) -> None:
    """While one gateway owns the ledger, a second exits at once with status 2 and a
    message naming the file and the owner's pid; the owner alone serves the 10 calls the
    budget fits out of 200; after it stops, the file is free again."""
    upstream.state.behaviour = Behaviour(completion_tokens=100, latency_s=0.05)
    ledger = tmp_path / "ledger.db"
    config_path = tmp_path / "gateway.yaml"
    config_path.write_text(spend_config(upstream.base_url, ledger, BUDGET))
    async with gateway_process(config_path.read_text(), ENV) as owner:
        second = await asyncio.to_thread(_second_gateway, config_path)
        assert second.returncode == 2, second.stderr
        assert str(ledger) in second.stderr and f"process {owner.proc.pid}" in second.stderr
        assert "Traceback" not in second.stderr
        assert await _fire(owner.base_url, 200) == {"ok": FITS, "refused": 200 - FITS}
    assert len(ledger_rows(ledger)) == FITS
    async with gateway_process(config_path.read_text(), ENV):
        pass  # the lock went with the owner


async def test_a_workers_group_owns_the_ledger_for_its_workers(
        upstream: RunningUpstream, tmp_path: Path) -> None:
    """`serve --workers 2` starts (its workers share the parent's lock), and a single
    gateway started beside it is refused, naming the parent's pid; so is a second group."""
    ledger = tmp_path / "ledger.db"
    config_path = tmp_path / "gateway.yaml"
    config_path.write_text(spend_config(upstream.base_url, ledger))
    async with gateway_process(config_path.read_text(), ENV, ("--workers", "2")) as group:
        for args in ((), ("--workers", "2")):
            second = await asyncio.to_thread(_second_gateway, config_path, *args)
            assert second.returncode == 2, second.stderr
            assert f"process {group.proc.pid}" in second.stderr
        async with AsyncOpenAI(base_url=group.base_url, api_key="k", max_retries=0) as sdk:
            await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES, max_tokens=5)
    assert len(ledger_rows(ledger)) == 1

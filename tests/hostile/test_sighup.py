"""Threat: SIGHUP, from a closed terminal or an operator who expects a reload, killed
the gateway outright: streams were cut mid-answer and their journal rows left
`pending`.

What it does now: SIGHUP drains like SIGTERM (it does not reload the config; restart to
apply one): the streams in flight finish, their spend is settled, the process exits 0.
The ledger writer ignores the signal sent to the whole process group, so the drain's
last writes still land."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from openai import AsyncOpenAI

from tests.fakes.openai_upstream import Behaviour, RunningUpstream
from tests.spend.helpers import ENV, MESSAGES, ledger_rows, spend_config
from tests.support.process import gateway_process

pytestmark = pytest.mark.integration  # sockets or processes: the slow tier


async def test_sighup_drains_streams_in_flight_and_settles_them(upstream: RunningUpstream,
                                                               tmp_path: Path) -> None:
    """Two streams in flight when SIGHUP arrives (sent to the gateway's process group, as
    a terminal does) both finish with [DONE], the gateway exits 0, and their ledger rows
    are settled, not pending."""
    upstream.state.behaviour = Behaviour(completion_tokens=30, chunk_delay_s=0.05)
    ledger = tmp_path / "ledger.db"
    async with gateway_process(spend_config(upstream.base_url, ledger), ENV) as gw:
        async with AsyncOpenAI(base_url=gw.base_url, api_key="k", max_retries=0) as sdk:
            streams = [await sdk.chat.completions.create(
                model="gpt-4.1", messages=MESSAGES, max_tokens=50, stream=True,
                stream_options={"include_usage": True}) for _ in range(2)]
            for stream in streams:
                await anext(aiter(stream))
            gw.proc.send_signal(signal.SIGHUP)
            for child in _children(gw.proc.pid):  # the ledger writer gets it too
                os.kill(child, signal.SIGHUP)
            chunks = [[chunk async for chunk in stream] for stream in streams]
        assert await asyncio.to_thread(gw.proc.wait, 20) == 0
        assert "shutting down" in gw.log()
    assert all(c[-1].usage is not None and c[-1].usage.completion_tokens == 30 for c in chunks)
    rows = ledger_rows(ledger)
    assert [r.status for r in rows] == ["ok", "ok"] and all(r.output_tokens == 30 for r in rows)


def _children(pid: int) -> list[int]:
    """The gateway's child processes (its ledger writer), from /proc."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []

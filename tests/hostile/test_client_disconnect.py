"""Threat: a client that hangs up on a non-streamed call leaves the gateway's upstream
call running until the upstream's timeout (120 s by default), holding a connection,
a budget reservation and the upstream's capacity for nobody. Envoy resets the
upstream when its client leaves.

The gateway's server cancels a request's handler when its client disconnects
(aiohttp's `handler_cancellation`), which aborts the upstream attempt at once: the
upstream sees its connection closed within a second, the CLIENT span and the request
metrics say `client_disconnect`, and the call's budget reservation is settled
rather than left held. A client that hangs up while its answer waits for the spend
ledger's acknowledgement leaves nothing in flight for a graceful shutdown to wait for.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from gateway.spend.sqlite_store import connect, entries
from gateway.state import GATEWAY
from tests.hostile.upstream import Handler, Hostile, hostile_upstream
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.process import ledger_writers
from tests.support.telemetry import attrs
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration  # sockets or processes: the slow tier

CONFIG = """
providers:
  up:
    kind: openai
    base_url: "{base_url}"
    timeout_s: 60
models:
  m:
    provider: up
    upstream_model: gpt-4.1
    price_per_mtok: {{input: 1, output: 1}}
keys:
  - {{alias: app, team: t, key_env: APP_KEY}}
budgets:
  - {{scope: key, key: app, window: day, limit_usd: 100}}
"""
APP_KEY = "gk-app-disconnect-test-0123"


async def _hold(request: web.Request) -> web.StreamResponse:
    """Never answers (until the test ends)."""
    await asyncio.sleep(60)
    return web.json_response({})


async def _answer(request: web.Request) -> web.StreamResponse:
    """A chat completion with its usage, at once."""
    return web.json_response({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "gpt-4.1",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "hello"}}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}})


@contextlib.asynccontextmanager
async def _gateway(client: str, handler: Handler = _hold
                   ) -> AsyncIterator[tuple[Hostile, RunningGateway]]:
    async with hostile_upstream(handler) as hostile, running_gateway(
            CONFIG.format(base_url=hostile.base_url),
            environ={"APP_KEY": APP_KEY, "GATEWAY_HTTP_CLIENT": client}) as gw:
        yield hostile, gw


@pytest.mark.parametrize("client", ["own", "aiohttp"])
async def test_a_client_hanging_up_cancels_the_upstream_call(
        client: str, caplog: pytest.LogCaptureFixture) -> None:
    """The upstream sees its connection closed within a second of the client leaving;
    the attempt and the request are recorded as `client_disconnect`, the budget
    holds no reservation afterwards, and the handler ends cancelled (aiohttp logs
    nothing: a handler that lost its cancellation returned None, which aiohttp logs
    with a traceback as a missing return)."""
    async with _gateway(client) as (hostile, gw):
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        async with aiohttp.ClientSession() as http:
            call = asyncio.create_task(http.post(
                f"{gw.base_url}/chat/completions", json=body,
                headers={"authorization": f"Bearer {APP_KEY}"}))
            await asyncio.wait_for(hostile.arrived.wait(), 5)
            call.cancel()  # the client hangs up
            left = asyncio.get_running_loop().time()
            with contextlib.suppress(asyncio.CancelledError):
                await call
        assert await eventually(lambda: hostile.disconnects, timeout=3)
        assert hostile.disconnects[0] - left < 1.0
        assert await eventually(lambda: gw.telemetry.spans_named("POST"), timeout=3)
        attempt = gw.telemetry.spans_named("chat m")[0]
        assert attrs(attempt)["error.type"] == "client_disconnect"
        server = gw.telemetry.spans_named("POST")[0]
        assert attrs(server)["http.response.status_code"] == 499
        assert attrs(server)["error.type"] == "client_disconnect"
        requests = [p for p in gw.telemetry.points("gateway.requests")
                    if p.attributes.get("error.type") == "client_disconnect"]
        assert requests and requests[0].value == 1
        # The reservation was settled (charged as unsettled, its worst case), not held.
        ledger = connect(gw.config.storage.sqlite_path)
        rows = await eventually(lambda: list(entries(ledger, 0, 1e12)), timeout=3)
        assert rows and [row.status for row in list(entries(ledger, 0, 1e12))] == ["unsettled"]
    assert [r.getMessage() for r in caplog.records if r.name.startswith("aiohttp")] == []


async def test_a_client_leaving_an_answer_held_for_the_ledger_is_not_left_in_flight() -> None:
    """A client that leaves while its plain answer waits for the ledger writer's
    acknowledgement (the writer stopped) is out of the in-flight set at once, so a
    graceful shutdown does not wait its drain timeout for it; the row still commits."""
    async with _gateway("own", _answer) as (hostile, gw):
        inflight = gw.app[GATEWAY].inflight
        ledger = gw.config.storage.sqlite_path
        [writer] = ledger_writers(ledger)
        os.kill(writer, signal.SIGSTOP)  # acknowledgements stall: the answer is held
        try:
            body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
            async with aiohttp.ClientSession() as http:
                call = asyncio.create_task(http.post(
                    f"{gw.base_url}/chat/completions", json=body,
                    headers={"authorization": f"Bearer {APP_KEY}"}))
                # The request's span ends when the call is closed: its answer waits after that.
                assert await eventually(lambda: gw.telemetry.spans_named("POST"), timeout=5)
                assert inflight.tasks and not call.done()
                call.cancel()  # the client hangs up
                with contextlib.suppress(asyncio.CancelledError):
                    await call
            assert await eventually(lambda: not inflight.tasks, timeout=3)
        finally:
            os.kill(writer, signal.SIGCONT)
        assert hostile.requests == 1
        conn = connect(ledger)
        try:
            assert await eventually(lambda: list(entries(conn, 0, 1e12)), timeout=5)
            assert [row.status for row in entries(conn, 0, 1e12)] == ["ok"]
        finally:
            conn.close()

"""`Call.hold` and `Call.held`: the writes an answer waits for before its first byte."""

from __future__ import annotations

import asyncio
from typing import Any

from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN

from gateway import errors
from gateway.call import Call
from gateway.config import load
from gateway.dialects.openai_chat import OpenAIChat
from tests.conftest import UPSTREAM_KEY
from tests.support.gateway import upstream_config


def _call() -> Call:
    config = load(upstream_config("http://upstream.invalid/v1"), {"UPSTREAM_KEY": UPSTREAM_KEY})
    client = OpenAIChat().parse(b'{"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]}')
    return Call("r1", client, config.models["gpt-4.1"], INVALID_SPAN, Context(), {})


def _refused() -> errors.GatewayError:
    return errors.ServiceUnavailable("the store is down")


async def test_held_waits_for_every_write_held() -> None:
    """`held` returns only once each held write is done, and nothing is held after it."""
    call = _call()
    loop = asyncio.get_running_loop()
    first: asyncio.Future[Any] = loop.create_future()
    second: asyncio.Future[Any] = loop.create_future()
    call.hold(first)
    call.hold(second, _refused)
    waiting = asyncio.ensure_future(call.held())
    loop.call_soon(first.set_result, None)
    await asyncio.sleep(0.01)
    assert not waiting.done()
    second.set_result(7)
    assert await waiting is None
    assert call.holds is None


async def test_a_failed_write_refuses_only_when_it_says_so() -> None:
    """A held write that fails gives its refusal; one held without a refusal is only
    waited for (its writer reports it)."""
    call = _call()
    loop = asyncio.get_running_loop()
    quiet: asyncio.Future[Any] = loop.create_future()
    quiet.set_exception(RuntimeError("the ledger writer exited"))
    call.hold(quiet)
    assert await call.held() is None
    refusing: asyncio.Future[Any] = loop.create_future()
    refusing.set_exception(RuntimeError("the ledger writer exited"))
    call.hold(refusing, _refused)
    refusal = await call.held()
    assert isinstance(refusal, errors.ServiceUnavailable) and refusal.status == 503

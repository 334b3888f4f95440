"""The SSE bytes a client receives: exactly the upstream's events, minus what it did not ask for."""

from __future__ import annotations

import aiohttp
import pytest

from tests.fakes.openai_upstream import Behaviour, RunningUpstream
from tests.support.gateway import RunningGateway

pytestmark = pytest.mark.integration  # sockets or processes: the slow tier

MESSAGES = [{"role": "user", "content": "hello"}]


async def _stream(gw: RunningGateway, body: dict[str, object]) -> bytes:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{gw.base_url}/chat/completions", json=body) as resp:
            assert resp.headers["content-type"].startswith("text/event-stream")
            return await resp.read()


async def test_without_include_usage_no_usage_field_reaches_client(
        gw: RunningGateway, upstream: RunningUpstream) -> None:
    """No chunk carries a `usage` key when the client did not ask for usage."""
    upstream.state.behaviour = Behaviour(content="one two three four five")
    raw = await _stream(gw, {"model": "gpt-4.1", "messages": MESSAGES, "stream": True})
    events = [e for e in raw.split(b"\n\n") if e]
    assert events[-1] == b"data: [DONE]"
    assert all(b'"usage"' not in e for e in events)
    assert sum(b'"content":"' in e and b'"content":""' not in e for e in events) == 5


async def test_with_include_usage_events_pass_untouched(
        gw: RunningGateway, upstream: RunningUpstream) -> None:
    """A client that asked for usage gets the upstream's events byte for byte."""
    upstream.state.behaviour = Behaviour(content="a b c")
    raw = await _stream(gw, {"model": "gpt-4.1", "messages": MESSAGES, "stream": True,
                             "stream_options": {"include_usage": True}})
    events = [e for e in raw.split(b"\n\n") if e]
    assert all(b'"usage":null' in e for e in events[:-2])
    assert b'"usage":{' in events[-2] and b'"choices":[]' in events[-2]
    assert gw.telemetry.spans_named("chat")[0].attributes["gen_ai.usage.output_tokens"] == 3

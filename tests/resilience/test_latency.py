"""The 5 s rule: a primary that answers after 6 s is abandoned at 5 s for a fast fallback."""

from __future__ import annotations

import time

import pytest
from opentelemetry.trace import SpanKind

from gateway.telemetry import names as n
from tests.fakes.openai_upstream import Behaviour, RunningUpstream
from tests.resilience.rig import MESSAGES, load_chain, rig
from tests.support.telemetry import attrs


@pytest.mark.parametrize("stream", [False, True])
async def test_slow_primary_degrades_to_fallback_in_about_5s(upstream: RunningUpstream,
                                                             stream: bool) -> None:
    """Primary after 6 s, fallback in 50 ms: the client has the fallback's answer in about
    5 s, and the trace holds both attempts under the request's SERVER span."""
    upstream.state.per_model["gpt-4.1"] = Behaviour(latency_s=6, content="too late")
    upstream.state.per_model["gpt-4.1-mini"] = Behaviour(latency_s=0.05, content="quick answer")
    config = load_chain(upstream.base_url, models={"primary": {"first_token_timeout_s": 5}})
    async with rig(upstream, config) as r:
        started = time.monotonic()
        if stream:
            chunks = await r.sdk.chat.completions.create(model="primary", messages=MESSAGES,
                                                         stream=True)
            text = "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])
        else:
            completion = await r.sdk.chat.completions.create(model="primary", messages=MESSAGES)
            text = completion.choices[0].message.content or ""
        elapsed = time.monotonic() - started
        assert text == "quick answer"
        assert 4.5 <= elapsed <= 6.5, elapsed
        server = await r.server_span()
        slow, fast = await r.client_spans()
        for span in (slow, fast):
            assert span.kind is SpanKind.CLIENT
            assert span.parent is not None and span.parent.span_id == server.context.span_id
            assert span.context.trace_id == server.context.trace_id
        assert attrs(slow)[n.ERROR_TYPE] == "timeout"
        assert attrs(fast)[n.GATEWAY_FALLBACK_REASON] == "first_token_timeout"
        assert attrs(server)[n.GATEWAY_MODEL_SERVED] == "backup"

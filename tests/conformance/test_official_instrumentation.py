"""The same calls seen by OpenTelemetry's own OpenAI instrumentation
(opentelemetry-instrumentation-openai-v2, calling the upstream directly) and by the
gateway: our CLIENT spans carry every attribute key theirs do."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from openai import AsyncOpenAI
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.conftest import UPSTREAM_KEY
from tests.fakes.openai_upstream import Behaviour, RunningUpstream
from tests.support.gateway import RunningGateway

pytestmark = pytest.mark.integration  # a fake upstream and the gateway on ports

Call = Callable[[AsyncOpenAI], Awaitable[Any]]
# Keys of theirs we leave off on purpose, and why.
NOT_OURS = {
    "gen_ai.system",  # deprecated by gen_ai.provider.name, which we emit
}


async def _chat(sdk: AsyncOpenAI) -> Any:
    return await sdk.chat.completions.create(
        model="gpt-4.1", messages=[{"role": "user", "content": "hi"}], max_tokens=50,
        temperature=0.3, top_p=0.8, seed=3, stop=["x"], service_tier="default")


async def _stream(sdk: AsyncOpenAI) -> Any:
    stream = await sdk.chat.completions.create(
        model="gpt-4.1", messages=[{"role": "user", "content": "a b"}], stream=True)
    async for _ in stream:
        pass


async def _embed(sdk: AsyncOpenAI) -> Any:
    return await sdk.embeddings.create(model="text-embedding-3-small", input="hi",
                                       dimensions=64)


@pytest.fixture
def official() -> Iterator[InMemorySpanExporter]:
    """The official instrumentation on the openai SDK, for the length of one test."""
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        yield spans
    finally:
        instrumentor.uninstrument()


def _client_keys(spans: list[ReadableSpan]) -> set[str]:
    (span,) = [s for s in spans if s.kind is SpanKind.CLIENT and s.name.startswith(
        ("chat", "embeddings"))]
    return set(span.attributes or {})


@pytest.mark.parametrize("call", [_chat, _stream, _embed], ids=["chat", "stream", "embeddings"])
async def test_our_client_spans_carry_their_keys(call: Call, official: InMemorySpanExporter,
                                                 gw: RunningGateway,
                                                 upstream: RunningUpstream) -> None:
    """Each key the official instrumentation sets on a call, the gateway sets too."""
    upstream.state.behaviour = Behaviour(prompt_tokens=30, completion_tokens=5)
    async with AsyncOpenAI(base_url=upstream.base_url, api_key=UPSTREAM_KEY,
                           max_retries=0) as direct:
        await call(direct)
    theirs = _client_keys(list(official.get_finished_spans()))
    official.clear()
    async with AsyncOpenAI(base_url=gw.base_url, api_key="sk-x", max_retries=0) as via_gateway:
        await call(via_gateway)
    ours = _client_keys(gw.telemetry.finished_spans())
    assert theirs, "the official instrumentation recorded nothing"
    assert theirs - NOT_OURS <= ours, sorted(theirs - NOT_OURS - ours)

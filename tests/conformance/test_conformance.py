"""Every span and metric the gateway emits, checked mechanically against the GenAI
conventions' model of the generation(s) it emits (tests/conformance/semconv)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import openai
import pytest
from openai import AsyncOpenAI
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, Status, StatusCode

from gateway.telemetry.content import ContentMode
from gateway.telemetry.semconv import Semconv
from tests.conformance.checker import Model, problems_of
from tests.conftest import UPSTREAM_KEY
from tests.fakes.openai_upstream import Behaviour, RunningUpstream
from tests.support.gateway import RunningGateway, running_gateway, upstream_config
from tests.support.telemetry import make_test_telemetry

pytestmark = pytest.mark.integration  # a fake upstream and the gateway on ports

MODES = {
    "v1.41": (Semconv(), ("v1.41",)),
    "latest": (Semconv(old=False, new=True), ("latest",)),
    "dup": (Semconv(old=True, new=True), ("v1.41", "latest")),
}
# Recommended attributes a successful call's spans lack, and why.
NOT_PROVIDED = {
    "gen_ai.inference.client": {
        # no cache write in the fake's usage (OpenAI reports none); Anthropic's would
        "gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_write.input_tokens",
    },
    "gen_ai.embeddings.client": {
        "gen_ai.request.encoding_formats",  # only when the request names one
    },
    "http.server": set(),
}


@pytest.fixture(params=sorted(MODES))
async def checked(request: pytest.FixtureRequest, upstream: RunningUpstream
                  ) -> AsyncIterator[tuple[Model, RunningGateway]]:
    chosen, generations = MODES[request.param]
    tt = make_test_telemetry(ContentMode.SPAN_AND_EVENT, semconv=chosen)
    async with running_gateway(upstream_config(upstream.base_url),
                               environ={"UPSTREAM_KEY": UPSTREAM_KEY}, telemetry=tt) as gw:
        yield Model.load(*generations), gw


async def _every_kind_of_call(gw: RunningGateway, upstream: RunningUpstream) -> None:
    upstream.state.behaviour = Behaviour(prompt_tokens=1200, completion_tokens=40,
                                         cached_tokens=1024, reasoning_tokens=10)
    async with AsyncOpenAI(base_url=gw.base_url, api_key="sk-x", max_retries=0) as sdk:
        await sdk.chat.completions.create(
            model="gpt-4.1", messages=[{"role": "system", "content": "be brief"},
                                       {"role": "user", "content": "hi"}],
            max_tokens=100, temperature=0.5, top_p=0.9, frequency_penalty=0.1,
            presence_penalty=0.2, stop=["END"], seed=7, n=2, service_tier="flex",
            response_format={"type": "json_object"})
        stream = await sdk.chat.completions.create(
            model="gpt-4.1", messages=[{"role": "user", "content": "a b c"}], stream=True)
        async for _ in stream:
            pass
        await sdk.embeddings.create(model="text-embedding-3-small", input="hello",
                                    dimensions=256)
        upstream.state.behaviour = Behaviour(status=500)
        with pytest.raises(openai.InternalServerError):
            await sdk.chat.completions.create(model="cheap",
                                              messages=[{"role": "user", "content": "x"}])


async def test_emitted_telemetry_conforms(checked: tuple[Model, RunningGateway],
                                          upstream: RunningUpstream) -> None:
    """Chat, a stream, embeddings and a failure: no span or metric breaks the model."""
    model, gw = checked
    await _every_kind_of_call(gw, upstream)
    spans = gw.telemetry.finished_spans()
    assert {model.span_type(s).name for s in spans} == set(NOT_PROVIDED)
    assert problems_of(model, spans, gw.telemetry.metrics().values()) == []


async def test_only_known_recommended_attributes_are_missing(
        checked: tuple[Model, RunningGateway], upstream: RunningUpstream) -> None:
    """Successful spans carry every recommended attribute but those the gateway cannot know."""
    model, gw = checked
    await _every_kind_of_call(gw, upstream)
    for span in gw.telemetry.finished_spans():
        if span.status.status_code is StatusCode.ERROR:
            continue
        kind = model.span_type(span).name
        missing = model.missing_recommended(span) - NOT_PROVIDED[kind]
        if "gen_ai.request.stream" not in (span.attributes or {}):
            missing.discard("gen_ai.response.time_to_first_chunk")  # for streams only
        elif span.kind is SpanKind.CLIENT:
            # a stream's request carried none of the sampling parameters
            missing -= {"gen_ai.request.max_tokens", "gen_ai.request.temperature",
                        "gen_ai.request.top_p", "gen_ai.request.stop_sequences",
                        "gen_ai.request.frequency_penalty", "gen_ai.request.presence_penalty"}
        assert missing == set(), f"{span.name}: {sorted(missing)}"


def _renamed(span: ReadableSpan, old: str, new: str) -> ReadableSpan:
    attributes = {new if key == old else key: value
                  for key, value in (span.attributes or {}).items()}
    return ReadableSpan(name=span.name, context=span.context, parent=span.parent,
                        kind=span.kind, attributes=attributes, status=span.status,
                        resource=span.resource, start_time=span.start_time,
                        end_time=span.end_time)


async def test_checker_catches_renames_and_drops(upstream: RunningUpstream) -> None:
    """A renamed, dropped, retyped or outdated attribute and a renamed metric are reported."""
    tt = make_test_telemetry(semconv=Semconv(old=False, new=True))
    async with running_gateway(upstream_config(upstream.base_url),
                               environ={"UPSTREAM_KEY": UPSTREAM_KEY}, telemetry=tt) as gw:
        await _every_kind_of_call(gw, upstream)
    model = Model.load("latest")
    client = next(s for s in tt.finished_spans() if s.name == "chat gpt-4.1")
    server = next(s for s in tt.finished_spans() if s.kind is SpanKind.SERVER)
    assert model.span_problems(client) == []
    typo = model.span_problems(_renamed(client, "gen_ai.response.model", "gen_ai.response.modle"))
    assert typo == ["gen_ai.inference.client span 'chat gpt-4.1': gen_ai.response.modle is "
                    "not in the conventions' registry"]
    old = model.span_problems(_renamed(client, "gen_ai.provider.name", "gen_ai.system"))
    assert any("gen_ai.system is deprecated" in p for p in old)
    assert any("required attribute gen_ai.provider.name is missing" in p for p in old)
    dropped = model.span_problems(_renamed(server, "url.path", "gateway.url.path"))
    assert any("required attribute url.path is missing" in p for p in dropped)
    wrong = model.span_problems(_renamed(client, "gen_ai.usage.input_tokens",
                                         "gen_ai.usage.cache_creation.input_tokens"))
    assert any("use gen_ai.usage.cache_write.input_tokens" in p for p in wrong)
    failed = replace_status(client)
    assert any("error.type is missing" in p for p in model.span_problems(failed))
    metric = tt.metrics()["gen_ai.client.inference.duration"]
    assert model.metric_problems(replace(metric, name="gen_ai.client.operation.time_to_first_chunk"
                                         )) != []
    assert Model.load("v1.41").metric_problems(metric) == [
        "metric gen_ai.client.inference.duration is not in v1.41"]


def replace_status(span: ReadableSpan) -> ReadableSpan:
    """`span` marked as failed, without error.type."""
    return ReadableSpan(name=span.name, context=span.context, kind=span.kind,
                        attributes=span.attributes, status=Status(StatusCode.ERROR, "x"),
                        resource=span.resource, start_time=span.start_time,
                        end_time=span.end_time)

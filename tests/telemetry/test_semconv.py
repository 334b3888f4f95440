"""The two generations of GenAI names: chosen by OTEL_SEMCONV_STABILITY_OPT_IN, each
emitting exactly its own metric names, both under `/dup`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from openai import AsyncOpenAI
from opentelemetry.context import Context

from gateway.telemetry import names as n
from gateway.telemetry.recorder import AttemptRecorder
from gateway.telemetry.semconv import ENV_VAR, LATEST, Semconv, semconv
from gateway.usage import Usage
from tests.conftest import UPSTREAM_KEY
from tests.fakes.openai_upstream import Behaviour, RunningUpstream
from tests.support import telemetry as support
from tests.support.gateway import RunningGateway, running_gateway, upstream_config
from tests.support.telemetry import attrs, make_test_telemetry

OLD_NAMES = {n.M_OPERATION_DURATION, n.M_TOKEN_USAGE, n.M_TIME_TO_FIRST_CHUNK,
             n.M_TIME_PER_OUTPUT_CHUNK}
NEW_INFERENCE = {n.M_INFERENCE_DURATION, n.M_INFERENCE_TIME_TO_FIRST_CHUNK,
                 n.M_INFERENCE_TIME_PER_OUTPUT_CHUNK, n.M_OPERATION_INPUT_TOKENS,
                 n.M_OPERATION_OUTPUT_TOKENS, n.M_USAGE_INPUT_TOKENS, n.M_USAGE_OUTPUT_TOKENS,
                 n.M_USAGE_CACHE_READ_INPUT_TOKENS, n.M_USAGE_REASONING_OUTPUT_TOKENS}
MODES = {
    "default": ({}, OLD_NAMES),
    # embeddings are no inference: they keep gen_ai.client.operation.duration
    "latest": ({"OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental"},
               NEW_INFERENCE | {n.M_OPERATION_DURATION}),
    "dup": ({"OTEL_SEMCONV_STABILITY_OPT_IN": "http, gen_ai_latest_experimental/dup"},
            OLD_NAMES | NEW_INFERENCE),
}


def test_names_match_the_instrumentation_packages() -> None:
    """The variable and value are those opentelemetry-instrumentation's own reader knows."""
    from opentelemetry.instrumentation import _semconv

    assert ENV_VAR == _semconv.OTEL_SEMCONV_STABILITY_OPT_IN
    assert LATEST == _semconv._StabilityMode.GEN_AI_LATEST_EXPERIMENTAL.value


def test_opt_in_values() -> None:
    """Unset or unrelated values mean v1.41; the opt-in means the new names; /dup both."""
    assert (semconv({}).old, semconv({}).new) == (True, False)
    assert (semconv({"OTEL_SEMCONV_STABILITY_OPT_IN": "http"}).new) is False
    latest = semconv({"OTEL_SEMCONV_STABILITY_OPT_IN": " gen_ai_latest_experimental "})
    assert (latest.old, latest.new) == (False, True)
    both = semconv({"OTEL_SEMCONV_STABILITY_OPT_IN":
                    "gen_ai_latest_experimental,gen_ai_latest_experimental/dup"})
    assert (both.old, both.new) == (True, True)


@pytest.fixture(params=sorted(MODES))
async def mode_gateway(request: pytest.FixtureRequest, upstream: RunningUpstream
                       ) -> AsyncIterator[tuple[str, RunningGateway]]:
    environ, _ = MODES[request.param]
    tt = make_test_telemetry(semconv=semconv(environ))
    env = {"UPSTREAM_KEY": UPSTREAM_KEY, **environ}
    async with running_gateway(upstream_config(upstream.base_url), environ=env,
                               telemetry=tt) as gateway:
        yield request.param, gateway


async def _traffic(gw: RunningGateway, upstream: RunningUpstream) -> None:
    upstream.state.behaviour = Behaviour(prompt_tokens=1200, completion_tokens=40,
                                         cached_tokens=1024, reasoning_tokens=10)
    async with AsyncOpenAI(base_url=gw.base_url, api_key="sk-x", max_retries=0) as sdk:
        await sdk.chat.completions.create(model="gpt-4.1",
                                          messages=[{"role": "user", "content": "hi"}])
        stream = await sdk.chat.completions.create(
            model="gpt-4.1", messages=[{"role": "user", "content": "a b c d"}], stream=True)
        async for _ in stream:
            pass
        await sdk.embeddings.create(model="text-embedding-3-small", input="hello")


@pytest.mark.integration
async def test_each_mode_emits_exactly_its_names(
        mode_gateway: tuple[str, RunningGateway], upstream: RunningUpstream) -> None:
    """Chat, a stream and embeddings produce exactly the gen_ai metric names of the mode."""
    mode, gw = mode_gateway
    await _traffic(gw, upstream)
    emitted = {name for name in gw.telemetry.metrics() if name.startswith("gen_ai.")}
    assert emitted == MODES[mode][1]


@pytest.mark.integration
async def test_new_counters_split_by_modality(
        mode_gateway: tuple[str, RunningGateway], upstream: RunningUpstream) -> None:
    """The usage counters sum each token type with gen_ai.token.modality and no error.type;
    embeddings never add a zero output-token point in either generation."""
    mode, gw = mode_gateway
    await _traffic(gw, upstream)
    tt = gw.telemetry
    for point in tt.points(n.M_TOKEN_USAGE):
        a = dict(point.attributes)
        if a[n.GEN_AI_OPERATION_NAME] == n.OP_EMBEDDINGS:
            assert a[n.GEN_AI_TOKEN_TYPE] == n.TOKEN_INPUT
    if mode == "default":
        return
    cache = tt.points(n.M_USAGE_CACHE_READ_INPUT_TOKENS)
    assert [p.value for p in cache] == [2048]  # the JSON call and the stream, 1024 each
    a = dict(cache[0].attributes)
    assert a[n.GEN_AI_TOKEN_MODALITY] == n.MODALITY_TEXT and n.ERROR_TYPE not in a
    assert sum(p.value for p in tt.points(n.M_USAGE_INPUT_TOKENS)) == 2400
    assert all(dict(p.attributes)[n.GEN_AI_OPERATION_NAME] == n.OP_CHAT
               for p in tt.points(n.M_USAGE_OUTPUT_TOKENS))


def _recorder(tt: support.TestTelemetry) -> AttemptRecorder:
    # The lifecycle counts a request in flight before any attempt; the SDK hands a reader
    # nothing (and so no hot series) while none of its own instruments has a point.
    tt.telemetry.instruments.tallies.active.add((n.OP_CHAT,), 1)
    return AttemptRecorder(tt.telemetry, Context(), operation=n.OP_CHAT, provider_name="anthropic",
                           model="claude", server_address="api.example", server_port=443,
                           request_attributes={}, extra_attributes={})


@pytest.mark.parametrize(("chosen", "keys"), [
    (Semconv(), {n.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS}),
    (Semconv(old=False, new=True), {n.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS}),
    (Semconv(old=True, new=True), {n.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
                                   n.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS}),
])
def test_cache_write_names(chosen: Semconv, keys: set[str]) -> None:
    """Cache writes are cache_creation in v1.41, cache_write in the new generation, both
    under /dup; the new generation counts them on their own counter."""
    tt = make_test_telemetry(semconv=chosen)
    _recorder(tt).finish(response_model="claude", cost=Decimal(0),
                         usage=Usage(input=100, output=5, cache_read=10, cache_creation=30))
    span = tt.finished_spans()[0]
    found = {k for k in attrs(span) if "cache_creation" in k or "cache_write" in k}
    assert found == keys
    written = [p.value for p in tt.points(n.M_USAGE_CACHE_WRITE_INPUT_TOKENS)]
    assert written == ([30] if chosen.new else [])


@pytest.mark.parametrize("hot", [True, False], ids=["hot", "sdk"])
def test_failed_inference_counts_zero_unknown(hot: bool) -> None:
    """A failed inference adds 0 input and output tokens of modality `unknown` (the new
    generation counts every inference), on the hot counters and the SDK's alike."""
    tt = make_test_telemetry(semconv=Semconv(old=False, new=True), hot=hot)
    _recorder(tt).finish(response_model=None, usage=None, cost=None, error_type="timeout")
    for name in (n.M_USAGE_INPUT_TOKENS, n.M_USAGE_OUTPUT_TOKENS):
        (point,) = tt.points(name)
        assert point.value == 0
        assert dict(point.attributes)[n.GEN_AI_TOKEN_MODALITY] == n.MODALITY_UNKNOWN
    (duration,) = tt.points(n.M_INFERENCE_DURATION)
    assert dict(duration.attributes)[n.ERROR_TYPE] == "timeout"
    assert tt.points(n.M_OPERATION_DURATION) == []


@pytest.mark.parametrize("chosen", [Semconv(), Semconv(old=False, new=True),
                                    Semconv(old=True, new=True)], ids=["v1.41", "latest", "dup"])
def test_count_tokens_records_its_duration_only(chosen: Semconv) -> None:
    """count_tokens is no inference in either generation: one
    gen_ai.client.operation.duration point, no token metric, and a span whose usage is the
    count the dialect read (not the attempt's zero usage)."""
    tt = make_test_telemetry(semconv=chosen)
    tt.telemetry.instruments.tallies.active.add((n.OP_COUNT_TOKENS,), 1)
    recorder = AttemptRecorder(tt.telemetry, Context(), operation=n.OP_COUNT_TOKENS,
                               provider_name="anthropic", model="claude",
                               server_address="api.example", server_port=443,
                               request_attributes={}, extra_attributes={})
    recorder.finish(response_model=None, usage=Usage(), cost=Decimal(0),
                    response_attributes={n.GEN_AI_USAGE_INPUT_TOKENS: 42})
    emitted = {name for name in tt.metrics() if name.startswith("gen_ai.")}
    assert emitted == {n.M_OPERATION_DURATION}
    (duration,) = tt.points(n.M_OPERATION_DURATION)
    assert dict(duration.attributes)[n.GEN_AI_OPERATION_NAME] == "count_tokens"
    span = tt.finished_spans()[0]
    assert span.name == "count_tokens claude"
    assert attrs(span)[n.GEN_AI_USAGE_INPUT_TOKENS] == 42
    assert n.GEN_AI_USAGE_OUTPUT_TOKENS not in attrs(span)


def test_audio_and_image_tokens_count_under_their_modality() -> None:
    """The new generation's usage counters split input and output by gen_ai.token.modality:
    the audio and image parts under theirs, the rest as text; v1.41's token usage keeps
    its input and output totals."""
    tt = make_test_telemetry(semconv=Semconv(old=True, new=True))
    _recorder(tt).finish(response_model="claude", cost=Decimal(0),
                         usage=Usage(input=1000, output=300, input_audio=200, input_image=50,
                                     output_audio=120))

    def by_modality(name: str) -> dict[str, int]:
        return {dict(p.attributes)[n.GEN_AI_TOKEN_MODALITY]: p.value for p in tt.points(name)}

    assert by_modality(n.M_USAGE_INPUT_TOKENS) == {"text": 750, "audio": 200, "image": 50}
    assert by_modality(n.M_USAGE_OUTPUT_TOKENS) == {"text": 180, "audio": 120}
    totals = {dict(p.attributes)[n.GEN_AI_TOKEN_TYPE]: p.sum for p in tt.points(n.M_TOKEN_USAGE)}
    assert totals == {"input": 1000, "output": 300}

"""Embeddings translated between OpenAI's and Gemini's APIs, with the official SDKs as
clients of the real gateway: google-genai's embed_content on an OpenAI-format model, the
openai SDK's embeddings.create on a `kind: gemini` model (one string to embedContent, a
list to batchEmbedContents, a list longer than one batch as several), usage and cost,
errors in each client's shape."""

from __future__ import annotations

import openai
import orjson
import pytest
from google.genai import errors as genai_errors
from google.genai import types

from gateway.path.attempt import PARTS_AT_ONCE
from gateway.translate.embeddings import (
    BATCH_LIMIT,
    batch_parts,
    gemini_to_openai_answer,
    joined_batches,
    openai_to_gemini_request,
)
from tests.fakes.gemini_upstream import Behaviour
from tests.support.rig import Rig
from tests.support.waiting import eventually

pytestmark = [
    pytest.mark.integration,  # sockets: fake upstreams, the gateway on a port
    # google-genai's async client subclasses aiohttp's ClientSession, which aiohttp warns of.
    pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning"),
]


async def test_genai_embed_content_on_an_openai_model(rig: Rig) -> None:
    """embed_content (batchEmbedContents) reaches /embeddings with the texts as `input` and
    the dimensions asked for; each vector comes back as Gemini's `values`, the upstream's
    usage on the span and in the ledger."""
    client = rig.genai("v1beta")
    embedded = await client.aio.models.embed_content(
        model="text-embedding-3-small", contents=["first text", "second"],
        config=types.EmbedContentConfig(output_dimensionality=8, task_type="RETRIEVAL_QUERY"))
    sent = rig.chat.state.requests[-1]
    assert sent.path == "/v1/embeddings"
    assert sent.body == {"model": "text-embedding-3-small", "input": ["first text", "second"],
                         "dimensions": 8, "encoding_format": "float"}
    assert embedded.embeddings is not None and len(embedded.embeddings) == 2
    assert all(e.values is not None and len(e.values) == 8 for e in embedded.embeddings)
    span = rig.span("embeddings text-embedding-3-small")
    assert span["gen_ai.provider.name"] == "openai" and span["gen_ai.usage.input_tokens"] > 0
    assert await eventually(rig.settled)
    row = rig.ledger()[0]
    assert row.input_tokens == span["gen_ai.usage.input_tokens"] and row.cost_nanos > 0


async def test_openai_embeddings_on_a_gemini_model(rig: Rig) -> None:
    """One string goes to embedContent, a list to batchEmbedContents (each request naming
    the upstream's model), `dimensions` as outputDimensionality; the SDK decodes the
    vectors it asked for as base64, and the estimated input is charged."""
    async with rig.openai() as client:
        one = await client.embeddings.create(model="gemini-embedding", input="hello there")
        single = rig.google.state.requests[-1]
        many = await client.embeddings.create(model="gemini-embedding", input=["a", "b"],
                                              dimensions=4)
        batch = rig.google.state.requests[-1]
        floats = await client.embeddings.create(model="gemini-embedding", input="x",
                                                encoding_format="float")
    assert single.path == "/v1beta/models/gemini-embedding-001:embedContent"
    assert single.body == {"content": {"parts": [{"text": "hello there"}]}}
    assert one.data[0].embedding == pytest.approx([0.1, 0.2, 0.3])
    assert one.model == "gemini-embedding" and one.usage.prompt_tokens > 0
    assert batch.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert [r["model"] for r in batch.body["requests"]] == ["models/gemini-embedding-001"] * 2
    assert batch.body["requests"][0]["outputDimensionality"] == 4
    assert [len(d.embedding) for d in many.data] == [4, 4]
    assert [d.index for d in many.data] == [0, 1]
    assert floats.data[0].embedding == [0.1, 0.2, 0.3]
    span = rig.span("embeddings gemini-embedding")
    assert span["gen_ai.provider.name"] == "gcp.gemini"
    assert span["gen_ai.usage.input_tokens"] == floats.usage.prompt_tokens
    assert await eventually(lambda: len(rig.settled()) == 3)
    assert all(r.input_tokens > 0 and r.cost_nanos > 0 for r in rig.ledger())


async def test_untranslatable_embeddings_are_a_clear_400(rig: Rig) -> None:
    """Token arrays from an OpenAI client and an image part from a Gemini client are
    refused in each client's error shape before any upstream is called; an upstream
    error reaches each client in its own shape."""
    async with rig.openai() as client:
        with pytest.raises(openai.BadRequestError, match="token arrays") as oai:
            await client.embeddings.create(model="gemini-embedding", input=[[1, 2, 3]])
        assert oai.value.status_code == 400
        rig.google.state.behaviour = Behaviour(status=429)
        with pytest.raises(openai.RateLimitError):
            await client.embeddings.create(model="gemini-embedding", input="x")
    genai_client = rig.genai("v1beta")
    image = types.Content(parts=[types.Part.from_bytes(data=b"\x89PNG", mime_type="image/png")])
    with pytest.raises(genai_errors.ClientError) as google:
        await genai_client.aio.models.embed_content(model="text-embedding-3-small",
                                                    contents=[image])
    assert google.value.code == 400 and google.value.status == "INVALID_ARGUMENT"
    assert not rig.chat.state.requests


async def test_native_batch_on_an_aliased_model_names_the_upstream_model(rig: Rig) -> None:
    """Untranslated, embed_content on a model whose upstream id differs: each batch request
    names the upstream's model, which the API (and the fake) insist on."""
    client = rig.genai("v1beta")
    embedded = await client.aio.models.embed_content(model="gemini-embedding",
                                                     contents=["a", "b"])
    assert embedded.embeddings is not None and len(embedded.embeddings) == 2
    sent = rig.google.state.requests[-1]
    assert sent.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert {r["model"] for r in sent.body["requests"]} == {"models/gemini-embedding-001"}


def test_base64_vectors_are_little_endian_float32() -> None:
    """An answer asked for as base64 carries the float32 bytes the openai SDK decodes."""
    answer = gemini_to_openai_answer({"embedding": {"values": [0.5, -1.0]}},
                                     {"encoding_format": "base64"}, "m", 3)
    assert answer["data"][0]["embedding"] == "AAAAPwAAgL8="
    assert answer["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    body = openai_to_gemini_request({"input": ["a"], "dimensions": 2}, "g-1")
    assert orjson.dumps(body) == (b'{"requests":[{"model":"models/g-1","content":'
                                  b'{"parts":[{"text":"a"}]},"outputDimensionality":2}]}')


async def test_more_inputs_than_one_batch_are_split_and_joined_in_order(rig: Rig) -> None:
    """250 inputs for a Gemini model (whose batchEmbedContents, like the fake, refuses more
    than 100) go as three calls of 100, 100 and 50; the 250 vectors come back in the
    inputs' order as one answer: one span, one ledger row, the whole call's usage."""
    rig.google.state.behaviour = Behaviour(vector_of_length=True)
    texts = ["w" * (i + 1) for i in range(250)]
    async with rig.openai() as client:
        answer = await client.embeddings.create(model="gemini-embedding", input=texts)
    sent = rig.google.state.requests
    assert all(r.path.endswith("/gemini-embedding-001:batchEmbedContents") for r in sent)
    assert sorted(len(r.body["requests"]) for r in sent) == [50, 100, 100]
    sent_texts = [q["content"]["parts"][0]["text"] for r in sent for q in r.body["requests"]]
    assert sorted(sent_texts) == sorted(texts)
    assert [d.index for d in answer.data] == list(range(250))
    assert [d.embedding[0] for d in answer.data] == [float(len(t)) for t in texts]
    assert len(rig.gw.telemetry.spans_named("embeddings gemini-embedding")) == 1
    span = rig.span("embeddings gemini-embedding")
    assert span["gen_ai.usage.input_tokens"] == answer.usage.prompt_tokens > 250
    assert await eventually(lambda: len(rig.settled()) == 1)
    assert rig.ledger()[0].input_tokens == answer.usage.prompt_tokens


async def test_a_long_split_call_keeps_few_parts_in_flight(rig: Rig) -> None:
    """2,048 inputs go as 21 calls of which no more than PARTS_AT_ONCE (and more than one)
    are at the upstream at the same moment, the vectors still joined in the inputs' order."""
    rig.google.state.behaviour = Behaviour(vector_of_length=True, embed_delay_s=0.1)
    texts = ["w" * (i % 97 + 1) for i in range(2048)]
    async with rig.openai() as client:
        answer = await client.embeddings.create(model="gemini-embedding", input=texts)
    assert 1 < rig.google.state.embedding_peak <= PARTS_AT_ONCE < len(rig.google.state.requests) == 21
    assert [d.embedding[0] for d in answer.data] == [float(len(t)) for t in texts]


async def test_a_failing_part_stops_the_parts_waiting_their_turn(rig: Rig) -> None:
    """When the first of 21 parts fails (503), the call fails with its error and the parts
    still waiting for their turn are never sent."""
    rig.google.state.behaviour = Behaviour(unavailable_for="poison", embed_delay_s=0.05)
    texts = ["x"] * 2048
    texts[0] = "poison"
    async with rig.openai() as client:
        with pytest.raises(openai.InternalServerError) as unavailable:
            await client.embeddings.create(model="gemini-embedding", input=texts)
    assert unavailable.value.status_code == 503
    assert PARTS_AT_ONCE <= len(rig.google.state.requests) < 21


async def test_a_failing_part_fails_the_split_call(rig: Rig) -> None:
    """When one part of a split call fails (the second of three answers 503) or all are
    refused (429), the client gets that error in OpenAI's shape, never a partial answer."""
    rig.google.state.behaviour = Behaviour(unavailable_for="poison")
    texts = ["x"] * 250
    texts[150] = "poison"
    async with rig.openai() as client:
        with pytest.raises(openai.InternalServerError) as unavailable:
            await client.embeddings.create(model="gemini-embedding", input=texts)
        rig.google.state.behaviour = Behaviour(status=429)
        with pytest.raises(openai.RateLimitError):
            await client.embeddings.create(model="gemini-embedding", input=["x"] * 150)
    assert unavailable.value.status_code == 503 and "overloaded" in unavailable.value.message
    assert rig.google.state.requests


async def test_a_gemini_clients_own_batch_is_never_split(rig: Rig) -> None:
    """A Gemini client's batch of 101 passes through whole, and the upstream refuses it as
    Gemini does: 400 INVALID_ARGUMENT naming the limit, in the SDK's ClientError."""
    client = rig.genai("v1beta")
    with pytest.raises(genai_errors.ClientError) as caught:
        await client.aio.models.embed_content(model="gemini-embedding", contents=["x"] * 101)
    assert caught.value.code == 400 and caught.value.status == "INVALID_ARGUMENT"
    assert "at most 100 requests can be in one batch" in (caught.value.message or "")
    assert [len(r.body["requests"]) for r in rig.google.state.requests] == [101]


def test_batches_split_at_the_limit_and_join_in_order() -> None:
    """batch_parts cuts 201 requests into calls of 100, 100 and 1 (a batch of 100 stays
    whole); joined_batches keeps the order and sums the prompt tokens only when every
    part counts them."""
    requests = [{"model": "models/g", "content": {"parts": [{"text": str(i)}]}}
                for i in range(2 * BATCH_LIMIT + 1)]
    parts = batch_parts({"requests": requests})
    assert parts is not None and [len(p["requests"]) for p in parts] == [100, 100, 1]
    assert [r for p in parts for r in p["requests"]] == requests
    assert batch_parts({"requests": requests[:BATCH_LIMIT]}) is None
    counted = [{"embeddings": [{"values": [1.0]}], "usageMetadata": {"promptTokenCount": 3}},
               {"embeddings": [{"values": [2.0]}, {"values": [3.0]}],
                "usageMetadata": {"promptTokenCount": 4}}]
    assert joined_batches(counted) == {
        "embeddings": [{"values": [1.0]}, {"values": [2.0]}, {"values": [3.0]}],
        "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7}}
    assert "usageMetadata" not in joined_batches([counted[0], {"embeddings": []}])

"""Embeddings translated between OpenAI's and Gemini's APIs, with the official SDKs as
clients of the real gateway: google-genai's embed_content on an OpenAI-format model, the
openai SDK's embeddings.create on a `kind: gemini` model (one string to embedContent, a
list to batchEmbedContents), usage and cost, errors in each client's shape."""

from __future__ import annotations

import openai
import orjson
import pytest
from google.genai import errors as genai_errors
from google.genai import types

from gateway.translate.embeddings import gemini_to_openai_answer, openai_to_gemini_request
from tests.fakes.gemini_upstream import Behaviour
from tests.support.waiting import eventually
from tests.translate.rig import Rig

pytestmark = [
    pytest.mark.integration,  # sockets: fake upstreams, the gateway on a port
    # google-genai's async client subclasses aiohttp's ClientSession, which aiohttp warns of.
    pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning"),
]


async def test_genai_embed_content_on_an_openai_model(rig: Rig) -> None:
    """embed_content (batchEmbedContents) reaches /embeddings with the texts as `input` and
    the dimensions asked for; each vector comes back as Gemini's `values`, the upstream's
    usage on the span and in the ledger."""
    client = rig.genai()
    embedded = await client.aio.models.embed_content(
        model="text-embedding-3-small", contents=["first text", "second"],
        config=types.EmbedContentConfig(output_dimensionality=8, task_type="RETRIEVAL_QUERY"))
    sent = rig.oai.state.requests[-1]
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
    genai_client = rig.genai()
    image = types.Content(parts=[types.Part.from_bytes(data=b"\x89PNG", mime_type="image/png")])
    with pytest.raises(genai_errors.ClientError) as google:
        await genai_client.aio.models.embed_content(model="text-embedding-3-small",
                                                    contents=[image])
    assert google.value.code == 400 and google.value.status == "INVALID_ARGUMENT"
    assert not rig.oai.state.requests


async def test_native_batch_on_an_aliased_model_names_the_upstream_model(rig: Rig) -> None:
    """Untranslated, embed_content on a model whose upstream id differs: each batch request
    names the upstream's model, which the API (and the fake) insist on."""
    client = rig.genai()
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

"""The simulator's embeddings, through the gateway with the official SDKs: vectors as long
as each API's own size parameter asks (`dimensions`, `outputDimensionality`), one a text."""

from __future__ import annotations

import openai
import pytest
from google import genai
from google.genai import types

from tests.support.gateway import running_gateway

pytestmark = [
    pytest.mark.integration,  # the gateway on a port
    # google-genai's async client subclasses aiohttp's ClientSession, which aiohttp warns of.
    pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning"),
]

SIM_CONFIG = """
providers:
  sim: {kind: mock, mock: {latency_ms: 0, ms_per_chunk: 0, jitter: 0}}
models:
  text-embedding-3-small: {provider: sim, price_per_mtok: {input: 0.02, output: 0}}
  gemini-embedding-001: {provider: sim, price_per_mtok: {input: 0.15, output: 0}}
"""


async def test_the_simulator_cuts_vectors_to_the_size_asked_for() -> None:
    """OpenAI's `dimensions` and Gemini's `outputDimensionality` shorten the simulator's
    vectors as the real APIs do; without them the full size comes back."""
    async with running_gateway(SIM_CONFIG, environ={}) as gw:
        async with openai.AsyncOpenAI(base_url=gw.base_url, api_key="unused",
                                      max_retries=0) as client:
            short = await client.embeddings.create(model="text-embedding-3-small",
                                                   input=["a", "b"], dimensions=16)
            full = await client.embeddings.create(model="text-embedding-3-small", input="a")
        google = genai.Client(api_key="unused", http_options=types.HttpOptions(
            base_url=gw.root))
        cut = await google.aio.models.embed_content(
            model="gemini-embedding-001", contents=["a", "b"],
            config=types.EmbedContentConfig(output_dimensionality=8))
    assert [len(d.embedding) for d in short.data] == [16, 16]
    assert len(full.data[0].embedding) > 16
    assert cut.embeddings is not None
    assert [len(e.values or []) for e in cut.embeddings] == [8, 8]

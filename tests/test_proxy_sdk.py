"""The official `openai` SDK works against the gateway exactly as against OpenAI."""

from __future__ import annotations

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI

from tests.conftest import UPSTREAM_KEY
from tests.fakes.openai_upstream import Behaviour, RunningUpstream
from tests.support.gateway import RunningGateway, running_gateway, upstream_config

pytestmark = pytest.mark.integration  # sockets or processes: the slow tier

MESSAGES = [{"role": "user", "content": "Say hello to the gateway"}]


async def test_chat_plain(client: AsyncOpenAI, upstream: RunningUpstream) -> None:
    """A plain chat completion comes back parsed, with usage, via the upstream."""
    upstream.state.behaviour = Behaviour(content="Hello there", completion_tokens=2)
    result = await client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    assert result.choices[0].message.content == "Hello there"
    assert result.usage is not None and result.usage.completion_tokens == 2
    assert upstream.state.last_request.body["model"] == "gpt-4.1"


async def test_unknown_fields_pass_through(client: AsyncOpenAI, upstream: RunningUpstream) -> None:
    """Fields the gateway does not know reach the upstream untouched."""
    await client.chat.completions.create(
        model="gpt-4.1", messages=MESSAGES, temperature=0.3,
        extra_body={"logit_bias": {"50256": -100}, "vendor_flag": {"x": [1, 2]}},
    )
    body = upstream.state.last_request.body
    assert body["vendor_flag"] == {"x": [1, 2]}
    assert body["logit_bias"] == {"50256": -100}
    assert body["temperature"] == 0.3


async def test_alias_model_is_rewritten_both_ways(client: AsyncOpenAI,
                                                  upstream: RunningUpstream) -> None:
    """The upstream sees its own model id; the client sees the name it asked for."""
    result = await client.chat.completions.create(model="cheap", messages=MESSAGES)
    assert upstream.state.last_request.body["model"] == "gpt-4.1-mini"
    assert result.model == "cheap"


async def test_stream_without_include_usage(client: AsyncOpenAI, upstream: RunningUpstream) -> None:
    """A stream relays every chunk, and the usage chunk the client did not ask for is dropped."""
    upstream.state.behaviour = Behaviour(content="one two three four")
    stream = await client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True)
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three four"
    assert all(c.choices for c in chunks), "usage-only chunk leaked to the client"
    assert all(c.usage is None for c in chunks)
    assert upstream.state.last_request.body["stream_options"] == {"include_usage": True}


async def test_stream_with_include_usage(client: AsyncOpenAI, upstream: RunningUpstream) -> None:
    """A client asking for usage gets the final usage chunk."""
    upstream.state.behaviour = Behaviour(content="a b c", completion_tokens=3, prompt_tokens=11)
    stream = await client.chat.completions.create(
        model="cheap", messages=MESSAGES, stream=True, stream_options={"include_usage": True})
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 11
    assert {c.model for c in chunks} == {"cheap"}


async def test_embeddings(client: AsyncOpenAI) -> None:
    """Embeddings come back as vectors with usage."""
    result = await client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert len(result.data) == 2 and len(result.data[0].embedding) > 0
    assert result.usage.prompt_tokens > 0


async def test_models_lists_configured_models(client: AsyncOpenAI) -> None:
    """GET /v1/models lists the gateway's models in OpenAI's list shape."""
    ids = [m.id async for m in client.models.list()]
    assert ids == ["gpt-4.1", "cheap", "text-embedding-3-small"]


async def test_models_retrieve_answers_one_model(client: AsyncOpenAI) -> None:
    """The SDK's models.retrieve gets the model (GET /v1/models/{id}), or NotFoundError."""
    model = await client.models.retrieve("text-embedding-3-small")
    assert model.id == "text-embedding-3-small" and model.object == "model"
    assert model.owned_by == "openai"
    with pytest.raises(openai.NotFoundError) as info:
        await client.models.retrieve("gpt-9")
    assert info.value.code == "model_not_found"


async def test_models_and_errors_carry_the_request_id_and_traceresponse(
        client: AsyncOpenAI, gw: RunningGateway) -> None:
    """/v1/models, /v1/models/{id}, and error answers (unknown model, unknown route, wrong
    method) carry x-request-id and traceresponse like every proxied call."""
    listed = await client.models.with_raw_response.list()
    retrieved = await client.models.with_raw_response.retrieve("gpt-4.1")
    with pytest.raises(openai.NotFoundError) as unknown:
        await client.chat.completions.create(model="gpt-9", messages=MESSAGES)
    headers = [listed.headers, retrieved.headers, unknown.value.response.headers]
    async with aiohttp.ClientSession() as http:
        for method, path in (("GET", "/v1/nowhere"), ("GET", "/v1/chat/completions")):
            async with http.request(method, gw.root + path,
                                    headers={"x-request-id": "mine-1"}) as resp:
                assert resp.status in (404, 405)
                assert resp.headers["x-request-id"] == "mine-1"
                headers.append(resp.headers)  # type: ignore[arg-type]
    for found in headers:
        assert found["x-request-id"]
        assert found["traceresponse"].startswith("00-")


async def test_chat_on_an_embedding_model_and_embeddings_on_a_chat_model_are_400(
        client: AsyncOpenAI, upstream: RunningUpstream) -> None:
    """Each model serves its own operation: the other one is a clear 400, not sent upstream."""
    with pytest.raises(openai.BadRequestError) as chat:
        await client.chat.completions.create(model="text-embedding-3-small", messages=MESSAGES)
    assert "embedding model" in chat.value.message and chat.value.code == "model_not_supported"
    with pytest.raises(openai.BadRequestError) as embed:
        await client.embeddings.create(model="gpt-4.1", input="hi")
    assert "chat model" in embed.value.message
    assert upstream.state.total_requests == 0


async def test_unknown_model_is_404(client: AsyncOpenAI) -> None:
    """An unknown model raises NotFoundError with code model_not_found."""
    with pytest.raises(openai.NotFoundError) as info:
        await client.chat.completions.create(model="gpt-9", messages=MESSAGES)
    assert info.value.code == "model_not_found"


async def test_missing_messages_is_400(client: AsyncOpenAI) -> None:
    """A chat request without messages raises BadRequestError naming the param."""
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(model="gpt-4.1", messages=[])
    assert info.value.status_code == 400


async def test_missing_model_is_400(gw: RunningGateway) -> None:
    """No model field is a 400 in OpenAI's error shape with param model."""
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{gw.base_url}/chat/completions",
                             json={"messages": MESSAGES}) as resp:
            body = await resp.json()
    assert resp.status == 400
    assert body["error"]["param"] == "model"
    assert set(body["error"]) == {"message", "type", "param", "code"}


async def test_body_not_json_is_400(client: AsyncOpenAI, gw: RunningGateway) -> None:
    """A body that is not JSON raises BadRequestError."""
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{gw.base_url}/chat/completions", data=b"{nope") as resp:
            body = await resp.json()
    assert resp.status == 400 and body["error"]["type"] == "invalid_request_error"


async def test_body_too_large_is_413(upstream: RunningUpstream) -> None:
    """A body over the configured limit is refused with 413 before reaching the upstream."""
    config = upstream_config(upstream.base_url, extra="server: {max_body_bytes: 1000}")
    async with running_gateway(config, environ={"UPSTREAM_KEY": UPSTREAM_KEY}) as gw:
        async with AsyncOpenAI(base_url=gw.base_url, api_key="x", max_retries=0) as sdk:
            with pytest.raises(openai.APIStatusError) as info:
                await sdk.chat.completions.create(
                    model="gpt-4.1", messages=[{"role": "user", "content": "x" * 5000}])
    assert info.value.status_code == 413
    assert upstream.state.total_requests == 0


async def test_wrong_method_is_405(gw: RunningGateway) -> None:
    """GET on the chat route is 405 with an Allow header, in OpenAI's shape."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{gw.base_url}/chat/completions") as resp:
            body = await resp.json()
    assert resp.status == 405 and resp.headers["allow"] == "POST"
    assert body["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize(("status", "exc"), [
    (400, openai.BadRequestError), (401, openai.AuthenticationError),
    (429, openai.RateLimitError), (500, openai.InternalServerError),
    (503, openai.InternalServerError),
])
async def test_upstream_error_passes_through(client: AsyncOpenAI, upstream: RunningUpstream,
                                             status: int, exc: type[Exception]) -> None:
    """An upstream error status and body reach the client as the SDK's own exception."""
    # Retry-After past retry.max_retry_after_s: answered at once, not retried after a wait
    # (waiting it out is tested on the fake clock, tests/path/test_chain.py).
    upstream.state.behaviour = Behaviour.error(status, retry_after=30 if status == 429 else None)
    with pytest.raises(exc) as info:
        await client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    error = info.value
    assert isinstance(error, openai.APIStatusError) and error.status_code == status
    if status == 429:
        assert error.response.headers["retry-after"] == "30"


async def test_upstream_auth_error_never_echoes_provider_key(upstream: RunningUpstream) -> None:
    """When the upstream rejects our key, the client never sees any part of it."""
    config = upstream_config(upstream.base_url)
    wrong = "sk-wrong-provider-key-abcdef123456"
    async with running_gateway(config, environ={"UPSTREAM_KEY": wrong}) as gw:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{gw.base_url}/chat/completions",
                                 json={"model": "gpt-4.1", "messages": MESSAGES}) as resp:
                raw = await resp.read()
    assert resp.status == 401
    assert b"sk-wrong" not in raw and wrong[-6:].encode() not in raw
    assert b"error" in raw


async def test_upstream_timeout_is_504(upstream: RunningUpstream) -> None:
    """An upstream slower than the provider timeout gives 504."""
    upstream.state.behaviour = Behaviour(latency_s=3)
    config = upstream_config(upstream.base_url).replace("timeout_s: 5", "timeout_s: 0.3")
    async with running_gateway(config, environ={"UPSTREAM_KEY": UPSTREAM_KEY}) as gw:
        async with AsyncOpenAI(base_url=gw.base_url, api_key="x", max_retries=0) as sdk:
            with pytest.raises(openai.APIStatusError) as info:
                await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    assert info.value.status_code == 504


async def test_upstream_unreachable_is_502() -> None:
    """A provider nobody listens on gives 502."""
    config = upstream_config("http://127.0.0.1:9/v1")
    async with running_gateway(config, environ={"UPSTREAM_KEY": "k"}) as gw:
        async with AsyncOpenAI(base_url=gw.base_url, api_key="x", max_retries=0) as sdk:
            with pytest.raises(openai.APIStatusError) as info:
                await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    assert info.value.status_code == 502


async def test_unknown_route_is_openai_shaped_404(gw: RunningGateway) -> None:
    """Unknown paths answer OpenAI's 404 shape, not an HTML page."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{gw.root}/v1/nothing") as resp:
            body = await resp.json()
    assert resp.status == 404 and body["error"]["code"] == "unknown_url"


async def test_health_ready_metrics(gw: RunningGateway, client: AsyncOpenAI) -> None:
    """/health and /ready answer 200 and /metrics shows the call just made."""
    await client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{gw.root}/health") as resp:
            assert resp.status == 200
        async with http.get(f"{gw.root}/ready") as resp:
            assert resp.status == 200
        async with http.get(f"{gw.root}/metrics") as resp:
            text = await resp.text()
    assert 'gateway_requests_total{' in text
    assert 'gen_ai_request_model="gpt-4.1"' in text

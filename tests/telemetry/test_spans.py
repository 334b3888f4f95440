"""Spans: names, kinds, parent/child links and every gen_ai attribute."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from openai import AsyncOpenAI
from opentelemetry.trace import SpanKind, StatusCode

from tests.fakes.openai_upstream import Behaviour, RunningUpstream
from tests.support.gateway import RunningGateway
from tests.support.telemetry import attrs

pytestmark = pytest.mark.integration  # sockets or processes: the slow tier

MESSAGES = [{"role": "user", "content": "hello"}]
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_SPAN = "b7ad6b7169203331"


async def _post(gw: RunningGateway, body: dict[str, object],
                headers: dict[str, str] | None = None) -> tuple[aiohttp.ClientResponse, bytes]:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{gw.base_url}/chat/completions", json=body,
                             headers=headers or {}) as resp:
            return resp, await resp.read()


async def test_trace_links_client_to_upstream(gw: RunningGateway, upstream: RunningUpstream) -> None:
    """incoming traceparent -> SERVER span -> CLIENT span -> traceparent the upstream got."""
    resp, _ = await _post(gw, {"model": "gpt-4.1", "messages": MESSAGES},
                          {"traceparent": f"00-{TRACE_ID}-{PARENT_SPAN}-01"})
    server = gw.telemetry.spans_named("POST /v1/chat/completions")[0]
    client = gw.telemetry.spans_named("chat gpt-4.1")[0]
    assert server.kind is SpanKind.SERVER and client.kind is SpanKind.CLIENT
    assert f"{server.context.trace_id:032x}" == TRACE_ID
    assert server.parent is not None and f"{server.parent.span_id:016x}" == PARENT_SPAN
    assert client.parent is not None and client.parent.span_id == server.context.span_id
    sent = upstream.state.last_request.headers["traceparent"]
    assert sent == f"00-{TRACE_ID}-{client.context.span_id:016x}-01"
    assert resp.headers["traceresponse"] == f"00-{TRACE_ID}-{server.context.span_id:016x}-01"
    assert resp.headers["x-request-id"]


async def test_plain_chat_attributes(gw: RunningGateway, upstream: RunningUpstream) -> None:
    """A plain call's CLIENT span carries request, response, usage and cost attributes."""
    upstream.state.behaviour = Behaviour(prompt_tokens=1200, completion_tokens=40,
                                         cached_tokens=1024, reasoning_tokens=10)
    await _post(gw, {"model": "gpt-4.1", "messages": MESSAGES, "max_tokens": 100,
                     "temperature": 0.5, "top_p": 0.9, "frequency_penalty": 0.1,
                     "presence_penalty": 0.2, "stop": ["END"], "seed": 7, "n": 2,
                     "response_format": {"type": "json_object"}, "service_tier": "flex"})
    span = gw.telemetry.spans_named("chat gpt-4.1")[0]
    a = attrs(span)
    port = upstream.port
    expected = {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4.1", "server.address": "127.0.0.1", "server.port": port,
        "gen_ai.request.max_tokens": 100, "gen_ai.request.temperature": 0.5,
        "gen_ai.request.top_p": 0.9, "gen_ai.request.frequency_penalty": 0.1,
        "gen_ai.request.presence_penalty": 0.2, "gen_ai.request.stop_sequences": ("END",),
        "gen_ai.request.seed": 7, "gen_ai.request.choice.count": 2, "gen_ai.output.type": "json",
        "openai.request.service_tier": "flex", "openai.api.type": "chat_completions",
        "gen_ai.usage.input_tokens": 1200, "gen_ai.usage.output_tokens": 40,
        "gen_ai.usage.cache_read.input_tokens": 1024,
        "gen_ai.usage.reasoning.output_tokens": 10,
    }
    for key, value in expected.items():
        assert a.get(key) == value, key
    assert a["gen_ai.response.id"].startswith("chatcmpl-")
    assert a["gen_ai.response.model"].startswith("gpt-4.1")
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["openai.response.system_fingerprint"].startswith("fp_")
    assert "openai.response.service_tier" in a
    # (1200-1024)*2.5 + 1024*0.625 + 40*8 per million
    assert abs(a["gateway.cost.usd"] - (176 * 2.5 + 1024 * 0.625 + 40 * 8) / 1e6) < 1e-12
    assert "gen_ai.request.stream" not in a and "gen_ai.system" not in a
    assert "gen_ai.input.messages" not in a, "content must not be captured by default"


async def test_streaming_attributes(gw: RunningGateway, upstream: RunningUpstream) -> None:
    """A streamed call records stream flag, time to first chunk, usage and finish reason."""
    upstream.state.behaviour = Behaviour(content="a b c", completion_tokens=3, prompt_tokens=9)
    async with AsyncOpenAI(base_url=gw.base_url, api_key="x", max_retries=0) as sdk:
        stream = await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES,
                                                   stream=True)
        async for _ in stream:
            pass
    a = attrs(gw.telemetry.spans_named("chat gpt-4.1")[0])
    assert a["gen_ai.request.stream"] is True
    assert a["gen_ai.response.time_to_first_chunk"] > 0
    assert a["gen_ai.usage.input_tokens"] == 9 and a["gen_ai.usage.output_tokens"] == 3
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["gateway.stream.end"] == "done"


async def test_upstream_error_marks_span(gw: RunningGateway, upstream: RunningUpstream) -> None:
    """A failed attempt ends its CLIENT span with ERROR status and a low-cardinality error.type."""
    upstream.state.behaviour = Behaviour.error(503)
    await _post(gw, {"model": "gpt-4.1", "messages": MESSAGES})
    client = gw.telemetry.spans_named("chat gpt-4.1")[0]
    server = gw.telemetry.spans_named("POST")[0]
    assert client.status.status_code is StatusCode.ERROR
    assert attrs(client)["error.type"] == "503"
    assert attrs(server)["http.response.status_code"] == 503


async def test_client_disconnect_ends_span(gw: RunningGateway, upstream: RunningUpstream) -> None:
    """A client leaving mid-stream ends the CLIENT span with error.type client_disconnect."""
    import asyncio

    upstream.state.behaviour = Behaviour(content=" ".join(["w"] * 50), chunk_delay_s=0.05)
    async with aiohttp.ClientSession() as http:
        resp = await http.post(f"{gw.base_url}/chat/completions",
                               json={"model": "gpt-4.1", "messages": MESSAGES, "stream": True})
        # Leave once some content arrived (the server cancels the handler the moment the
        # client goes, so only what was relayed by then is counted).
        while b'"content":"w' not in await resp.content.readline():
            pass
        resp.close()
    for _ in range(100):
        if gw.telemetry.spans_named("chat gpt-4.1"):
            break
        await asyncio.sleep(0.05)
    a = attrs(gw.telemetry.spans_named("chat gpt-4.1")[0])
    assert a["error.type"] == "client_disconnect"
    assert a["gateway.usage.estimated"] is True
    assert 0 < a["gen_ai.usage.output_tokens"] < 50


async def test_http_client_spans_nest_under_the_genai_span(upstream: RunningUpstream) -> None:
    """GATEWAY_HTTP_CLIENT_SPANS=true: the aiohttp client instrumentation's HTTP span is
    recorded by the gateway's own tracer provider, as a child of the attempt's CLIENT span in
    the same trace, and is what the upstream's traceparent points at."""
    from tests.conftest import UPSTREAM_KEY
    from tests.support.gateway import running_gateway, upstream_config

    environ = {"UPSTREAM_KEY": UPSTREAM_KEY, "GATEWAY_HTTP_CLIENT_SPANS": "true"}
    async with running_gateway(upstream_config(upstream.base_url), environ=environ) as gw:
        resp, _ = await _post(gw, {"model": "gpt-4.1", "messages": MESSAGES})
        assert resp.status == 200
        client = gw.telemetry.spans_named("chat gpt-4.1")[0]
        http = [s for s in gw.telemetry.finished_spans()
                if s.kind is SpanKind.CLIENT and s is not client and s.name.startswith("POST")]
    assert len(http) == 1, [s.name for s in gw.telemetry.finished_spans()]
    assert http[0].context.trace_id == client.context.trace_id
    assert http[0].parent is not None and http[0].parent.span_id == client.context.span_id
    sent = upstream.state.last_request.headers["traceparent"]
    assert sent.split("-")[2] == f"{http[0].context.span_id:016x}"


async def test_server_span_url_and_server_attributes(gw: RunningGateway,
                                                      upstream: RunningUpstream) -> None:
    """The SERVER span carries the HTTP conventions' url.scheme and url.path (required) and
    server.address/server.port from the Host header."""
    await _post(gw, {"model": "gpt-4.1", "messages": MESSAGES})
    a = attrs(gw.telemetry.spans_named("POST /v1/chat/completions")[0])
    port = int(gw.root.rsplit(":", 1)[1])
    assert {k: a.get(k) for k in ("url.scheme", "url.path", "server.address", "server.port",
                                  "http.request.method", "http.route")} == {
        "url.scheme": "http", "url.path": "/v1/chat/completions",
        "server.address": "127.0.0.1", "server.port": port, "http.request.method": "POST",
        "http.route": "/v1/chat/completions"}


async def test_server_attributes_follow_each_requests_host(gw: RunningGateway,
                                                           upstream: RunningUpstream) -> None:
    """Requests to the same route with different Host headers (kept once per Host) each
    get their own server.address and server.port, and a repeated Host its own again."""
    for host in ("api.example.com:8443", "[::1]:9000", "api.example.com:8443", "plain"):
        await _post(gw, {"model": "gpt-4.1", "messages": MESSAGES}, {"Host": host})
    spans = gw.telemetry.spans_named("POST /v1/chat/completions")
    got = [(a.get("server.address"), a.get("server.port"), a.get("url.path"))
           for a in map(attrs, spans)]
    path = "/v1/chat/completions"
    assert got == [("api.example.com", 8443, path), ("::1", 9000, path),
                   ("api.example.com", 8443, path), ("plain", None, path)]


async def test_server_attributes_follow_each_requests_path(gw: RunningGateway,
                                                           upstream: RunningUpstream) -> None:
    """The route's two paths, in turn with one Host, each give their own url.path on the
    one http.route, however often they repeat."""
    root = gw.base_url.removesuffix("/v1")
    async with aiohttp.ClientSession() as http:
        for path in ("/v1/chat/completions", "/chat/completions", "/v1/chat/completions"):
            async with http.post(root + path, json={"model": "gpt-4.1", "messages": MESSAGES},
                                 headers={"Host": "gw.example:8080"}) as resp:
                assert resp.status == 200
    got = [(a.get("url.path"), a.get("http.route"), a.get("server.address"), a.get("server.port"))
           for a in map(attrs, gw.telemetry.spans_named("POST /v1/chat/completions"))]
    route = "/v1/chat/completions"
    assert got == [(route, route, "gw.example", 8080), ("/chat/completions", route, "gw.example", 8080),
                   (route, route, "gw.example", 8080)]


async def test_a_request_without_host_is_named_by_the_listeners_address(
        gw: RunningGateway, upstream: RunningUpstream) -> None:
    """An HTTP/1.0 request with no Host header gets server.address from the address it came
    in on (aiohttp's `host` has no port then), before and after one that named a Host."""
    host, port = gw.root.removeprefix("http://").rsplit(":", 1)
    body = b'{"model": "gpt-4.1", "messages": [{"role": "user", "content": "hello"}]}'
    head = (b"POST /v1/chat/completions HTTP/1.0\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body))
    for named in (False, True, False):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(head.replace(b"\r\n\r\n", b"\r\nHost: gw.example\r\n\r\n") if named
                     else head)
        writer.write(body)
        assert (await reader.read()).startswith(b"HTTP/1.0 200")
        writer.close()
    got = [(a.get("server.address"), a.get("server.port"))
           for a in map(attrs, gw.telemetry.spans_named("POST /v1/chat/completions"))]
    assert got == [(host, None), ("gw.example", None), (host, None)]


async def test_embeddings_span_dimension_count(gw: RunningGateway,
                                               upstream: RunningUpstream) -> None:
    """An embeddings CLIENT span carries gen_ai.embeddings.dimension.count (the length of
    the vectors returned) and no output-token count."""
    async with AsyncOpenAI(base_url=gw.base_url, api_key="x", max_retries=0) as sdk:
        answer = await sdk.embeddings.create(model="text-embedding-3-small", input="hello",
                                             dimensions=256)
    assert len(answer.data[0].embedding) == 256
    a = attrs(gw.telemetry.spans_named("embeddings text-embedding-3-small")[0])
    assert a["gen_ai.embeddings.dimension.count"] == 256
    assert "gen_ai.usage.input_tokens" in a and "gen_ai.usage.output_tokens" not in a

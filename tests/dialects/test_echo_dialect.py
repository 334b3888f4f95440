"""A new dialect plugs into the request path by registration alone: the toy "echo"
dialect (echo_dialect.py) served through the real gateway against a fake upstream
that speaks its wire format, JSON and streaming, with its own error shapes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from gateway.dialects.registry import default_dialects
from tests.dialects.echo_dialect import NAME, EchoDialect
from tests.support.gateway import RunningGateway, running_gateway

pytestmark = pytest.mark.integration  # sockets or processes: the slow tier


@dataclass
class EchoUpstream:
    base_url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    cut_stream: bool = False  # close the stream before its `end` event
    status: int = 200


def _event(kind: str, payload: dict[str, Any]) -> bytes:
    return f"event: {kind}\n".encode() + b"data: " + orjson.dumps(payload) + b"\n\n"


@contextlib.asynccontextmanager
async def echo_upstream() -> AsyncIterator[EchoUpstream]:
    """A fake upstream speaking the echo wire format on a free port."""
    state = EchoUpstream("")

    async def echo(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        state.bodies.append(body)
        if state.status != 200:
            return web.json_response({"kind": "error", "detail": {
                "type": "overloaded", "message": "busy", "code": "busy"}}, status=state.status)
        words = body["text"].split()
        usage = {"in": len(words), "out": len(words)}
        headers = {"x-echo-version": "1", "x-secret-internal": "no"}
        if not body.get("stream"):
            return web.json_response({"model": body["model"], "echo": body["text"],
                                      "usage": usage}, headers=headers)
        out = web.StreamResponse(headers={**headers, "content-type": "text/event-stream"})
        await out.prepare(request)
        for word in words:
            await out.write(_event("word", {"word": word}))
        if state.cut_stream:
            return out
        await out.write(_event("usage", usage) + _event("end", {}))
        await out.write_eof()
        return out

    app = web.Application()
    app.router.add_post("/v1/echo", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    try:
        yield state
    finally:
        await runner.cleanup()


def _config(base_url: str) -> str:
    return f"""
providers:
  echoes: {{kind: openai, base_url: "{base_url}", provider_name: echo-co, timeout_s: 5}}
  sim: {{kind: mock}}
models:
  echo-1:
    provider: echoes
    upstream_model: echo-upstream-1
    price_per_mtok: {{input: 1, output: 2}}
  simulated: {{provider: sim, price_per_mtok: {{input: 1, output: 1}}}}
"""


@pytest.fixture
async def echo() -> AsyncIterator[EchoUpstream]:
    async with echo_upstream() as up:
        yield up


@pytest.fixture
async def gw(echo: EchoUpstream) -> AsyncIterator[RunningGateway]:
    """The gateway serving the default dialects plus echo, which the `openai` adapter
    (plain JSON over HTTP) carries natively."""
    async with running_gateway(_config(echo.base_url),
                               dialects=[*default_dialects(), EchoDialect()],
                               provider_dialects={"openai": [NAME]}) as gateway:
        yield gateway


async def _post(gw: RunningGateway, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{gw.root}/v1/echo", json=body) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, await resp.read()


async def test_json_answer_is_rewritten_accounted_and_forwarded(
        gw: RunningGateway, echo: EchoUpstream) -> None:
    """A JSON echo reaches the upstream under its upstream model id, comes back under the
    gateway's model name with the dialect's pass-through header, and its usage and cost
    land on the CLIENT span."""
    status, headers, raw = await _post(gw, {"model": "echo-1", "text": "one two three"})
    assert status == 200
    assert orjson.loads(raw) == {"model": "echo-1", "echo": "one two three",
                                 "usage": {"in": 3, "out": 3}}
    assert echo.bodies[0]["model"] == "echo-upstream-1"
    assert headers["x-echo-version"] == "1" and "x-secret-internal" not in headers
    assert headers["x-gateway-model"] == "echo-1" and headers["x-request-id"]
    span = gw.telemetry.spans_named("text_completion echo-1")[0]
    attrs = dict(span.attributes or {})
    assert attrs["gen_ai.usage.input_tokens"] == 3 and attrs["gen_ai.usage.output_tokens"] == 3
    assert attrs["echo.words"] == 3 and attrs["echo.length"] == 13
    assert attrs["gen_ai.response.model"] == "echo-upstream-1"
    assert attrs["gen_ai.provider.name"] == "echo-co"
    assert attrs["gateway.cost.usd"] == pytest.approx(9 / 1_000_000)


async def test_stream_is_relayed_event_by_event_with_its_usage(
        gw: RunningGateway, echo: EchoUpstream) -> None:
    """An echo stream reaches the client as the upstream's events, in order, and the
    watcher's usage and chunk count reach the span."""
    status, headers, raw = await _post(gw, {"model": "echo-1", "text": "a b c d",
                                            "stream": True})
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    expected = b"".join(_event("word", {"word": w}) for w in "abcd") \
        + _event("usage", {"in": 4, "out": 4}) + _event("end", {})
    assert raw == expected
    await asyncio.sleep(0)
    attrs = dict(gw.telemetry.spans_named("text_completion echo-1")[0].attributes or {})
    assert attrs["gateway.stream.end"] == "done"
    assert attrs["gen_ai.usage.output_tokens"] == 4
    assert attrs["gen_ai.response.time_to_first_chunk"] > 0


async def test_stream_cut_short_ends_with_the_dialects_error_event(
        gw: RunningGateway, echo: EchoUpstream) -> None:
    """An upstream that closes before `end` gets the client the echo dialect's own error
    event, and the estimate from the words seen stands in for the missing usage."""
    echo.cut_stream = True
    _, _, raw = await _post(gw, {"model": "echo-1", "text": "x y", "stream": True})
    last = raw.split(b"\n\n")[-2]
    assert last.startswith(b"event: error\ndata: ")
    assert orjson.loads(last.split(b"data: ", 1)[1])["code"] == "incomplete_stream"
    attrs = dict(gw.telemetry.spans_named("text_completion echo-1")[0].attributes or {})
    assert attrs["gateway.stream.end"] == "upstream_incomplete"
    assert attrs["gateway.usage.estimated"] is True and attrs["gen_ai.usage.output_tokens"] == 2


async def test_errors_take_the_dialects_shape(gw: RunningGateway, echo: EchoUpstream) -> None:
    """Bad input, an unknown model, a wrong method and an upstream error all answer in the
    echo dialect's error shape, with the right status."""
    status, _, raw = await _post(gw, {"model": "echo-1"})
    assert status == 400
    assert orjson.loads(raw) == {"kind": "error", "detail": {
        "type": "invalid_request_error", "message": "'text' is required", "code": None}}
    status, _, raw = await _post(gw, {"model": "nope", "text": "hi"})
    assert status == 404 and orjson.loads(raw)["detail"]["code"] == "model_not_found"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{gw.root}/v1/echo") as resp:
            assert resp.status == 405 and (await resp.json())["kind"] == "error"
    echo.status = 503
    status, _, raw = await _post(gw, {"model": "echo-1", "text": "hi"})
    assert status == 503 and orjson.loads(raw)["detail"]["message"] == "busy"


async def test_a_provider_that_does_not_speak_the_dialect_is_refused(
        gw: RunningGateway) -> None:
    """A model whose provider (the simulator) does not speak echo gets a clear 501 in
    echo's shape instead of a request the upstream cannot read."""
    status, _, raw = await _post(gw, {"model": "simulated", "text": "hi"})
    assert status == 501
    assert orjson.loads(raw)["detail"]["code"] == "dialect_not_supported"


async def test_default_dialects_still_served_alongside(gw: RunningGateway) -> None:
    """Registering a dialect leaves the OpenAI routes as they were."""
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{gw.base_url}/chat/completions", json={
                "model": "simulated", "messages": [{"role": "user", "content": "hi"}]}) as resp:
            assert resp.status == 200
            assert (await resp.json())["object"] == "chat.completion"

"""The benchmark's instant upstream, one process speaking every dialect the gateway relays:

- `POST /v1/chat/completions`, `/v1/embeddings`, `GET /v1/models`: the tests' fake OpenAI
  API (`tests/fakes/openai_upstream.py`), key in `Authorization: Bearer`; models named
  `bench-clock-<events>x<ms>` stream clock events instead (bench/wire.py);
- `POST /v1/messages`: Anthropic Messages, key in `x-api-key` (or a bearer token),
  `anthropic-version` required;
- `POST /v1/responses`: OpenAI Responses, key in `Authorization: Bearer`;
- `POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent?alt=sse`:
  Gemini, key in `x-goog-api-key` or `?key=`;

each JSON or streamed (`"stream": true`, or the Gemini stream method), with the same
number of content tokens (`--completion-tokens`), and each dialect's own error shape for a
wrong key. Anything else is OpenAI's 404.

    python -m bench.upstream --port 0 --api-key sk-bench --completion-tokens 20
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiohttp import web

if __package__ in (None, ""):  # run as `python bench/upstream.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import wire
from tests.fakes import anthropic_wire, openai_upstream, openai_wire


@dataclass
class Config:
    """What every answer shares: the key it requires and the tokens of a reply."""

    api_key: str
    words: list[str]
    prefix: str = field(default_factory=lambda: os.urandom(6).hex())
    counter: itertools.count[int] = field(default_factory=itertools.count)

    def ident(self, kind: str) -> str:
        return f"{kind}{self.prefix}{next(self.counter):010d}"


CONFIG = web.AppKey("bench_upstream", Config)
_JSON = "application/json"
_SSE = "text/event-stream; charset=utf-8"


def _json(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=body, status=status, content_type=_JSON, headers=headers)


async def _sse(request: web.Request, events: list[bytes], tail: bytes = b"") -> web.StreamResponse:
    """The whole stream in one write: the upstream is instant, the proxy still parses events."""
    response = web.StreamResponse(headers={"Content-Type": _SSE, "Cache-Control": "no-cache"})
    await response.prepare(request)
    await response.write(b"".join(events) + tail)
    await response.write_eof()
    return response


async def _body(request: web.Request) -> tuple[bytes, dict[str, object] | None]:
    raw = await request.read()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw, None
    return raw, body if isinstance(body, dict) else None


# --- OpenAI chat completions (with clock streams), embeddings ------------------


async def chat_completions(request: web.Request) -> web.StreamResponse:
    raw = await request.read()  # cached: the OpenAI fake reads it again for free
    if b'"bench-clock-' in raw:
        body = orjson.loads(raw)
        shape = wire.parse_clock_model(str(body.get("model", "")))
        if shape is not None and body.get("stream") is True:
            return await _clock_stream(request, str(body["model"]), *shape)
    return await openai_upstream.chat_completions(request)


async def _clock_stream(request: web.Request, model: str, events: int, gap_s: float) -> web.StreamResponse:
    """`events` chunks `gap_s` apart, each carrying its send time (CLOCK_MONOTONIC, ns)."""
    config = request.app[CONFIG]
    if request.headers.get("Authorization") != f"Bearer {config.api_key}":
        return _json(orjson.dumps(openai_wire.invalid_api_key(None)), 401)
    ident, created = config.ident("chatcmpl-"), int(time.time())
    response = web.StreamResponse(headers={"Content-Type": _SSE})
    await response.prepare(request)
    started = time.monotonic()
    for i in range(events):
        if gap_s:
            await asyncio.sleep(max(0.0, started + i * gap_s - time.monotonic()))
        await response.write(wire.clock_chunk(ident, model, created, f"{time.monotonic_ns()} ", None))
    await response.write(wire.clock_chunk(ident, model, created, "", "stop") + b"data: [DONE]\n\n")
    await response.write_eof()
    return response


# --- Anthropic Messages -------------------------------------------------------


def _anthropic_error(status: int, message: str) -> web.Response:
    return _json(orjson.dumps(anthropic_wire.error_body(status, message)), status)


async def messages(request: web.Request) -> web.StreamResponse:
    config = request.app[CONFIG]
    raw, body = await _body(request)
    presented = request.headers.get("x-api-key") or request.headers.get("Authorization", "")[7:]
    if presented != config.api_key:  # x-api-key, or a bearer token as recent SDKs send
        return _anthropic_error(401, "invalid x-api-key")
    if "anthropic-version" not in request.headers:
        return _anthropic_error(400, "anthropic-version: header is required")
    if body is None or not isinstance(body.get("model"), str) or "max_tokens" not in body:
        return _anthropic_error(400, "model, max_tokens and messages: Field required")
    model, ident, prompt = str(body["model"]), config.ident("msg_01"), wire.prompt_tokens(raw)
    if body.get("stream") is True:
        return await _sse(request, wire.anthropic_stream(ident, model, config.words, prompt))
    return _json(wire.anthropic_message(ident, model, config.words, prompt),
                 headers={"request-id": config.ident("req_011C")})


# --- OpenAI Responses ---------------------------------------------------------


async def responses(request: web.Request) -> web.StreamResponse:
    config = request.app[CONFIG]
    raw, body = await _body(request)
    if request.headers.get("Authorization") != f"Bearer {config.api_key}":
        return _json(orjson.dumps(openai_wire.invalid_api_key(None)), 401)
    if body is None or not isinstance(body.get("model"), str) or "input" not in body:
        error = openai_wire.missing_parameter("input")
        return _json(orjson.dumps(error), 400)
    model, prompt = str(body["model"]), wire.prompt_tokens(raw)
    ident, item = config.ident("resp_"), config.ident("msg_")
    if body.get("stream") is True:
        return await _sse(request, wire.responses_stream(ident, item, model, config.words, prompt))
    return _json(wire.responses_json(ident, item, model, config.words, prompt))


# --- Gemini -------------------------------------------------------------------


def _gemini_error(code: int, status: str, message: str) -> web.Response:
    return _json(orjson.dumps({"error": {"code": code, "message": message, "status": status}}), code)


async def gemini(request: web.Request) -> web.StreamResponse:
    config = request.app[CONFIG]
    model, _, method = request.match_info["call"].partition(":")
    raw, body = await _body(request)
    key = request.headers.get("x-goog-api-key") or request.query.get("key")
    if key != config.api_key:
        return _gemini_error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.")
    if body is None or not isinstance(body.get("contents"), list):
        return _gemini_error(400, "INVALID_ARGUMENT",
                             "* GenerateContentRequest.contents: contents is not specified")
    ident, prompt = config.ident(""), wire.prompt_tokens(raw)
    if method == "generateContent":
        return _json(wire.gemini_json(ident, model, config.words, prompt))
    if method == "streamGenerateContent" and request.query.get("alt") == "sse":
        return await _sse(request, wire.gemini_stream(ident, model, config.words, prompt))
    return _gemini_error(404, "NOT_FOUND", f"method {method!r} is not served by this fake (alt=sse only)")


def _per_model(specs: list[str]) -> dict[str, openai_upstream.Behaviour]:
    """`NAME=JSON` pairs: the OpenAI fake's Behaviour fields for one model."""
    per_model = {}
    for spec in specs:
        name, _, fields = spec.partition("=")
        per_model[name] = openai_upstream.Behaviour(**orjson.loads(fields or "{}"))
    return per_model


def create_app(api_key: str, completion_tokens: int,
               state: openai_upstream.UpstreamState | None = None) -> web.Application:
    """Every dialect on one app; `state` configures the OpenAI fake (key, behaviours)."""
    app = web.Application()
    app[openai_upstream.STATE_KEY] = state or openai_upstream.UpstreamState(
        api_key=api_key, models=None, record=False,
        behaviour=openai_upstream.Behaviour(completion_tokens=completion_tokens))
    app[CONFIG] = Config(api_key, wire.tokens(completion_tokens))
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/embeddings", openai_upstream.embeddings)
    app.router.add_get("/v1/models", openai_upstream.list_models)
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/responses", responses)
    app.router.add_post("/v1beta/models/{call}", gemini)
    app.router.add_route("*", "/{tail:.*}", openai_upstream.unknown_route)
    return app


async def _serve(args: argparse.Namespace) -> None:
    state = openai_upstream.UpstreamState(
        api_key=args.api_key, models=None, record=False,
        behaviour=openai_upstream.Behaviour(completion_tokens=args.completion_tokens),
        per_model=_per_model(args.model_behaviour))
    app = create_app(args.api_key, args.completion_tokens, state)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, args.host, args.port).start()
    print(f"listening http://{args.host}:{runner.addresses[0][1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default="sk-bench")
    parser.add_argument("--completion-tokens", type=int, default=20)
    parser.add_argument("--model-behaviour", action="append", default=[],
                        metavar='NAME={"chunk_delay_s": 0.002}',
                        help="the OpenAI fake's Behaviour fields for one chat model (repeatable)")
    parser.add_argument("--no-uvloop", action="store_true")
    args = parser.parse_args(argv)
    if args.no_uvloop:
        asyncio.run(_serve(args))
        return
    import uvloop

    uvloop.run(_serve(args))


if __name__ == "__main__":
    main(sys.argv[1:])

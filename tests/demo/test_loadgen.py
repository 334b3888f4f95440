"""The demo load generator: its request mix and its bounded, self-stopping run loop."""

from __future__ import annotations

import random
from collections import Counter

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from demo.loadgen import (
    MODELS,
    UNKNOWN_MODEL,
    MixSettings,
    RunSettings,
    next_shot,
    run,
    settings_from_args,
)


def test_mix_has_models_streaming_errors_and_a_slow_model() -> None:
    """Over many draws the mix covers every model, ~40% streaming, errors and slow calls."""
    rng = random.Random(7)
    shots = [next_shot(rng, MixSettings()) for _ in range(5000)]
    kinds = Counter(s.kind for s in shots)
    assert {"chat", "slow", "upstream_error", "unknown_model", "malformed"} <= set(kinds)
    assert {s.model for s in shots if s.kind == "chat"} == set(MODELS)
    chat = [s for s in shots if s.kind in {"chat", "slow", "upstream_error"}]
    assert 0.35 < sum(s.stream for s in chat) / len(chat) < 0.45
    for shot in shots:
        if shot.kind == "malformed":
            assert shot.body.startswith(b"{") and not shot.body.endswith(b"}")
            continue
        body = orjson.loads(shot.body)
        if shot.stream:
            assert body["stream_options"] == {"include_usage": True}
        if shot.kind == "unknown_model":
            assert body["model"] == UNKNOWN_MODEL
        if shot.kind == "slow":
            assert body["model"] == "claude-sonnet-4.5"
            assert 2500 <= int(shot.headers["x-mock-latency-ms"]) <= 6000
        if shot.kind == "upstream_error":
            assert shot.headers["x-mock-error"] in {"500", "503", "429"}


def test_settings_read_keys_from_the_environment() -> None:
    """--api-key wins; otherwise $LOADGEN_API_KEYS is split on commas."""
    settings = settings_from_args(["--rps", "2", "--duration", "3"], {"LOADGEN_API_KEYS": "a, b,"})
    assert settings.api_keys == ("a", "b")
    assert settings.duration_s == 3
    explicit = settings_from_args(["--api-key", "k1"], {"LOADGEN_API_KEYS": "a"})
    assert explicit.api_keys == ("k1",)


@pytest.mark.integration
async def test_run_stops_by_itself_and_sends_what_the_gateway_expects() -> None:
    """A duration-bound run against a fake gateway ends on time and streams SSE to [DONE]."""
    seen: list[dict[str, object]] = []

    async def chat(request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return web.json_response({"error": {"code": None}}, status=400)
        seen.append(body)
        assert request.headers["authorization"] == "Bearer sk-test"
        if body.get("stream"):
            response = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await response.prepare(request)
            await response.write(b'data: {"choices": []}\n\n')
            await response.write(b"data: [DONE]\n\n")
            return response
        return web.json_response({"choices": []})

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/health", health)
    async with TestServer(app) as server:
        settings = RunSettings(
            url=str(server.make_url("")),
            rps=40,
            duration_s=1.5,
            api_keys=("sk-test",),
            seed=3,
            mix=MixSettings(slow_share=0, slow_latency_ms=(0, 0)),
        )
        stats = await run(settings)
    assert 20 <= stats.sent <= 120
    assert sum(stats.by_outcome.values()) == stats.sent
    assert stats.chunks > 0
    assert any(body.get("stream") for body in seen)

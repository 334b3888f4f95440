"""Threat: an upstream (or a client) chooses label values and floods the metrics
backend with series. Before the bound, 53 random error codes from an upstream made
1,044 series on /metrics: every distinct `error.type`, HTTP status or reported model
name is a new series on every instrument that carries it.

Whatever an upstream or a client can choose maps into a fixed vocabulary: upstream
statuses to a known list (else `_OTHER` for `error.type`, the status class for
`http.response.status_code`), mid-stream error codes to a known list (else
`_OTHER`), reported model names to the first 256 seen (else `_OTHER`), and a client's
unknown model names to `_unknown`.
"""

from __future__ import annotations

import contextlib
import random
import re
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from aiohttp import web

from gateway.telemetry.vocabulary import (
    KNOWN_CODES,
    KNOWN_STATUSES,
    OTHER,
    BoundedNames,
    error_code,
    status_error_type,
    status_label,
)
from tests.hostile.upstream import chunk_event, hostile_upstream, sse_response
from tests.support.gateway import RunningGateway, running_gateway

CONFIG = """
providers:
  up:
    kind: openai
    base_url: "{base_url}"
models:
  m:
    provider: up
    upstream_model: gpt-4.1
    price_per_mtok: {{input: 1, output: 1}}
    retry: {{max_attempts: 1}}
    circuit_breaker: {{enabled: false}}
"""
_LABEL = re.compile(r'(error_type|http_response_status_code|gen_ai_response_model)="([^"]*)"')


async def _chaos(request: web.Request) -> web.StreamResponse:
    """Answers with the status, error code or model name the client's message names."""
    body = orjson.loads(await request.read())
    kind, value = body["messages"][-1]["content"].split(":", 1)
    if kind == "status":
        return web.json_response({"error": {"message": "no", "type": "x"}}, status=int(value))
    if kind == "code":
        error = b"data: " + orjson.dumps({"error": {"message": "broke", "code": value}}) + b"\n\n"
        return await sse_response(request, chunk_event("hi"), error)
    return await sse_response(request, chunk_event("hi", model=value),
                              chunk_event("", "stop", model=value), b"data: [DONE]\n\n")


@contextlib.asynccontextmanager
async def _gateway() -> AsyncIterator[RunningGateway]:
    async with hostile_upstream(_chaos) as hostile, running_gateway(
            CONFIG.format(base_url=hostile.base_url), environ={}) as gw:
        yield gw


@pytest.mark.integration  # sockets: the slow tier
async def test_53_random_upstream_codes_make_a_bounded_number_of_series() -> None:
    """53 random statuses and 53 random mid-stream error codes, plus requests for 53
    random model names, leave only known or `_OTHER` label values on /metrics."""
    rng = random.Random(13)
    unknown_statuses = [s for s in range(400, 600) if s not in KNOWN_STATUSES]
    asks = [f"status:{s}" for s in rng.sample(unknown_statuses, 53)]
    asks += [f"code:{rng.getrandbits(64):x}" for _ in range(53)]
    async with _gateway() as gw, aiohttp.ClientSession() as http:
        for ask in asks:
            body = {"model": "m", "stream": ask.startswith("code"),
                    "messages": [{"role": "user", "content": ask}]}
            async with http.post(f"{gw.base_url}/chat/completions", json=body) as r:
                await r.read()
        for _ in range(53):
            body = {"model": f"x-{rng.getrandbits(64):x}", "messages": [{"role": "user",
                                                                       "content": "hi"}]}
            async with http.post(f"{gw.base_url}/chat/completions", json=body) as r:
                assert r.status == 404
        async with http.get(f"{gw.root}/metrics") as r:
            text = await r.text()
    values: dict[str, set[str]] = {}
    for name, value in _LABEL.findall(text):
        values.setdefault(name, set()).add(value)
    assert values["error_type"] <= {OTHER, "model_not_found"}, values["error_type"]
    assert values["http_response_status_code"] <= {"400", "404", "500", "200"}
    requested = set(re.findall(r'gen_ai_request_model="([^"]*)"', text))
    assert requested <= {"m", "_unknown"}
    series = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert len(series) < 400, len(series)


def test_the_vocabulary_maps_outside_values_into_a_fixed_set() -> None:
    """Known statuses and codes pass as they are; others become `_OTHER` or their class."""
    assert status_error_type(429) == "429" and status_error_type(537) == OTHER
    assert status_label(404) == 404 and status_label(537) == 500 and status_label(299) == 200
    assert error_code("rate_limit_exceeded") == "rate_limit_exceeded"
    assert error_code("sk-live-anything") == OTHER and error_code(None) == "upstream_error"
    assert error_code(503) == "503"
    assert "server_error" in KNOWN_CODES


def test_reported_model_names_are_bounded_and_cleaned_once() -> None:
    """The first names seen pass (cleaned once); past the limit a new one is `_OTHER`."""
    cleaned: list[str] = []

    def clean(name: str) -> str:
        cleaned.append(name)
        return name.upper()

    names = BoundedNames(limit=3, clean=clean)
    assert [names(n) for n in ("a", "b", "a", "c", "d", None)] == ["A", "B", "A", "C", OTHER,
                                                                   None]
    assert cleaned == ["a", "b", "c"]

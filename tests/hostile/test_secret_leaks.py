"""Threat: the provider's credentials leak to clients and telemetry through what an
upstream echoes back. Upstreams quote the key they were given in error bodies
("Incorrect API key provided: sk-..."), in a stream's first or a later error event,
even in headers; before the scrubber the client got `bad key Bearer sk-live-...` in
a 502, the span's status carried it, and keys configured as provider `headers:`
(`x-api-key`, Azure's `api-key`) were never scrubbed at all.

One scrubber knows every configured secret (API keys, credential headers, proxy
passwords) and runs on everything upstream-chosen that leaves the gateway: error
bodies, first-event and mid-stream error events, passed-through headers, span
status messages, metric labels and log records. A fake upstream echoes every secret
in every position; none of the secret bytes may reach the client, the span
exporter, the logs or /metrics.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from aiohttp import web

from tests.hostile.upstream import chunk_event, hostile_upstream, sse_response
from tests.support.gateway import RunningGateway, running_gateway

PROVIDER_KEY = "sk-live-0123456789abcdefSECRET"
HEADER_KEY = "hk-header-secret-5566778899"
AZURE_KEY = "azure0123456789abcdef0123456789ab"
PROXY_PASSWORD = "proxy-pass-778899"
SECRETS = (PROVIDER_KEY, HEADER_KEY, AZURE_KEY, PROXY_PASSWORD)
ECHO = (f"bad key Bearer {PROVIDER_KEY}; x-api-key {HEADER_KEY}; api-key {AZURE_KEY}; "
        f"proxy {PROXY_PASSWORD}")
MODES = ("json_error", "text_error", "first_event_error", "mid_stream_error", "headers",
         "model_name")


async def _echo(request: web.Request) -> web.StreamResponse:
    """Answers as the last message asks, quoting every secret it can."""
    body = orjson.loads(await request.read())
    mode = body["messages"][-1]["content"]
    echo_headers = {"x-ratelimit-limit-requests": ECHO, "openai-version": PROVIDER_KEY}
    if mode == "json_error":
        error = {"error": {"message": ECHO, "type": "invalid_request_error",
                           "code": PROVIDER_KEY, "param": HEADER_KEY}}
        return web.json_response(error, status=401, headers=echo_headers)
    if mode == "text_error":
        return web.Response(text=f"upstream trouble: {ECHO}", status=500, headers=echo_headers)
    error_event = b"data: " + orjson.dumps(
        {"error": {"message": ECHO, "code": PROVIDER_KEY, "type": AZURE_KEY}}) + b"\n\n"
    if mode == "first_event_error":
        return await sse_response(request, error_event, headers=echo_headers)
    if mode == "mid_stream_error":
        return await sse_response(request, chunk_event("hi"), error_event, headers=echo_headers)
    model = PROVIDER_KEY if mode == "model_name" else "gpt-4.1"
    if body.get("stream"):
        return await sse_response(request, chunk_event("hi", model=model),
                                  chunk_event("", "stop", model=model), b"data: [DONE]\n\n",
                                  headers=echo_headers)
    answer = {"id": "c1", "object": "chat.completion", "model": model,
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                           "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
    return web.json_response(answer, headers=echo_headers)


CONFIG = """
providers:
  up:
    kind: openai
    base_url: "{base_url}"
    api_key: "${{PROVIDER_KEY}}"
    headers:
      x-api-key: "${{HEADER_KEY}}"
      api-key: "{azure}"
models:
  m:
    provider: up
    upstream_model: gpt-4.1
    price_per_mtok: {{input: 1, output: 1}}
    circuit_breaker: {{enabled: false}}  # every position is tried, however many failed
"""


@contextlib.asynccontextmanager
async def _gateway(client: str) -> AsyncIterator[RunningGateway]:
    async with hostile_upstream(_echo) as hostile:
        environ = {"PROVIDER_KEY": PROVIDER_KEY, "HEADER_KEY": HEADER_KEY,
                   "HTTPS_PROXY": f"http://user:{PROXY_PASSWORD}@proxy.invalid:3128",
                   "NO_PROXY": "127.0.0.1,localhost", "GATEWAY_HTTP_CLIENT": client}
        async with running_gateway(CONFIG.format(base_url=hostile.base_url, azure=AZURE_KEY),
                                   environ=environ) as gw:
            yield gw


def leaked_bytes(texts: list[str]) -> int:
    """How many secret bytes appear in `texts`."""
    return sum(text.count(secret) * len(secret) for text in texts for secret in SECRETS)


def _span_texts(gw: RunningGateway) -> list[str]:
    texts = []
    for span in gw.telemetry.finished_spans():
        texts.append(span.name)
        texts.append(repr(dict(span.attributes or {})))
        texts.append(str(span.status.description))
        texts.extend(f"{e.name} {dict(e.attributes or {})!r}" for e in span.events)
    return texts


async def _client_texts(gw: RunningGateway) -> list[str]:
    texts = []
    async with aiohttp.ClientSession() as http:
        for mode in MODES:
            for stream in (False, True):
                body = {"model": "m", "stream": stream,
                        "messages": [{"role": "user", "content": mode}]}
                async with http.post(f"{gw.base_url}/chat/completions", json=body) as r:
                    texts.append(await r.text())
                    texts.append(repr(dict(r.headers)))
        async with http.get(f"{gw.root}/metrics") as r:
            texts.append(await r.text())
    return texts


@pytest.mark.integration  # sockets: the slow tier
@pytest.mark.parametrize("client", ["own", "aiohttp"])
async def test_no_secret_byte_reaches_a_client_a_span_a_log_or_metrics(
        client: str, caplog: pytest.LogCaptureFixture) -> None:
    """Every echo of every secret, in every position, is scrubbed before the client,
    the span exporter, the logs and /metrics see it."""
    caplog.set_level(logging.DEBUG)
    async with _gateway(client) as gw:
        texts = await _client_texts(gw)
        # The echoes did arrive, and every position was served (no breaker, no 503s).
        assert sum("[redacted]" in text for text in texts) >= 10
        assert not any("circuit" in text for text in texts)
        # A log line that quotes an upstream (as an exception message would).
        logging.getLogger("gateway.path.attempt").warning("upstream said: %s", ECHO)
        try:
            raise RuntimeError(ECHO)
        except RuntimeError:
            logging.getLogger("gateway.edge.proxy").exception("unexpected error")
        span_texts = _span_texts(gw)
    log_texts = [caplog.text, *(r.getMessage() for r in caplog.records)]
    assert leaked_bytes(texts) == 0, [t for t in texts if leaked_bytes([t])]
    assert leaked_bytes(span_texts) == 0, [t for t in span_texts if leaked_bytes([t])]
    assert leaked_bytes(log_texts) == 0
    assert "upstream said: bad key Bearer [redacted]" in caplog.text


def test_header_credentials_are_known_to_the_scrubber() -> None:
    """A provider's credential headers (from the environment, by name, or by shape) and
    proxy passwords are secrets; ordinary header values are not."""
    from gateway.app import build_scrubber
    from gateway.config import load

    config = load("""
providers:
  p:
    kind: openai
    base_url: "http://x/v1"
    headers:
      x-api-key: "${HEADER_KEY}"
      authorization: "Bearer literal-token-abcdef"
      x-custom: "${TENANT}"
      x-title: "My App"
models:
  m: {provider: p, price_per_mtok: {input: 1, output: 1}}
""", {"HEADER_KEY": HEADER_KEY, "TENANT": "tenant-42-secretish"})
    scrubber = build_scrubber(config, {"HTTPS_PROXY": f"http://u:{PROXY_PASSWORD}@p:1"})
    assert {HEADER_KEY, "literal-token-abcdef", "tenant-42-secretish",
            PROXY_PASSWORD} <= set(scrubber.secrets)
    assert "My App" not in scrubber.secrets
    assert "My App" in repr(config.providers["p"].headers)  # the mapping itself is intact
    assert HEADER_KEY not in repr(config.providers["p"])

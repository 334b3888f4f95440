"""Threat: a body that names a field twice. JSON parsers disagree on duplicate keys:
the gateway (orjson) keeps the last, some upstreams keep the first. The gateway checks
`model` against the key's allowed models, and reserves budget from `max_tokens` and
`n`, as it reads them; it used to forward the client's own bytes, so
`{"model": "forbidden", "model": "allowed"}` passed the check here and was served as
"forbidden" by a first-wins upstream, and a second `max_tokens` made the
reservation meaningless.

The gateway now sends the upstream the body re-serialised from what it read: there
is one of each key, whatever the upstream's parser, and it is the one the gateway
checked and priced. (Refusing such bodies would need a scan of the bytes, which
costs more than re-serialising: orjson writes about 0.2 us per KB, while a single
`bytes.count` over the body took 3.6 us per KB.)
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from tests.fakes.openai_upstream import RunningUpstream
from tests.support.gateway import running_gateway, upstream_config

pytestmark = pytest.mark.integration  # sockets or processes: the slow tier

UPSTREAM_KEY = "sk-upstream-secret-9f8e7d6c5b4a"
CLIENT_KEY = "sk-gw-hostile-duplicates-0123456789"
MESSAGES = b'"messages": [{"role": "user", "content": "hi"}]'
ONLY_GPT = """
keys:
  - {alias: restricted, team: t, key_env: CLIENT_KEY, allowed_models: [gpt-4.1]}
"""


def first_wins(raw: bytes) -> dict[str, Any]:
    """How an upstream that keeps the first of two equal keys reads a body."""
    def keep_first(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in pairs:
            seen.setdefault(key, value)
        return seen

    parsed: dict[str, Any] = json.loads(raw, object_pairs_hook=keep_first)
    return parsed


async def _post(base_url: str, body: bytes) -> tuple[int, dict[str, Any]]:
    headers = {"content-type": "application/json", "authorization": f"Bearer {CLIENT_KEY}"}
    async with aiohttp.ClientSession() as http, \
            http.post(f"{base_url}/chat/completions", data=body, headers=headers) as resp:
        return resp.status, await resp.json()


@pytest.mark.parametrize(("body", "field", "checked"), [
    (b'{"model": "cheap", "model": "gpt-4.1", ' + MESSAGES + b"}", "model", "gpt-4.1"),
    (b'{"model": "gpt-4.1", "max_tokens": 100000, ' + MESSAGES + b', "max_tokens" : 5}',
     "max_tokens", 5),
    (b'{"model": "gpt-4.1", "n": 50, ' + MESSAGES + b', "n": 1}', "n", 1),
    (b'{"model": "cheap", "mod\\u0065l": "gpt-4.1", ' + MESSAGES + b"}", "model", "gpt-4.1"),
])
async def test_a_first_wins_upstream_reads_what_the_gateway_checked(
        upstream: RunningUpstream, body: bytes, field: str, checked: object) -> None:
    """With a field given twice, a first-wins upstream reads the value the gateway
    checked (the key may use only gpt-4.1) and reserved budget for, not the other one."""
    environ = {"UPSTREAM_KEY": UPSTREAM_KEY, "CLIENT_KEY": CLIENT_KEY}
    config = upstream_config(upstream.base_url, extra=ONLY_GPT)
    async with running_gateway(config, environ=environ) as gw:
        status, _ = await _post(gw.base_url, body)
    assert status == 200
    sent = upstream.state.last_request.raw
    assert first_wins(sent)[field] == checked
    assert sent.count(f'"{field}"'.encode()) == 1


async def test_the_disallowed_model_alone_is_still_refused(upstream: RunningUpstream) -> None:
    """The restricted key asking only for the other model gets 403 (the check itself)."""
    environ = {"UPSTREAM_KEY": UPSTREAM_KEY, "CLIENT_KEY": CLIENT_KEY}
    config = upstream_config(upstream.base_url, extra=ONLY_GPT)
    async with running_gateway(config, environ=environ) as gw:
        status, answer = await _post(gw.base_url, b'{"model": "cheap", ' + MESSAGES + b"}")
    assert status == 403 and answer["error"]["code"] == "model_not_allowed"
    assert upstream.state.total_requests == 0

"""Two replicas on one Redis: the admin API of either manages the same keys and reports
the same spend (the shared store), while its recent calls say they are this process's."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from openai import AsyncOpenAI

from gateway.spend.config import hash_key
from tests.admin.helpers import ADMIN_KEY, Admin
from tests.fakes.openai_upstream import RunningUpstream
from tests.spend.helpers import MESSAGES, spend_gateway
from tests.support.gateway import upstream_config

pytestmark = pytest.mark.integration  # sockets: two gateways, Redis and the fake upstream


async def test_replicas_share_keys_and_spend_not_recent_calls(
        upstream: RunningUpstream, redis_url: str, redis_prefix: str) -> None:
    """A key created on replica A works on B's very next request (B, requiring keys, looks
    a key it does not know up in the store); both report B's call in the spend by key; each
    one's recent calls are its own, and say so. (A gateway with no key at all runs open,
    and an open replica sees a key made elsewhere within a second instead.)"""
    config = upstream_config(upstream.base_url, extra=f"""
storage: {{backend: redis, redis_url: "{redis_url}", redis_prefix: "{redis_prefix}"}}
keys:
  - {{alias: ops, team: ops, key_sha256: "{hash_key('sk-gw-ops')}"}}
""")
    env = {"GATEWAY_ADMIN_KEYS": ADMIN_KEY}
    async with spend_gateway(config, environ=env) as (a, _), \
            spend_gateway(config, environ=env) as (b, _), aiohttp.ClientSession() as http:
        admin_a, admin_b = Admin(a.root, http), Admin(b.root, http)
        created = await admin_a.ok("POST", "/admin/keys", {"alias": "web", "team": "product"})
        async with AsyncOpenAI(base_url=b.base_url, api_key=created["key"], max_retries=0) as sdk:
            await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES, max_tokens=20)
        assert "web" in {k["alias"] for k in (await admin_b.ok("GET", "/admin/keys"))["keys"]}
        for admin in (admin_a, admin_b):
            status = await admin.ok("GET", "/admin/status")
            assert (status["spend_scope"], status["calls_scope"]) == ("shared store",
                                                                      "this process")
            for _ in range(100):  # the ledger entry may land just after the answer
                report = await admin.ok("GET", "/admin/spend?by=key")
                if report["rows"]:
                    break
                await asyncio.sleep(0.05)
            assert {r["group"]: r["calls"] for r in report["rows"]} == {"web": 1}
        assert (await admin_a.ok("GET", "/admin/calls"))["calls"] == []
        assert [c["key"] for c in (await admin_b.ok("GET", "/admin/calls"))["calls"]] == ["web"]

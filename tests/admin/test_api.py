"""The admin API over HTTP against a real gateway and the fake upstream: keys that work on
the next request, rotation, revocation, expiry, spend by tag and user, budgets, recent
calls, the masked config, and 401/403 that reveal nothing."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI

from tests.admin.helpers import ADMIN_KEY, admin_gateway
from tests.conftest import UPSTREAM_KEY
from tests.fakes.openai_upstream import Behaviour, RunningUpstream
from tests.spend.helpers import MESSAGES, ledger_rows, spend_config, spend_gateway

pytestmark = pytest.mark.integration  # sockets: the gateway and the fake upstream on ports


async def _chat(base_url: str, key: str, **extra: object) -> None:
    async with AsyncOpenAI(base_url=base_url, api_key=key, max_retries=0) as sdk:
        await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES, max_tokens=20,
                                          **extra)  # type: ignore[call-overload]


async def test_off_without_admin_keys_and_says_so(upstream: RunningUpstream,
                                                  tmp_path: Path) -> None:
    """With no GATEWAY_ADMIN_KEYS every admin route is 403 naming the variable."""
    config = spend_config(upstream.base_url, tmp_path / "l.db")
    async with spend_gateway(config) as (gw, _), aiohttp.ClientSession() as session:
        async with session.get(gw.root + "/admin/keys",
                               headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as response:
            body = await response.json()
        assert response.status == 403
        assert body["error"]["code"] == "admin_api_disabled"
        assert "GATEWAY_ADMIN_KEYS" in body["error"]["message"]


async def test_wrong_or_missing_admin_key_gets_401_revealing_nothing(
        upstream: RunningUpstream, tmp_path: Path) -> None:
    """No key, a wrong key and a client key all get the same bare 401."""
    async with admin_gateway(upstream.base_url, tmp_path) as (_, _, admin):
        created = await admin.ok("POST", "/admin/keys", {"alias": "web", "team": "product"})
        answers = []
        for key in (None, "wrong-admin-key-123456789", ADMIN_KEY[:-1], created["key"]):
            status, body = await admin.call("GET", "/admin/keys", key=key)
            assert status == 401
            answers.append(body)
        assert all(a == answers[0] for a in answers)
        assert "web" not in str(answers[0]) and ADMIN_KEY not in str(answers[0])


async def test_created_key_works_on_the_next_request_and_is_shown_once(
        upstream: RunningUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """POST /admin/keys answers the secret once; the SDK can use it at once; listings
    and logs never show it."""
    caplog.set_level(logging.DEBUG)
    async with admin_gateway(upstream.base_url, tmp_path) as (gw, _, admin):
        created = await admin.ok("POST", "/admin/keys", {
            "alias": "web", "team": "product", "budget_usd_per_day": 5,
            "allowed_models": ["gpt-4.1"], "expires_in_s": 3600})
        secret = created["key"]
        assert secret.startswith("sk-gw-") and created["status"] == "active"
        assert created["allowed_models"] == ["gpt-4.1"] and created["expires_at"] is not None
        await _chat(gw.base_url, secret)
        listing = await admin.ok("GET", "/admin/keys")
        assert [k["alias"] for k in listing["keys"]] == ["web"]
        assert secret not in str(listing)
        budgets = (await admin.ok("GET", "/admin/budgets"))["budgets"]
        assert [b["name"] for b in budgets] == ["key:web:day"]
        assert budgets[0]["limit_usd"] == 5 and budgets[0]["spent_usd"] > 0
        assert budgets[0]["reserved_usd"] == 0 and budgets[0]["resets_at"] > 0
    assert secret not in caplog.text and ADMIN_KEY not in caplog.text


async def test_rotate_and_revoke(upstream: RunningUpstream, tmp_path: Path) -> None:
    """Rotation keeps the key's settings with a new secret, the old one refused at once;
    revocation refuses the key at once."""
    async with admin_gateway(upstream.base_url, tmp_path) as (gw, _, admin):
        old = (await admin.ok("POST", "/admin/keys", {"alias": "etl", "team": "data",
                                                      "budget_usd_per_month": 3}))["key"]
        rotated = await admin.ok("POST", "/admin/keys/etl/rotate")
        assert rotated["key"] != old and rotated["budget_usd_per_month"] == 3
        with pytest.raises(openai.AuthenticationError):
            await _chat(gw.base_url, old)
        await _chat(gw.base_url, rotated["key"])
        assert (await admin.ok("POST", "/admin/keys/etl/revoke")) == {"alias": "etl",
                                                                        "status": "revoked"}
        with pytest.raises(openai.AuthenticationError):
            await _chat(gw.base_url, rotated["key"])
        status, body = await admin.call("POST", "/admin/keys/etl/revoke")
        assert status == 404 and "no active key" in body["error"]["message"]
        statuses = sorted(k["status"] for k in (await admin.ok("GET", "/admin/keys"))["keys"])
        assert statuses == ["revoked", "revoked"]


async def test_expired_key_is_refused(upstream: RunningUpstream, tmp_path: Path) -> None:
    """A key past its expiry gets 401 saying it expired."""
    async with admin_gateway(upstream.base_url, tmp_path) as (gw, _, admin):
        # Long enough for the first call on a loaded machine, short enough to wait out.
        created = await admin.ok("POST", "/admin/keys", {"alias": "tmp", "expires_in_s": 2})
        await _chat(gw.base_url, created["key"])
        await asyncio.sleep(2.1)
        with pytest.raises(openai.AuthenticationError, match="expired"):
            await _chat(gw.base_url, created["key"])
        keys = (await admin.ok("GET", "/admin/keys"))["keys"]
        assert keys[0]["status"] == "expired"


@pytest.mark.parametrize(("body", "status", "param"), [
    ({"alias": "bad alias"}, 400, "alias"),
    ({"alias": "a", "allowed_models": ["nope"]}, 400, "allowed_models"),
    ({"alias": "a", "budget_usd_per_day": -1}, 400, "budget_usd_per_day"),
    ({"alias": "a", "budget_usd_per_day": "lots"}, 400, "budget_usd_per_day"),
    ({"alias": "a", "expires_at": 1}, 400, "expires_at"),
    ({"alias": "a", "colour": "red"}, 400, "colour"),
    (["alias"], 400, None),
])
async def test_bad_create_bodies_are_400(upstream: RunningUpstream, tmp_path: Path,
                                         body: object, status: int, param: str | None) -> None:
    """Invalid fields get a 400 in OpenAI's shape naming the field."""
    async with admin_gateway(upstream.base_url, tmp_path) as (_, _, admin):
        got, answer = await admin.call("POST", "/admin/keys", body)
        assert got == status and answer["error"]["param"] == param


async def test_duplicate_alias_is_409_and_bad_json_400(upstream: RunningUpstream,
                                                       tmp_path: Path) -> None:
    """A second active key with one alias is a conflict; a body that is not JSON a 400."""
    async with admin_gateway(upstream.base_url, tmp_path) as (gw, _, admin):
        await admin.ok("POST", "/admin/keys", {"alias": "web"})
        status, _ = await admin.call("POST", "/admin/keys", {"alias": "web"})
        assert status == 409
        async with admin.session.post(gw.root + "/admin/keys", data=b"{nope",
                                      headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as r:
            assert r.status == 400
            assert "not valid JSON" in (await r.json())["error"]["message"]


async def test_tags_and_user_reach_ledger_span_report_and_calls(
        upstream: RunningUpstream, tmp_path: Path) -> None:
    """Header tags, metadata and `user` are in the ledger, on the SERVER span, in the
    spend report by tag and by user, and in the recent calls."""
    async with admin_gateway(upstream.base_url, tmp_path) as (gw, _, admin):
        key = (await admin.ok("POST", "/admin/keys", {"alias": "web"}))["key"]
        async with AsyncOpenAI(base_url=gw.base_url, api_key=key, max_retries=0,
                               default_headers={"x-gateway-tags": "project=alpha"}) as sdk:
            await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES, max_tokens=20,
                                              user="u-1", metadata={"feature": "search"})
            await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES, max_tokens=20,
                                              extra_headers={"x-gateway-tags": "project=beta",
                                                             "x-gateway-user": "u-2"})
            await sdk.chat.completions.create(model="cheap", messages=MESSAGES, max_tokens=20,
                                              extra_headers={"x-gateway-tags": ""})
        rows = ledger_rows(tmp_path / "ledger.db")
        assert [(r.tags, r.end_user) for r in rows] == [
            ('{"feature":"search","project":"alpha"}', "u-1"), ('{"project":"beta"}', "u-2"),
            ("", "")]
        servers = [dict(s.attributes or {}) for s in gw.telemetry.spans_named("POST ")]
        assert servers[0]["gateway.tags.project"] == "alpha" and servers[0]["user.id"] == "u-1"
        assert "user.id" not in servers[2]
        by_tag = await admin.ok("GET", "/admin/spend?by=tag:project")
        assert {r["group"]: r["calls"] for r in by_tag["rows"]} == {"alpha": 1, "beta": 1,
                                                                   "(none)": 1}
        by_user = await admin.ok("GET", "/admin/spend?by=user&window=month")
        assert {r["group"] for r in by_user["rows"]} == {"u-1", "u-2", "(none)"}
        assert by_user["total"]["calls"] == 3
        calls = (await admin.ok("GET", "/admin/calls?limit=2"))["calls"]
        assert [c["model_requested"] for c in calls] == ["cheap", "gpt-4.1"]
        assert calls[1]["tags"] == {"project": "beta"} and calls[1]["user"] == "u-2"
        assert [c["unpriced"] for c in calls] == [False, False]  # both models have prices
        for text in ('{"feature":"search"}', "http"):
            assert all(text not in str(m) for m in gw.telemetry.points("gateway.cost.usd"))


async def test_bad_tags_header_is_a_400_before_upstream(upstream: RunningUpstream,
                                                        tmp_path: Path) -> None:
    """A malformed x-gateway-tags header is refused in OpenAI's shape; nothing goes upstream."""
    async with admin_gateway(upstream.base_url, tmp_path) as (gw, _, admin):
        key = (await admin.ok("POST", "/admin/keys", {"alias": "web"}))["key"]
        async with AsyncOpenAI(base_url=gw.base_url, api_key=key, max_retries=0) as sdk:
            with pytest.raises(openai.BadRequestError, match="not name=value"):
                await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES,
                                                  extra_headers={"x-gateway-tags": "oops"})
        assert upstream.state.total_requests == 0


async def test_spend_query_checks_and_date_range(upstream: RunningUpstream,
                                                 tmp_path: Path) -> None:
    """Unknown groupings and bad dates are 400; a since/until range covers whole days."""
    async with admin_gateway(upstream.base_url, tmp_path) as (gw, _, admin):
        await _chat(gw.base_url, "unused-open-mode")
        for query in ("by=colour", "by=tag:", "window=week", "since=yesterday", "until=",
                      "since=2026-12-02&until=2026-12-01"):
            status, _ = await admin.call("GET", f"/admin/spend?{query}")
            assert status == 400, query
        report = await admin.ok("GET", "/admin/spend?by=model&since=2020-01-01&until=2099-12-31")
        assert report["total"]["calls"] == 1 and report["rows"][0]["group"] == "gpt-4.1"
        empty = await admin.ok("GET", "/admin/spend?since=2020-01-01&until=2020-01-02")
        assert empty["rows"] == [] and empty["total"]["calls"] == 0


async def test_recent_calls_ring_size_comes_from_the_environment(
        upstream: RunningUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """GATEWAY_RECENT_CALLS sets the ring's size (the oldest calls drop out); a value that
    is not a positive integer keeps the default of 500 and says so in the log."""
    async with admin_gateway(upstream.base_url, tmp_path,
                             environ={"GATEWAY_RECENT_CALLS": "3"}) as (gw, _, admin):
        for n in range(5):
            await _chat(gw.base_url, "unused-open-mode", user=f"u-{n}")
        assert (await admin.ok("GET", "/admin/status"))["recent_calls_capacity"] == 3
        calls = (await admin.ok("GET", "/admin/calls?limit=50"))["calls"]
        assert [c["user"] for c in calls] == ["u-4", "u-3", "u-2"]
    with caplog.at_level(logging.WARNING, logger="gateway.admin"):
        async with admin_gateway(upstream.base_url, tmp_path / "other",
                                 environ={"GATEWAY_RECENT_CALLS": "lots"}) as (gw, _, admin):
            assert (await admin.ok("GET", "/admin/status"))["recent_calls_capacity"] == 500
    assert "GATEWAY_RECENT_CALLS='lots' is not a positive integer" in caplog.text


async def test_config_masks_secrets_and_traffic_counts_calls(upstream: RunningUpstream,
                                                             tmp_path: Path) -> None:
    """GET /admin/config never contains the upstream key; /admin/traffic counts the calls."""
    async with admin_gateway(upstream.base_url, tmp_path) as (gw, _, admin):
        await _chat(gw.base_url, "unused-open-mode")
        shown = await admin.ok("GET", "/admin/config")
        assert UPSTREAM_KEY not in str(shown)
        assert shown["config"]["providers"]["up"]["api_key"] == "***"
        traffic = await admin.ok("GET", "/admin/traffic?range=hour")
        assert sum(p["requests"] for p in traffic["points"]) == 1
        status, _ = await admin.call("GET", "/admin/traffic?range=week")
        assert status == 400


async def test_breakers_and_fallbacks(upstream: RunningUpstream, tmp_path: Path) -> None:
    """A failing model falls back; /admin/resilience shows its open breaker and the
    fallbacks by reason."""
    config = f"""
providers:
  up: {{kind: openai, base_url: "{upstream.base_url}", api_key: "${{UPSTREAM_KEY}}",
        provider_name: openai, timeout_s: 5}}
models:
  gpt-4.1: {{provider: up, upstream_model: gpt-4.1, fallbacks: [cheap],
             price_per_mtok: {{input: 2.5, output: 8}}}}
  cheap: {{provider: up, upstream_model: gpt-4.1-mini, price_per_mtok: {{input: 0.4, output: 1.6}}}}
resilience:
  retry: {{max_attempts: 1}}
  circuit_breaker: {{failure_threshold: 2}}
storage: {{sqlite_path: "{tmp_path / 'l.db'}"}}
"""
    upstream.state.per_model["gpt-4.1"] = Behaviour(status=503)
    env = {"GATEWAY_ADMIN_KEYS": ADMIN_KEY}
    async with spend_gateway(config, environ=env) as (gw, _), aiohttp.ClientSession() as s:
        for _ in range(3):
            await _chat(gw.base_url, "open-mode")
        async with s.get(gw.root + "/admin/resilience",
                         headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as response:
            shown = await response.json()
    breakers = {b["model"]: b["state"] for b in shown["breakers"]}
    assert breakers == {"gpt-4.1": "open", "cheap": "closed"}
    reasons = {f["reason"]: f["calls"] for f in shown["fallbacks"]}
    assert sum(reasons.values()) == 3 and "circuit_open" in reasons
    assert all(f["model_served"] == "cheap" for f in shown["fallbacks"])

"""Threshold notices reach a real local HTTP receiver in each format (Slack, DingTalk,
Feishu, JSON), signed where configured, once per window, retried on failure, and never
delay the request that crossed the threshold."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
from aiohttp import web
from openai import AsyncOpenAI

from gateway.spend.config import WebhookConfig
from gateway.spend.notify import Notifier
from gateway.spend.notify_formats import Notice
from gateway.spend.windows import ManualClock
from tests.fakes.openai_upstream import Behaviour, RunningUpstream
from tests.spend.helpers import MESSAGES, spend_config, spend_gateway, worst_case_usd

pytestmark = pytest.mark.integration  # sockets or processes: the slow tier

DING_SECRET = "SECdingtalk-test-secret"
FEISHU_SECRET = "feishu-test-secret"


@dataclass
class Receiver:
    url: str
    hits: dict[str, list[tuple[dict[str, str], Any]]] = field(default_factory=dict)
    fail_first: dict[str, int] = field(default_factory=dict)
    delay_s: dict[str, float] = field(default_factory=dict)

    def bodies(self, name: str) -> list[Any]:
        return [body for _, body in self.hits.get(name, [])]

    async def wait_for(self, name: str, count: int, timeout: float = 10) -> list[Any]:
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout / 0.02)):
            if len(self.hits.get(name, [])) >= count or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.02)
        return self.bodies(name)


@contextlib.asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    """A real HTTP server that records every webhook POST and answers like each tool."""
    state = Receiver("")

    async def handle(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        state.hits.setdefault(name, []).append((dict(request.query), await request.json()))
        if state.delay_s.get(name):
            await asyncio.sleep(state.delay_s[name])
        if state.fail_first.get(name, 0) > 0:
            state.fail_first[name] -= 1
            return web.json_response({"error": "try later"}, status=500)
        answer = {"dingtalk": {"errcode": 0, "errmsg": "ok"},
                  "feishu": {"code": 0, "msg": "success"}}.get(name, {"ok": True})
        return web.json_response(answer)

    app = web.Application()
    app.router.add_post("/hook/{name}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        yield state
    finally:
        await runner.cleanup()


def _webhooks(url: str) -> str:
    return f"""
spend:
  notify: {{backoff_s: 0.01}}
  webhooks:
    - {{url: "{url}/slack", format: slack}}
    - {{url: "{url}/dingtalk?access_token=abc", format: dingtalk, secret: "{DING_SECRET}"}}
    - {{url: "{url}/feishu", format: feishu, secret: "{FEISHU_SECRET}"}}
    - {{url: "{url}/json", format: json}}
"""


async def test_each_format_reaches_the_receiver_once_per_window(upstream: RunningUpstream,
                                                                tmp_path: Path) -> None:
    """Crossing 50% and then being refused sends two notices to every webhook, in its own
    format, and repeating the calls sends nothing more in the same window."""
    upstream.state.behaviour = Behaviour(completion_tokens=100)
    async with receiver() as rx:
        limit = worst_case_usd(100) * 1.6  # one call uses ~62%; a second does not fit
        extra = _webhooks(rx.url) + f"""
budgets:
  - {{name: fuse, scope: global, window: day, limit_usd: {limit}, thresholds: [50, 100]}}
"""
        async with spend_gateway(spend_config(upstream.base_url, tmp_path / "l.db", extra)) as (
                gw, _):
            async with AsyncOpenAI(base_url=gw.base_url, api_key="k", max_retries=0) as sdk:
                await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES,
                                                  max_tokens=100)
                for _ in range(3):
                    with pytest.raises(openai.RateLimitError):
                        await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES,
                                                          max_tokens=100)
            for name in ("slack", "dingtalk", "feishu", "json"):
                await rx.wait_for(name, 2)
            await asyncio.sleep(0.2)  # anything extra would have arrived by now

    slack = rx.bodies("slack")
    assert len(slack) == 2
    assert "Budget 'fuse' reached 50%" in slack[0]["text"]
    assert slack[0]["blocks"][0]["type"] == "header"
    assert "refusing requests" in slack[1]["text"]

    ding = rx.hits["dingtalk"]
    assert len(ding) == 2
    query, body = ding[0]
    assert body["msgtype"] == "markdown" and "reached 50%" in body["markdown"]["title"]
    expected = base64.b64encode(hmac.new(DING_SECRET.encode(),
                                         f"{query['timestamp']}\n{DING_SECRET}".encode(),
                                         hashlib.sha256).digest()).decode()
    assert query["access_token"] == "abc" and query["sign"] == expected

    feishu = rx.bodies("feishu")
    assert len(feishu) == 2 and feishu[0]["msg_type"] == "text"
    key = f"{feishu[0]['timestamp']}\n{FEISHU_SECRET}".encode()
    assert feishu[0]["sign"] == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    assert "reached 50%" in feishu[0]["content"]["text"]

    plain = rx.bodies("json")
    assert [b["kind"] for b in plain] == ["budget_threshold", "budget_blocked"]
    assert plain[0]["budget"] == "fuse" and plain[0]["threshold_pct"] == 50
    assert plain[0]["limit_usd"] == pytest.approx(limit)
    assert 0.5 <= plain[0]["spend_usd"] / plain[0]["limit_usd"] < 1


async def test_failed_delivery_is_retried_until_taken() -> None:
    """A receiver that fails twice with 500 gets the notice on the third try."""
    async with receiver() as rx:
        rx.fail_first["json"] = 2
        notifier = Notifier([WebhookConfig(url=f"{rx.url}/json")], clock=ManualClock(0),
                            backoff_s=0.01)
        await notifier.start()
        notifier.submit(Notice("budget_threshold", "t", "x", {"budget": "b"}))
        bodies = await rx.wait_for("json", 3)
        await notifier.stop()
    assert len(bodies) == 3 and notifier.sent == 1 and notifier.failed == 0


async def test_claimed_notice_is_sent_once_across_notifiers() -> None:
    """Two notifiers sharing a claim (as two replicas share the store) send a notice once."""
    claimed: set[str] = set()

    async def claim(name: str, ttl: float) -> bool:
        if name in claimed:
            return False
        claimed.add(name)
        return True

    async with receiver() as rx:
        notifiers = [Notifier([WebhookConfig(url=f"{rx.url}/json")], clock=ManualClock(0),
                              claim=claim) for _ in range(2)]
        for notifier in notifiers:
            await notifier.start()
            notifier.submit(Notice("budget_threshold", "t", "x"), claim="budget:b:day:50")
        await rx.wait_for("json", 1)
        for notifier in notifiers:
            await notifier.stop()
    assert len(rx.bodies("json")) == 1


async def test_slow_webhook_does_not_delay_the_request(upstream: RunningUpstream,
                                                       tmp_path: Path) -> None:
    """A receiver that takes 2 s to answer does not slow the call that crossed the threshold."""
    upstream.state.behaviour = Behaviour(completion_tokens=10)
    async with receiver() as rx:
        rx.delay_s["json"] = 2.0
        extra = f"""
spend:
  webhooks: [{{url: "{rx.url}/json", format: json}}]
budgets:
  - {{name: tiny, scope: global, limit_usd: 1, thresholds: [0.0001], action: alert}}
"""
        async with spend_gateway(spend_config(upstream.base_url, tmp_path / "l.db", extra)) as (
                gw, _):
            async with AsyncOpenAI(base_url=gw.base_url, api_key="k", max_retries=0) as sdk:
                started = time.monotonic()
                await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
                await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
                elapsed = time.monotonic() - started
            await rx.wait_for("json", 1)
    assert elapsed < 1.0
    assert orjson.loads(orjson.dumps(rx.bodies("json")[0]))["budget"] == "tiny"

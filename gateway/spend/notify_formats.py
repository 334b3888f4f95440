"""Webhook payloads for each chat tool, pure: Slack, DingTalk, Feishu/Lark, plain JSON.

Each format is what that tool's incoming-webhook ("custom robot") API accepts;
DingTalk and Feishu optionally sign requests with a shared secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Notice:
    """Something the operators should hear about (a threshold, a refusal, a runaway key)."""

    kind: str  # budget_threshold | budget_blocked | runaway
    title: str
    text: str
    fields: Mapping[str, Any] = field(default_factory=dict)


def render(fmt: str, notice: Notice, url: str, *, secret: str | None, now: float
           ) -> tuple[str, dict[str, Any]]:
    """(url, JSON body) to POST for `notice` in `fmt`."""
    if fmt == "slack":
        return url, _slack(notice)
    if fmt == "dingtalk":
        return _dingtalk_url(url, secret, now), _dingtalk(notice)
    if fmt == "feishu":
        return url, _feishu(notice, secret, now)
    return url, {"kind": notice.kind, "title": notice.title, "text": notice.text,
                 **dict(notice.fields)}


def _slack(notice: Notice) -> dict[str, Any]:
    return {
        "text": f"{notice.title}: {notice.text}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": notice.title[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": notice.text}},
        ],
    }


def _dingtalk(notice: Notice) -> dict[str, Any]:
    return {"msgtype": "markdown",
            "markdown": {"title": notice.title, "text": f"### {notice.title}\n\n{notice.text}"}}


def _dingtalk_url(url: str, secret: str | None, now: float) -> str:
    """DingTalk's signed robot: `timestamp` (ms) and `sign` as query parameters."""
    if not secret:
        return url
    timestamp = str(int(now * 1000))
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    sign = urllib.parse.quote_plus(base64.b64encode(digest))
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}timestamp={timestamp}&sign={sign}"


def _feishu(notice: Notice, secret: str | None, now: float) -> dict[str, Any]:
    body: dict[str, Any] = {"msg_type": "text",
                            "content": {"text": f"{notice.title}\n{notice.text}"}}
    if secret:
        # Feishu/Lark: HMAC-SHA256 keyed with "timestamp\nsecret" over an empty message.
        timestamp = str(int(now))
        key = f"{timestamp}\n{secret}".encode()
        body["timestamp"] = timestamp
        body["sign"] = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    return body


def accepted(fmt: str, status: int, payload: Any) -> bool:
    """Whether the tool took the message (DingTalk and Feishu answer 200 with an error code)."""
    if status >= 300:
        return False
    if not isinstance(payload, Mapping):
        return True
    if fmt == "dingtalk":
        return bool(payload.get("errcode", 0) == 0)
    if fmt == "feishu":
        return bool(payload.get("code", payload.get("StatusCode", 0)) == 0)
    return True

"""The effective configuration never shows a secret."""

from __future__ import annotations

import orjson

from gateway.admin.masking import host_only, masked, without_credentials
from gateway.config import load

CONFIG = """
providers:
  up:
    kind: openai
    base_url: "https://user:pw@api.example.com/v1?token=abc"
    api_key: "${UP_KEY}"
    headers: {x-secret-header: "hdr-secret-value"}
models:
  m: {provider: up, upstream_model: m, price_per_mtok: {input: 1, output: 2}}
storage: {backend: redis, redis_url: "redis://:redispass@redis.example:6379/0"}
keys:
  - alias: web
    team: product
    key_sha256: "aaaabbbbccccddddeeeeffff0000111122223333444455556666777788889999"
spend:
  webhooks:
    - {url: "https://hooks.slack.com/services/T000/B000/slacksecretpath", format: slack}
    - {url: "https://oapi.dingtalk.com/robot/send?access_token=ding", format: dingtalk, secret: "signsecret"}
"""


def test_no_secret_survives() -> None:
    """Provider key, header values, URL credentials, webhook paths and hashes are masked."""
    config = load(CONFIG, {"UP_KEY": "sk-upstream-very-secret"})
    text = orjson.dumps(masked(config)).decode()
    for secret in ("sk-upstream-very-secret", "hdr-secret-value", "pw@", "redispass",
                   "slacksecretpath", "access_token", "signsecret", "aaaabbbbcccc", "token=abc"):
        assert secret not in text, secret
    shown = masked(config)
    assert shown["providers"]["up"]["api_key"] == "***"
    assert shown["providers"]["up"]["base_url"] == "https://***@api.example.com/v1?***"
    assert shown["spend"]["webhooks"][0]["url"] == "https://hooks.slack.com/***"
    assert shown["models"]["m"]["price"]["input"] == "1"


def test_url_helpers_keep_what_is_not_secret() -> None:
    """A plain URL is left alone; host_only keeps scheme and host."""
    assert without_credentials("https://api.openai.com/v1") == "https://api.openai.com/v1"
    assert host_only("https://h.example:8443/path/secret") == "https://h.example/***"

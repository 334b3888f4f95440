"""The `keys:`, `budgets:` and `spend:` sections: every mistake reported with its key path."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gateway.config import load
from gateway.confread import ConfigError
from gateway.spend.config import hash_key

BASE = """
providers:
  sim: {kind: mock}
  up: {kind: openai, base_url: "http://127.0.0.1:1/v1", provider_name: openai}
models:
  m1: {provider: sim, price_per_mtok: {input: 1, output: 2}}
  m2: {provider: up, price_per_mtok: {input: 1, output: 2}}
"""


def _problems(extra: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(BASE + extra, environ or {})
    return info.value.problems


def test_budget_mistakes_are_reported_with_their_paths() -> None:
    """Negative limits, unknown scopes, windows, zones and actions each name their key path."""
    problems = _problems("""
budgets:
  - {scope: global, limit_usd: -5}
  - {scope: galaxy, limit_usd: 1}
  - {scope: global, window: week, limit_usd: 1, name: w}
  - {scope: global, limit_usd: 1, timezone: Mars/Olympus_Mons, name: tz}
  - {scope: global, limit_usd: 1, action: explode, name: act}
  - {scope: global, limit_usd: 1, thresholds: [50, -1], name: th}
""")
    assert "budgets[0].limit_usd: must be a number >= 0" in problems
    assert ("budgets[1].scope: unknown scope 'galaxy' (expected one of: global, model, provider, "
            "key, team, user, tag)") in problems
    assert "budgets[2].window: must be one of: day, month" in problems
    assert any(p.startswith("budgets[3].timezone: unknown time zone 'Mars/Olympus_Mons'")
               for p in problems)
    assert "budgets[4].action: must be one of: block, alert" in problems
    assert any(p.startswith("budgets[5].thresholds:") for p in problems)


def test_scoped_budgets_must_name_a_known_target() -> None:
    """A team budget needs its team, a model budget a configured model, a provider budget a
    configured provider name; a target field on the wrong scope is refused."""
    problems = _problems("""
budgets:
  - {scope: team, limit_usd: 1}
  - {scope: model, model: gpt-9, limit_usd: 1}
  - {scope: provider, provider: nowhere, limit_usd: 1}
  - {scope: global, team: research, limit_usd: 1}
""")
    assert "budgets[0].team: is required for a team budget (the team it limits)" in problems
    assert any(p.startswith("budgets[1].model: names no model") for p in problems)
    assert any(p.startswith("budgets[2].provider: names no provider") for p in problems)
    assert "budgets[3].team: does not apply to a global budget" in problems


def test_key_mistakes_are_reported_with_their_paths() -> None:
    """Duplicate aliases and keys, bad hashes, both or neither key source, unknown models."""
    digest = hash_key("k1")
    problems = _problems(f"""
keys:
  - {{alias: web, team: a, key_sha256: "{digest}"}}
  - {{alias: web, team: b, key_env: WEB2}}
  - {{alias: other, team: b, key_sha256: "{digest}"}}
  - {{alias: bad, team: b, key_sha256: "xyz"}}
  - {{alias: both, team: b, key_sha256: "{hash_key('z')}", key_env: X}}
  - {{alias: "has space", team: b, key_env: Y, allowed_models: [m1, nope]}}
""")
    assert "keys[1].alias: duplicate alias 'web' (also at keys[0])" in problems
    assert "keys[2].key_sha256: the same key is already defined at keys[0]" in problems
    assert "keys[3].key_sha256: must be 64 hex characters (sha256sum of the key)" in problems
    assert any(p.startswith("keys[4].key_sha256: give exactly one of") for p in problems)
    assert any(p.startswith("keys[5].alias: 'has space' is not a valid key alias") for p in problems)
    assert any(p.startswith("keys[5].allowed_models[1]: names no model") for p in problems)


def test_duplicate_budget_names_are_refused() -> None:
    """Two budgets with one name (also a key's shorthand budget) are an error."""
    problems = _problems(f"""
keys:
  - {{alias: web, team: a, key_sha256: "{hash_key('k')}", budget_usd_per_day: 5}}
budgets:
  - {{scope: key, key: web, limit_usd: 1}}
""")
    assert "keys[0].budget_usd_per_day: duplicate budget name 'key:web:day' (also at budgets[0])" \
        in problems


def test_spend_settings_and_webhooks_are_checked() -> None:
    """An unknown zone, webhook format or runaway action in `spend:` names its path."""
    problems = _problems("""
spend:
  timezone: Nowhere/City
  default_max_tokens: 0
  webhooks:
    - {url: "ftp://x", format: slack}
    - {url: "https://x", format: teams}
  runaway: {action: panic, spike_factor: 1}
""")
    assert any(p.startswith("spend.timezone: unknown time zone") for p in problems)
    assert "spend.default_max_tokens: must be an integer >= 1" in problems
    assert "spend.webhooks[0].url: must start with http:// or https://" in problems
    assert "spend.webhooks[1].format: must be one of: slack, dingtalk, feishu, json" in problems
    assert "spend.runaway.action: must be one of: alert, throttle, block" in problems
    assert "spend.runaway.spike_factor: must be a number > 1" in problems


def test_keys_from_env_keep_only_a_hash_and_budgets_get_defaults() -> None:
    """A key read from the environment is kept as its SHA-256 only; budgets default to a
    daily blocking fuse with 50/80/100% thresholds in spend.timezone."""
    config = load(BASE + """
keys:
  - {alias: web, team: product, key_env: WEB_KEY, budget_usd_per_month: 100}
  - {alias: cron, team: ops, key_env: UNSET_VAR}
budgets:
  - {limit_usd: 50}
spend: {timezone: Asia/Shanghai}
""", {"WEB_KEY": "sk-gw-secret-value"})
    web, cron = config.spend.keys
    assert web.key_sha256 == hash_key("sk-gw-secret-value")
    assert "sk-gw-secret-value" not in repr(config)
    assert cron.key_sha256 is None and cron.key_env == "UNSET_VAR"
    fuse, monthly = config.spend.budgets
    assert (fuse.name, fuse.scope, fuse.window, fuse.action) == ("global:day", "global", "day",
                                                                  "block")
    assert fuse.thresholds == (50.0, 80.0, 100.0) and fuse.timezone == "Asia/Shanghai"
    assert (monthly.name, monthly.target, monthly.limit_usd) == ("key:web:month", "web",
                                                                 Decimal(100))


def test_webhook_with_an_empty_url_is_off() -> None:
    """`url: "${SLACK_URL:-}"` with the variable unset turns that webhook off, not an error."""
    config = load(BASE + 'spend:\n  webhooks: [{url: "${SLACK_URL:-}", format: slack}]\n', {})
    assert config.spend.webhooks == ()


def test_webhook_url_and_secret_never_printed() -> None:
    """A webhook's URL path and signing secret (both credentials) stay out of the config's repr."""
    config = load(BASE + 'spend:\n  webhooks: [{url: "https://hooks.example/T0/B1/tok3n", '
                         'format: dingtalk, secret: "${SIGN}"}]\n', {"SIGN": "s1gn-s3cret"})
    text = repr(config)
    assert "tok3n" not in text and "s1gn-s3cret" not in text
    assert config.spend.webhooks[0].display == "https://hooks.example/..."

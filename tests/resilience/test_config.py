"""Resilience configuration: defaults, per-model overrides, chains and validation."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from gateway.config import ConfigError, load, load_from
from gateway.resilience.config import FALLBACK


def _config(models: dict[str, Any], **sections: Any) -> str:
    tree: dict[str, Any] = {
        "providers": {"sim": {"kind": "mock"}},
        "models": {name: {"provider": "sim", "price_per_mtok": {"input": 1, "output": 1},
                          **settings} for name, settings in models.items()},
        **sections,
    }
    return yaml.safe_dump(tree)


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(text, {})
    return caught.value.problems


def test_defaults_and_overrides() -> None:
    """`resilience:` sets the defaults; a model's own keys override them, nested ones too."""
    config = load(_config(
        {"a": {"fallbacks": ["b"], "first_token_timeout_s": 5, "retry": {"max_attempts": 3},
               "on_budget_exceeded": "fallback"}, "b": {}},
        resilience={"request_timeout_s": 30, "retry": {"initial_backoff_s": 0.5},
                    "circuit_breaker": {"cooldown_s": 10}}), {})
    res = config.resilience
    a, b = res.policy("a"), res.policy("b")
    assert (a.first_token_timeout_s, a.request_timeout_s, a.on_budget_exceeded) == (5, 30, FALLBACK)
    assert (a.retry.max_attempts, a.retry.initial_backoff_s) == (3, 0.5)
    assert a.breaker.cooldown_s == 10
    assert (b.first_token_timeout_s, b.retry.max_attempts, b.on_budget_exceeded) == (None, 2, "fail")


def test_chains_follow_fallbacks_depth_first() -> None:
    """A fallback's own fallbacks come right after it, and each model appears once."""
    config = load(_config({"a": {"fallbacks": ["b", "c"]}, "b": {"fallbacks": ["d", "c"]},
                           "c": {}, "d": {}}), {})
    assert config.resilience.chain("a") == ("a", "b", "d", "c")
    assert config.resilience.chain("c") == ("c",)


def test_unknown_fallback_is_reported_with_its_path() -> None:
    """A fallback naming no model is an error at models.<name>.fallbacks[i]."""
    problems = _problems(_config({"a": {"fallbacks": ["b", "nope"]}, "b": {}}))
    assert any(p.startswith("models.a.fallbacks[1]: names no model") for p in problems)


def test_fallback_cycle_is_reported() -> None:
    """A cycle in the fallback chains is an error naming the cycle."""
    problems = _problems(_config({"a": {"fallbacks": ["b"]}, "b": {"fallbacks": ["c"]},
                                  "c": {"fallbacks": ["a"]}}))
    assert any("fallback chains form a cycle: a -> b -> c -> a" in p for p in problems)
    assert any("cycle: x -> x" in p for p in _problems(_config({"x": {"fallbacks": ["x"]}})))


def test_negative_and_bad_values_are_reported() -> None:
    """Negative timeouts, ratios above 1 and unknown keys are errors with their key paths."""
    problems = _problems(_config(
        {"a": {"first_token_timeout_s": -1, "circuit_breaker": {"error_ratio": 2}}},
        resilience={"request_timeout_s": 0, "retry": {"max_attempts": 0, "on": ["bogus"]},
                    "colour": "red"},
        rate_limits={"default": {"requests_per_minute": -5}}))
    expected = [
        "models.a.first_token_timeout_s: must be a number > 0",
        "models.a.circuit_breaker.error_ratio: must be a number > 0 and <= 1",
        "resilience.request_timeout_s: must be a number > 0",
        "resilience.retry.max_attempts: must be an integer >= 1",
        "resilience.retry.on: unknown reason 'bogus'",
        "resilience.colour: unknown key",
        "rate_limits.default.requests_per_minute: must be an integer >= 1",
    ]
    for prefix in expected:
        assert any(p.startswith(prefix) for p in problems), (prefix, problems)


def test_null_turns_an_inherited_timeout_off() -> None:
    """A model can switch off a default first-token timeout with null."""
    config = load(_config({"a": {"first_token_timeout_s": None}, "b": {}},
                          resilience={"first_token_timeout_s": 5}), {})
    assert config.resilience.policy("a").first_token_timeout_s is None
    assert config.resilience.policy("b").first_token_timeout_s == 5


def test_rate_limits_default_and_per_key() -> None:
    """Per-key entries inherit what they do not set from the default."""
    config = load(_config({"a": {}}, rate_limits={
        "default": {"requests_per_minute": 60, "tokens_per_minute": 1000},
        "keys": {"batch": {"requests_per_minute": 5}, "free": {"tokens_per_minute": None}}}), {})
    limits = config.resilience.rate_limits
    assert limits.enabled
    assert (limits.for_key("batch").requests_per_minute, limits.for_key("batch").tokens_per_minute) \
        == (5, 1000)
    assert limits.for_key("free").tokens_per_minute is None
    assert limits.for_key("someone").requests_per_minute == 60


def test_embedded_default_has_the_5s_chain() -> None:
    """The embedded default degrades claude-sonnet-4.5 -> gpt-4.1 -> deepseek-v3.2 after 5 s."""
    res = load_from(None, {}).resilience
    assert res.chain("claude-sonnet-4.5") == ("claude-sonnet-4.5", "gpt-4.1", "deepseek-v3.2")
    assert res.policy("claude-sonnet-4.5").first_token_timeout_s == 5


def test_check_config_summarises_chains_and_limits() -> None:
    """check-config lists each fallback chain with its first-token rule, and the rate limits."""
    from gateway.cli import summary

    config = load(_config({"a": {"fallbacks": ["b"], "first_token_timeout_s": 5,
                                 "on_budget_exceeded": "fallback"}, "b": {}},
                          rate_limits={"default": {"requests_per_minute": 60},
                                       "keys": {"batch": {"tokens_per_minute": 1000}}}), {})
    text = "\n".join(summary(config, {}))
    assert "  a: a -> b, first token 5 s, degrades when over budget" in text
    assert "rate limits, in memory (this replica): default 60 requests/min, unlimited tokens/min" \
        in text
    assert "key batch: 60 requests/min, 1000 tokens/min" in text

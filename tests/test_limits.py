"""Request bounds (`limits:`): defaults, config mistakes by key path, and the OpenAI
dialects' pure check that refuses out-of-bounds `max_tokens`, `max_completion_tokens`
and `n`."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config import ConfigError, load
from gateway.dialects.openai_chat import OpenAIChat
from gateway.dialects.openai_wire import check_bounds
from gateway.errors import InvalidRequest
from gateway.limits import DEFAULT_LIMITS, RequestLimits

BASE = """
providers: {sim: {kind: mock}}
models: {m: {provider: sim, price_per_mtok: {input: 1, output: 2}}}
"""


def test_defaults_refuse_nothing_a_real_model_serves() -> None:
    """Without `limits:`, max_tokens up to a million and n up to 128 (OpenAI's cap) pass."""
    config = load(BASE, {})
    assert config.limits == RequestLimits(max_tokens=1_000_000, max_n=128) == DEFAULT_LIMITS
    check_bounds({"max_tokens": 1_000_000, "max_completion_tokens": 128_000, "n": 128},
                        config.limits)


def test_configured_limits_are_read() -> None:
    """`limits:` sets both bounds."""
    config = load(BASE + "limits: {max_tokens: 8192, max_n: 4}\nspend: {default_max_tokens: 8192}\n",
                  {})
    assert config.limits == RequestLimits(max_tokens=8192, max_n=4)


def test_config_mistakes_name_their_key_path() -> None:
    """A bad bound, an unknown key and a default reservation above the bound are reported."""
    with pytest.raises(ConfigError) as info:
        load(BASE + "limits: {max_tokens: 0, max_n: lots, max_tokns: 5}\n", {})
    assert "limits.max_tokens: must be an integer >= 1" in info.value.problems
    assert "limits.max_n: must be an integer >= 1" in info.value.problems
    assert any(p.startswith("limits.max_tokns: unknown key") for p in info.value.problems)
    with pytest.raises(ConfigError) as info:
        load(BASE + "limits: {max_tokens: 1000}\n", {})
    assert info.value.problems == ["spend.default_max_tokens: must be at most limits.max_tokens (1000)"]


@pytest.mark.parametrize(("body", "param", "code"), [
    ({"max_tokens": 2**64 - 1}, "max_tokens", "integer_above_max_value"),
    ({"max_completion_tokens": 1_000_001}, "max_completion_tokens", "integer_above_max_value"),
    ({"n": 129}, "n", "integer_above_max_value"),
    ({"max_tokens": 0}, "max_tokens", "integer_below_min_value"),
    ({"n": 0}, "n", "integer_below_min_value"),
    ({"max_tokens": 100.0}, "max_tokens", "invalid_type"),
    ({"max_completion_tokens": "100"}, "max_completion_tokens", "invalid_type"),
    ({"n": False}, "n", "invalid_type"),
    ({"max_tokens": [1]}, "max_tokens", "invalid_type"),
])
def test_out_of_bounds_values_are_invalid_requests(body: dict[str, Any], param: str,
                                                   code: str) -> None:
    """Each bad value is a 400 naming its parameter, with OpenAI's error code."""
    with pytest.raises(InvalidRequest) as info:
        check_bounds(body, DEFAULT_LIMITS)
    assert (info.value.status, info.value.param, info.value.code) == (400, param, code)


def test_absent_and_null_values_pass() -> None:
    """A body without the fields, or with them null, is within bounds."""
    check_bounds({}, DEFAULT_LIMITS)
    check_bounds({"max_tokens": None, "max_completion_tokens": None, "n": None},
                        DEFAULT_LIMITS)


def test_chat_parsing_applies_the_limits() -> None:
    """The chat dialect checks the bounds it was built with, and the defaults without any."""
    raw = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "n": 3}'
    assert OpenAIChat().parse(raw).body["n"] == 3
    with pytest.raises(InvalidRequest):
        OpenAIChat(RequestLimits(max_tokens=10, max_n=2)).parse(raw)

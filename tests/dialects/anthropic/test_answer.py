"""Usage and response attributes from Messages answers, as Anthropic reports them."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from gateway.dialects.anthropic.answer import merged_usage, response_attributes, response_model, usage_from
from gateway.telemetry import names as n
from gateway.usage import Usage
from tests.fakes import anthropic_wire as wire


@pytest.mark.parametrize(("usage", "expected"), [
    ({"input_tokens": 25, "output_tokens": 15},
     Usage(input=25, output=15)),
    # input_tokens excludes cache reads and writes; the total input is their sum.
    ({"input_tokens": 10, "cache_creation_input_tokens": 2000, "cache_read_input_tokens": 300,
      "output_tokens": 50},
     Usage(input=2310, output=50, cache_read=300, cache_creation=2000)),
    # The TTL split: 1-hour writes are counted apart.
    ({"input_tokens": 3, "cache_creation_input_tokens": 1500, "cache_read_input_tokens": 0,
      "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 500},
      "output_tokens": 7, "service_tier": "standard"},
     Usage(input=1503, output=7, cache_creation=1500, cache_creation_1h=500)),
    # Thinking tokens are part of output_tokens.
    ({"input_tokens": 5, "output_tokens": 900, "output_tokens_details": {"thinking_tokens": 700}},
     Usage(input=5, output=900, reasoning=700)),
    # Nulls (as message_delta may carry) and junk count as zero.
    ({"input_tokens": None, "cache_read_input_tokens": None, "output_tokens": "x"}, Usage()),
])
def test_usage_from_anthropic(usage: dict[str, Any], expected: Usage) -> None:
    """Anthropic usage reads into the gateway's Usage with input as the sum of all input kinds."""
    assert usage_from(usage) == expected


def test_usage_is_none_when_absent() -> None:
    """An answer without a usage object has no usage (the gateway then estimates)."""
    assert usage_from(None) is None and usage_from([1]) is None


def test_stream_usage_merges_start_and_cumulative_delta() -> None:
    """message_delta's counts are cumulative: they replace message_start's; nulls keep them."""
    start = wire.Usage(10, 1, cache_write_5m=100, cache_read=20).as_json()
    assert merged_usage(start, {"output_tokens": 42}) == Usage(
        input=130, output=42, cache_read=20, cache_creation=100)
    full = {"input_tokens": 10, "cache_creation_input_tokens": 100,
            "cache_read_input_tokens": None, "output_tokens": 42}
    assert merged_usage(start, full) == Usage(input=130, output=42, cache_read=20,
                                              cache_creation=100)
    assert merged_usage(start, None) == Usage(input=130, output=1, cache_read=20,
                                              cache_creation=100)
    assert merged_usage(None, {"output_tokens": 3}) == Usage(output=3)


def test_response_attributes_from_a_real_answer() -> None:
    """id and stop reason come from the answer (checked against the SDK's Message type)."""
    answer = wire.message(ident="msg_01abc", model="claude-sonnet-4-5-20250929",
                          content=[wire.text_block("Hi")], stop_reason="max_tokens",
                          usage=wire.Usage(5, 8))
    anthropic.types.Message.model_validate(answer)
    assert response_attributes(answer) == {n.GEN_AI_RESPONSE_ID: "msg_01abc",
                                           n.GEN_AI_RESPONSE_FINISH_REASONS: ["max_tokens"]}
    assert response_model(answer) == "claude-sonnet-4-5-20250929"
    assert response_model({}) is None

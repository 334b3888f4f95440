"""Token accounting and cost: cached input at its price, reasoning as output."""

from decimal import Decimal

from gateway.catalog import config_pricing
from gateway.config import Price
from gateway.pricing import cost_usd, worst_case_cost_usd
from gateway.usage import Usage, estimate_prompt_tokens, from_openai

PRICE = config_pricing(Price(input=Decimal("2.5"), output=Decimal("8"),
                             cached_input=Decimal("0.625")))


def test_reads_openai_usage_with_details() -> None:
    """Cached and reasoning tokens are read from the details objects."""
    usage = from_openai({
        "prompt_tokens": 2000, "completion_tokens": 300, "total_tokens": 2300,
        "prompt_tokens_details": {"cached_tokens": 1024},
        "completion_tokens_details": {"reasoning_tokens": 200},
    })
    assert usage == Usage(input=2000, output=300, cache_read=1024, reasoning=200)


def test_reads_openai_audio_and_image_token_details() -> None:
    """Audio and image tokens are read from the details objects, as parts of input and output."""
    usage = from_openai({
        "prompt_tokens": 500, "completion_tokens": 300,
        "prompt_tokens_details": {"audio_tokens": 120, "image_tokens": 80},
        "completion_tokens_details": {"audio_tokens": 250},
    })
    assert usage == Usage(input=500, output=300, input_audio=120, output_audio=250, input_image=80)


def test_missing_usage_is_none() -> None:
    """No usage object means no counts, not zero counts."""
    assert from_openai(None) is None


def test_cost_charges_cached_tokens_at_cached_price() -> None:
    """1,000,000 uncached in + 1,000,000 cached in + 1,000,000 out at list prices."""
    usage = Usage(input=2_000_000, output=1_000_000, cache_read=1_000_000)
    assert cost_usd(usage, PRICE) == Decimal("2.5") + Decimal("0.625") + Decimal("8")


def test_reasoning_tokens_are_billed_once_as_output() -> None:
    """Reasoning tokens are part of output tokens and not billed twice."""
    assert cost_usd(Usage(output=1000, reasoning=900), PRICE) == Decimal("0.008")


def test_worst_case_is_an_upper_bound() -> None:
    """The reservation bound is at least the real cost of any call within max_tokens."""
    bound = worst_case_cost_usd(100, 50, PRICE)
    assert bound >= cost_usd(Usage(input=100, output=50, cache_read=100), PRICE)


def test_prompt_estimate_grows_with_text() -> None:
    """Longer prompts estimate more tokens."""
    short = estimate_prompt_tokens({"messages": [{"role": "user", "content": "hi"}]})
    long = estimate_prompt_tokens({"messages": [{"role": "user", "content": "hi " * 400}]})
    assert long > short > 0


SONNET = config_pricing(Price(input=Decimal(3), output=Decimal(15), cached_input=Decimal("0.3"),
                              cache_write=Decimal("3.75"), cache_write_1h=Decimal(6)))


def test_cache_writes_at_their_lifetime_price() -> None:
    """Anthropic's bill: uncached input 1x, 5-minute writes 1.25x, 1-hour writes 2x, reads 0.1x."""
    usage = Usage(input=1_000_000 + 400_000 + 100_000 + 2_000_000, output=10_000,
                  cache_read=2_000_000, cache_creation=500_000, cache_creation_1h=100_000)
    expected = (Decimal(3) * 1 + Decimal("3.75") * Decimal("0.4") + Decimal(6) * Decimal("0.1")
                + Decimal("0.3") * 2 + Decimal(15) * Decimal("0.01"))
    assert cost_usd(usage, SONNET) == expected


def test_cache_writes_without_write_prices_are_plain_input() -> None:
    """A model with no cache-write price bills writes as input: OpenAI-shaped costs unchanged."""
    written = Usage(input=3000, output=100, cache_read=1000, cache_creation=1500)
    plain = Usage(input=3000, output=100, cache_read=1000)
    assert cost_usd(written, PRICE) == cost_usd(plain, PRICE)


def test_inconsistent_cache_counts_never_bill_more_than_the_input() -> None:
    """Writes beyond the uncached input are capped: counts from a confused upstream can't inflate cost."""
    usage = Usage(input=100, cache_read=60, cache_creation=500, cache_creation_1h=900)
    assert cost_usd(usage, SONNET) == (60 * Decimal("0.3") + 40 * Decimal(6)) / 1_000_000


def test_worst_case_covers_cache_writes() -> None:
    """With writes dearer than input (Anthropic's 2x one-hour writes), the bound assumes them."""
    usage = Usage(input=1000, output=10, cache_creation=1000, cache_creation_1h=1000)
    assert worst_case_cost_usd(1000, 10, SONNET) == cost_usd(usage, SONNET)
    assert worst_case_cost_usd(1000, 10, PRICE) == (1000 * Decimal("2.5") + 80) / 1_000_000

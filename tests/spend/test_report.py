"""The spend report's token-type columns and its note about unpriced calls: pure."""

from __future__ import annotations

from gateway.spend.ledger import LedgerEntry
from gateway.spend.report import aggregate, render


def _entry(model: str, **counts: int | bool) -> LedgerEntry:
    return LedgerEntry(1.0, "r", "", "web", "t", None, "chat", model, model, "p", **counts)


def test_every_token_type_is_summed_per_group_and_in_the_total() -> None:
    """Cache reads, five-minute and one-hour writes and reasoning tokens each get a column,
    summed per model and in the total; unpriced calls are counted and explained."""
    summary = aggregate([
        _entry("claude", input_tokens=16_000, output_tokens=500, cached_tokens=10_000,
               cache_write_tokens=2_000, cache_write_1h_tokens=3_000, cost_nanos=39_000_000),
        _entry("claude", input_tokens=100, output_tokens=10, cache_write_tokens=50,
               cost_nanos=1_000),
        _entry("o4", input_tokens=2_000, output_tokens=3_000, reasoning_tokens=2_500,
               cost_nanos=16_900_000, unpriced=True),
    ], "model")
    text = render(summary, "model", "spend today", {}, None)
    lines = text.splitlines()
    assert lines[2].split() == ["model", "calls", "input", "tok", "output", "tok", "cached",
                                "tok", "write", "5m", "tok", "write", "1h", "tok",
                                "reasoning", "tok", "cost", "budget", "used"]
    claude = next(line.split() for line in lines if line.startswith("claude"))
    assert claude == ["claude", "2", "16,100", "510", "10,000", "2,050", "3,000", "0", "$0.0390"]
    total = next(line.split() for line in lines if line.startswith("total"))
    assert total == ["total", "3", "18,100", "3,510", "10,000", "2,050", "3,000", "2,500",
                     "$0.0559"]
    assert "1 calls were to models with no price" in text


def test_audio_and_image_tokens_get_columns_when_the_period_has_any() -> None:
    """Audio and image tokens, input and output, are summed per group and in the total,
    in columns shown only when some call used them."""
    plain = aggregate([_entry("gpt", input_tokens=10, output_tokens=5)], "model")
    assert "audio in tok" not in render(plain, "model", "spend", {}, None)
    summary = aggregate([
        _entry("gpt-audio", input_tokens=1_000, output_tokens=800, input_audio_tokens=600,
               output_audio_tokens=700, cost_nanos=5_000_000),
        _entry("gpt-audio", input_tokens=100, output_tokens=10, input_image_tokens=85,
               cost_nanos=1_000),
        _entry("gpt-image", input_tokens=50, output_tokens=4_000, output_image_tokens=4_000,
               cost_nanos=2_000_000),
    ], "model")
    lines = render(summary, "model", "spend today", {}, None).splitlines()
    assert lines[2].split()[16:] == ["audio", "in", "tok", "audio", "out", "tok", "image", "in",
                                     "tok", "image", "out", "tok", "cost", "budget", "used"]
    audio = next(line.split() for line in lines if line.startswith("gpt-audio"))
    assert audio[8:] == ["600", "700", "85", "0", "$0.0050"]
    total = next(line.split() for line in lines if line.startswith("total"))
    assert total[8:] == ["600", "700", "85", "4,000", "$0.0070"]

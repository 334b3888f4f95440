"""Model names in provider reports and in the ledger meet on one name: the snapshot date
dropped, the model of an OpenAI cost line item found."""

from __future__ import annotations

import pytest

from gateway.reconcile.names import base_model, line_item_model


@pytest.mark.parametrize(("name", "base"), [
    ("gpt-4.1-2025-04-14", "gpt-4.1"), ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
    ("gpt-4.1", "gpt-4.1"), ("o3-mini", "o3-mini"), ("claude-3-5-haiku-latest",
                                                     "claude-3-5-haiku-latest")])
def test_base_model_drops_only_a_snapshot_date(name: str, base: str) -> None:
    """`-YYYY-MM-DD` and `-YYYYMMDD` suffixes go; other names stay as they are."""
    assert base_model(name) == base


@pytest.mark.parametrize(("item", "model"), [
    ("gpt-4o-mini-2024-07-18, cached input", "gpt-4o-mini"),
    ("gpt-4.1-2025-04-14, output", "gpt-4.1"),
    ("priority | gpt-5, output, long context", "gpt-5"),
    ("gpt-audio-mini-2025-12-15 audio, input", "gpt-audio-mini"),
    ("web search tool calls", "web search tool calls")])
def test_line_item_model_reads_the_model_before_the_comma(item: str, model: str) -> None:
    """The tier prefix and modality word are dropped; an item naming no model stays whole."""
    assert line_item_model(item) == model

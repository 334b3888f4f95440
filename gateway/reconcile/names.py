"""How a model name in a provider's report and a model name in our ledger are matched.

Providers bill under dated snapshot names (`gpt-4.1-2025-04-14`,
`claude-sonnet-4-5-20250929`) while a ledger row carries whatever the upstream
answered, which may be the alias or the snapshot. Both sides are reduced to one
name: the date suffix is dropped. OpenAI's cost line items (`"gpt-4o-2024-08-06,
cached input"`, `"priority | gpt-5, output, long context"`, `"gpt-audio-2025-08-28
audio, input"`) name the model before the first comma, after an optional
`tier |` prefix and before an optional modality word. Pure.
"""

from __future__ import annotations

import re

_DATED = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8})$")


def base_model(name: str) -> str:
    """`name` without a trailing `-YYYY-MM-DD` (OpenAI) or `-YYYYMMDD` (Anthropic) snapshot
    date; other names unchanged."""
    return _DATED.sub("", name.strip())


def line_item_model(line_item: str) -> str:
    """The model an OpenAI cost line item bills, with its date dropped; a line item that
    names no model (`"web search tool calls"`) is returned whole, so it shows as a row of
    its own instead of vanishing."""
    head, comma, _ = line_item.partition(",")
    if not comma:
        return line_item.strip()
    if "|" in head:
        head = head.rsplit("|", 1)[1]
    words = head.split()
    return base_model(words[0]) if words else line_item.strip()

"""The translated-call tests' rig (`tests/support/rig.py`) with their models: Gemini,
Claude and OpenAI-format ones, each with a fallback across dialects."""

from __future__ import annotations

from tests.support.rig import rig_fixture

MODELS = """
  gemini-2.5-flash:
    provider: google
    upstream_model: gemini-2.5-flash-001
    price_per_mtok: {input: 0.3, output: 2.5}
  gemini-fallback:
    provider: google
    price_per_mtok: {input: 0.3, output: 2.5}
    fallbacks: [claude-sonnet-4.5]
  gemini-embedding:
    provider: google
    upstream_model: gemini-embedding-001
    price_per_mtok: {input: 0.15, output: 0}
  claude-sonnet-4.5:
    provider: claude
    upstream_model: claude-sonnet-4-5
    price_per_mtok: {input: 3, output: 15}
  claude-fallback:
    provider: claude
    price_per_mtok: {input: 3, output: 15}
    fallbacks: [gemini-2.5-flash]
  text-embedding-3-small:
    provider: chat
    price_per_mtok: {input: 0.02, output: 0}
"""


rig = rig_fixture(MODELS)

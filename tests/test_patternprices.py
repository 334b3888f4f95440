"""A pattern entry with no price of its own prices each id it serves from the catalog,
once per id; one with a price keeps it."""

from __future__ import annotations

from typing import Any

from gateway.catalog import ProviderFacts, Resolver, catalog_lookup
from gateway.config import load
from gateway.patternprices import ModelLookup, model_lookup

CONFIG = """
providers:
  claude: {kind: anthropic}
models:
  claude-sonnet-4.5: {provider: claude, upstream_model: claude-sonnet-4-5-20250929}
  "claude-3*": {provider: claude, price_per_mtok: {input: 3, output: 15}}
  "claude-*": {provider: claude}
"""
PICO = 1_000_000  # pico-dollars per token in $1 per million tokens


class CountingLookup:
    """The catalog lookup, counting how often it is asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, model_id: str, provider: ProviderFacts | None) -> tuple[str, Any] | None:
        self.asked.append(model_id)
        return catalog_lookup(model_id, provider)


def _lookup(size: int = 4096) -> tuple[ModelLookup, CountingLookup]:
    counting = CountingLookup()
    resolver = Resolver({"claude": ProviderFacts("anthropic", "")}, counting)
    return ModelLookup(load(CONFIG, {}), resolver, size), counting


def test_each_id_of_a_priceless_pattern_gets_its_catalog_price_once() -> None:
    """Opus and Haiku under `claude-*` are charged their own catalog prices, still named
    by the pattern; asking again reuses the priced model without asking the catalog."""
    lookup, counting = _lookup()
    opus = lookup("claude-opus-4-1-20250805")
    haiku = lookup("claude-haiku-4-5")
    assert opus is not None and haiku is not None
    assert (opus.name, haiku.name) == ("claude-*", "claude-*")
    assert (opus.pricing.base.input, opus.pricing.base.output) == (15 * PICO, 75 * PICO)
    assert (haiku.pricing.base.input, haiku.pricing.base.output) == (1 * PICO, 5 * PICO)
    assert lookup("claude-opus-4-1-20250805") is opus
    assert counting.asked == ["claude-opus-4-1-20250805", "claude-haiku-4-5"]


def test_a_priced_pattern_and_named_models_are_left_as_they_are() -> None:
    """A pattern entry with its own price and a named model are the config's objects; an
    id the catalog does not know stays unpriced, as the entry is."""
    lookup, counting = _lookup()
    config = load(CONFIG, {})
    old = lookup("claude-3-opus-20240229")
    assert old is not None and old.name == "claude-3*"
    assert old.pricing.base.input == 3 * PICO
    named = lookup("claude-sonnet-4.5")
    assert named is not None and named.pricing == config.models["claude-sonnet-4.5"].pricing
    unknown = lookup("claude-imaginary-9")
    assert unknown is not None and not unknown.pricing.priced
    assert lookup("gpt-4.1") is None
    assert counting.asked == ["claude-imaginary-9"]


def test_the_priced_ids_kept_are_bounded() -> None:
    """Past its size the map forgets the least recently used id (asked again later)."""
    lookup, counting = _lookup(size=2)
    for model_id in ("claude-opus-4-1", "claude-haiku-4-5", "claude-opus-4-1",
                     "claude-sonnet-4-5", "claude-haiku-4-5"):
        lookup(model_id)
    assert counting.asked == ["claude-opus-4-1", "claude-haiku-4-5", "claude-sonnet-4-5",
                              "claude-haiku-4-5"]


def test_without_a_priceless_pattern_the_lookup_is_the_configs_own() -> None:
    """A config whose patterns all have prices (or none) looks models up with its own
    lookup: calls pay nothing for per-id pricing."""
    priced = load(CONFIG.replace('"claude-*": {provider: claude}', ""), {})
    assert model_lookup(priced) == priced.lookup
    assert isinstance(model_lookup(load(CONFIG, {})), ModelLookup)

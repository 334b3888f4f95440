"""Prices for the ids a pattern entry (`"claude-*"`) serves.

A pattern entry serves every id it matches, sent upstream as asked. When the entry sets
no price of its own (`price_per_mtok` absent or empty, the catalog not turned off), each
concrete id is priced as if it were a model of its own: the price catalog's entry for
that id at the entry's provider (so `claude-opus-4-1` is charged Opus's prices, not
Sonnet's). The catalog is asked once per id; the priced model is kept in a bounded LRU
map, so a call costs a dict lookup. An entry with a price of its own is priced by it, as
any model is; an id the catalog does not know is unpriced, as the entry is.

Pure (no aiohttp): the lifecycle looks models up with `model_lookup(config)`.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

from gateway.catalog import ProviderFacts, Resolver
from gateway.coreconfig import CoreConfig, ModelConfig

# Distinct ids priced and kept at once; clients choose the ids, so the map is bounded.
MAX_IDS: Final = 4096


def priced_per_id(model: ModelConfig) -> bool:
    """Whether a model is a pattern entry that leaves its ids' prices to the catalog."""
    return model.passthrough and model.price.catalog and not model.price.set_fields()


def model_lookup(config: CoreConfig) -> Callable[[str], ModelConfig | None]:
    """What the lifecycle looks models up with: `config.lookup` itself when no pattern
    entry is priced per id (nothing added to a call), else a `ModelLookup`."""
    if not any(priced_per_id(config.models[name]) for name in config.patterns):
        return config.lookup
    return ModelLookup(config)


class ModelLookup:
    """The model serving a requested id (`CoreConfig.lookup`), priced for that id when
    it is served by a pattern entry with no price of its own."""

    def __init__(self, config: CoreConfig, resolver: Resolver | None = None,
                 size: int = MAX_IDS) -> None:
        self._lookup = config.lookup
        self._patterns = frozenset(name for name in config.patterns
                                   if priced_per_id(config.models[name]))
        self._resolver = resolver or Resolver(
            {name: ProviderFacts(p.provider_name, p.base_url)
             for name, p in config.providers.items()})
        self._size = size
        self._priced: OrderedDict[str, ModelConfig] = OrderedDict()

    def __call__(self, requested: str) -> ModelConfig | None:
        model = self._lookup(requested)
        if model is None or not self._patterns or model.name not in self._patterns:
            return model
        return self._for_id(model, requested)

    def _for_id(self, model: ModelConfig, requested: str) -> ModelConfig:
        found = self._priced.get(requested)
        if found is not None:
            self._priced.move_to_end(requested)
            return found
        priced = copy.copy(model)
        # Derived, as the loader sets it on every model (`ModelConfig._resolve_pricing`).
        object.__setattr__(priced, "pricing", self._resolver.sheet(model, requested).pricing())
        self._priced[requested] = priced
        if len(self._priced) > self._size:
            self._priced.popitem(last=False)
        return priced

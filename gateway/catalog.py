"""Each configured model's effective prices: the price catalog's, overridden by the config.

The catalog is `genai-prices` (its bundled data: no network), looked up by the model's
upstream id and its provider. A price the config sets replaces the catalog's for that
token type at every tier; a type neither prices is billed as the one it is a kind of
(cache reads and writes, audio and image input as input; reasoning, audio and image
output as output), except that an Anthropic model's cache prices default to Anthropic's
multipliers of input. Runs at load and reload only, and once per id a pattern entry
with no price serves (`patternprices`): the request path reads the result,
`ModelPricing`, and never this module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from importlib import metadata
from typing import Any

from gateway.coreconfig import ANTHROPIC_CACHE_PRICES, PRICE_FIELDS, ModelConfig, Price
from gateway.pricing import PICO_PER_MTOK_UNIT, UNPRICED, ModelPricing, Rates

CATALOG = "genai-prices"
CONFIG = "config"
# gen_ai.provider.name (as the config names providers) -> the catalog's provider id,
# where the two differ.
CATALOG_PROVIDERS = {
    "gcp.gemini": "google", "gcp.vertex_ai": "google", "gcp.gen_ai": "google",
    "aws.bedrock": "aws", "azure.ai.openai": "azure", "azure.ai.inference": "azure",
    "x_ai": "x-ai", "mistral_ai": "mistral", "ibm.watsonx.ai": "ibm",
}
# Our token type -> the catalog's price keys for it, first found wins.
CATALOG_KEYS: Mapping[str, tuple[str, ...]] = {
    "input": ("input_mtok",),
    "cached_input": ("cache_read_mtok",),
    "cache_write": ("cache_write_5m_mtok", "cache_write_mtok"),
    "cache_write_1h": ("cache_write_1h_mtok",),
    "output": ("output_mtok",),
    "reasoning": ("output_reasoning_mtok",),
    "input_audio": ("input_audio_mtok",),
    "output_audio": ("output_audio_mtok",),
    "input_image": ("input_image_mtok",),
    "output_image": ("output_image_mtok",),
}
# A type with no price of its own is billed as this one.
BILLED_AS = {"cached_input": "input", "cache_write": "input", "cache_write_1h": "input",
             "reasoning": "output", "input_audio": "input", "output_audio": "output",
             "input_image": "input", "output_image": "output"}


@cache
def catalog_version() -> str:
    """The installed catalog's name and version, e.g. `genai-prices 0.2.3`."""
    return f"{CATALOG} {metadata.version(CATALOG)}"


@dataclass(frozen=True)
class Cell:
    """One effective price (US dollars per million tokens) and where it came from."""

    usd_per_mtok: Decimal
    source: str


Column = dict[str, Cell]  # token type -> its price, at one tier


@dataclass(frozen=True)
class PriceSheet:
    """A model's effective prices with their sources: what `llm-gateway prices` prints
    and what `pricing()` turns into the request path's `ModelPricing`."""

    model: str
    catalog_entry: str | None  # "anthropic/claude-sonnet-4-5", when the catalog knows it
    base: Column
    tiers: tuple[tuple[int, Column], ...]  # (above this many prompt tokens, prices)
    missing: tuple[str, ...]  # input/output with no price anywhere: the model is unpriced

    @property
    def priced(self) -> bool:
        return not self.missing

    def pricing(self) -> ModelPricing:
        if not self.priced:
            return UNPRICED
        return ModelPricing(_rates(self.base),
                            tuple((above, _rates(column)) for above, column in self.tiers))


def _rates(column: Column) -> Rates:
    return Rates(**{name: _pico(column[name].usd_per_mtok) for name in PRICE_FIELDS})


def _pico(usd_per_mtok: Decimal) -> int:
    return int((usd_per_mtok * PICO_PER_MTOK_UNIT).to_integral_value(rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class ProviderFacts:
    """What the lookup needs of a provider: its gen_ai name and its base URL."""

    provider_name: str
    base_url: str


class Resolver:
    """Resolves models' prices against one catalog (the loader makes one per load)."""

    def __init__(self, providers: Mapping[str, ProviderFacts],
                 lookup: Callable[[str, ProviderFacts | None], tuple[str, Any] | None] | None = None
                 ) -> None:
        self._providers = providers
        self._lookup = lookup or catalog_lookup

    def __call__(self, model: ModelConfig) -> ModelPricing:
        return self.sheet(model).pricing()

    def sheet(self, model: ModelConfig, model_id: str = "") -> PriceSheet:
        """`model`'s sheet, looked up in the catalog by `model_id` (one of the ids a pattern
        entry serves), else by its upstream id."""
        provider = self._providers.get(model.provider)
        found = None
        ident = model_id or model.upstream_model
        if model.price.catalog and ident:
            found = self._lookup(ident, provider)
        entry, catalog_prices = found if found is not None else (None, None)
        return build_sheet(model.name, model.price, entry, catalog_prices,
                           anthropic=provider is not None and provider.provider_name == "anthropic",
                           only_embeddings=model.operations == ("embeddings",))


def build_sheet(name: str, price: Price, entry: str | None = None, catalog_prices: Any = None,
                *, anthropic: bool = False, only_embeddings: bool = False) -> PriceSheet:
    """A model's sheet from its config `price` and its catalog prices (None: not in it)."""
    own = price.set_fields()
    catalog_columns = _catalog_columns(catalog_prices) if catalog_prices is not None else []
    base = _column(own, catalog_columns[0][1] if catalog_columns else {})
    tiers = tuple((above, _column(own, prices)) for above, prices in catalog_columns[1:])
    missing = tuple(kind for kind in ("input", "output")
                    if kind not in base and not (kind == "output" and only_embeddings))
    if not missing:
        for column in (base, *(column for _, column in tiers)):
            column.setdefault("output", Cell(Decimal(0), "none (embeddings)"))
            _fill(column, anthropic)
    return PriceSheet(name, entry, base, tiers, missing)


def config_pricing(price: Price, *, anthropic: bool = False) -> ModelPricing:
    """The prices of a config entry alone, with no catalog (tests, and `catalog: false`)."""
    return build_sheet("", price, anthropic=anthropic).pricing()


def _column(own: Mapping[str, Decimal], catalog: Mapping[str, Decimal]) -> Column:
    """One tier's prices set by the config or the catalog (the config's win)."""
    column = {name: Cell(value, catalog_version()) for name, value in catalog.items()}
    column.update({name: Cell(value, CONFIG) for name, value in own.items()})
    return column


def _fill(column: Column, anthropic: bool) -> None:
    """The types neither source prices: Anthropic's cache multipliers of input for an
    Anthropic model, else the price of the type they are billed as."""
    if anthropic:
        for name, factor in ANTHROPIC_CACHE_PRICES:
            if name not in column:
                column[name] = Cell(column["input"].usd_per_mtok * factor,
                                    f"{factor}x input (Anthropic's)")
    for name, billed_as in BILLED_AS.items():
        if name not in column:
            column[name] = Cell(column[billed_as].usd_per_mtok, f"as {billed_as}")


def _catalog_columns(prices: Any) -> list[tuple[int, dict[str, Decimal]]]:
    """The catalog's prices as (above prompt tokens, token type -> price) columns: the base
    first (threshold 0), then one per tier threshold any price has, each price at the
    highest of its own tiers that has started by then."""
    from genai_prices.types import TieredPrices

    raw: dict[str, Any] = {}
    for name, keys in CATALOG_KEYS.items():
        for key in keys:
            value = getattr(prices, key, None)
            if value is not None:
                raw[name] = value
                break
    starts = sorted({tier.start for value in raw.values() if isinstance(value, TieredPrices)
                     for tier in value.tiers})
    columns: list[tuple[int, dict[str, Decimal]]] = []
    for above in (0, *starts):
        column: dict[str, Decimal] = {}
        for name, value in raw.items():
            if isinstance(value, TieredPrices):
                price = value.base
                for tier in value.tiers:
                    if tier.start <= above:
                        price = tier.price
                column[name] = price
            else:
                column[name] = value
        columns.append((above, column))
    return columns


def catalog_lookup(model_id: str, provider: ProviderFacts | None) -> tuple[str, Any] | None:
    """The catalog's entry for `model_id` (as "provider/model") and its standard prices
    now, by the provider's catalog id, else its base URL, else the model id alone; None
    when the catalog does not know the model."""
    from genai_prices import data_snapshot

    snapshot = data_snapshot.get_snapshot()
    attempts: list[tuple[str | None, str | None]] = []
    if provider is not None:
        name = provider.provider_name
        attempts.append((CATALOG_PROVIDERS.get(name, name), None))
        if provider.base_url:
            attempts.append((None, provider.base_url))
    attempts.append((None, None))
    for provider_id, api_url in attempts:
        try:
            found, info = snapshot.find_provider_model(model_id, None, provider_id, api_url)
        except LookupError:
            continue
        return f"{found.id}/{info.id}", standard_prices(info)
    return None


def standard_prices(info: Any, now: datetime | None = None) -> Any:
    """A catalog model's standard prices now (no batch or priority variant). A price that
    changes with the time of day (DeepSeek's off-peak discount) is taken at its highest,
    so that a cost is never under-counted and does not depend on when the gateway started."""
    from genai_prices.types import StartDateConstraint, TimeOfDateConstraint

    moment = now or datetime.now(tz=UTC)
    if isinstance(info.prices, list) and any(
            isinstance(option.constraint, TimeOfDateConstraint) for option in info.prices):
        options = [option.prices for option in info.prices
                   if not isinstance(option.constraint, StartDateConstraint)
                   or option.constraint.active(moment)]
        return max(options, key=lambda prices: _base_of(getattr(prices, "input_mtok", None)))
    return info.get_prices(moment)


def _base_of(value: Any) -> Decimal:
    if value is None:
        return Decimal(0)
    return value if isinstance(value, Decimal) else Decimal(value.base)


def resolver_for(providers: Mapping[str, Any]) -> Resolver:
    """A resolver for the config file's `providers` section as written (after `${VAR}`)."""
    facts: dict[str, ProviderFacts] = {}
    for key, entry in providers.items():
        entry = entry if isinstance(entry, Mapping) else {}
        kind = str(entry.get("kind") or "openai")
        name = str(entry.get("provider_name") or
                   {"mock": "simulated", "anthropic": "anthropic"}.get(kind, key))
        facts[str(key)] = ProviderFacts(name, str(entry.get("base_url") or ""))
    return Resolver(facts)

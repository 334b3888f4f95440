"""`llm-gateway prices`: every configured model's effective prices, per token type and
tier, each with its source (the catalog's version, the config, or the type it is billed
as), and the models with no price at all. Also the `check-config` warnings about them."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.catalog import Cell, PriceSheet, ProviderFacts, Resolver, catalog_version
from gateway.config import GatewayConfig
from gateway.coreconfig import PRICE_FIELDS
from gateway.patternprices import priced_per_id


def resolver(config: GatewayConfig) -> Resolver:
    """A resolver over the loaded config's providers (as the loader's own resolved them)."""
    return Resolver({name: ProviderFacts(p.provider_name, p.base_url)
                     for name, p in config.providers.items()})


def sheets(config: GatewayConfig) -> list[PriceSheet]:
    chosen = resolver(config)
    return [chosen.sheet(model) for model in config.models.values()]


def _price(cell: Cell | None) -> str:
    return "-" if cell is None else f"{cell.usd_per_mtok.normalize():f}"


def render(config: GatewayConfig) -> str:
    """The whole report."""
    out = [f"prices in US dollars per million tokens; catalog: {catalog_version()} "
           "(bundled, offline)", ""]
    found = sheets(config)
    per_id = {model.name for model in config.models.values() if priced_per_id(model)}
    for sheet in found:
        if sheet.model in per_id:
            out += [f"{sheet.model}  (a pattern with no price: each id it serves is priced "
                    "from its own catalog entry, unpriced when the catalog does not know it)", ""]
            continue
        out += _model_table(sheet)
        out.append("")
    unpriced = [sheet for sheet in found if not sheet.priced and sheet.model not in per_id]
    if unpriced:
        out.append("models with no price (served, counted in gateway_unpriced_calls_total; "
                   "budgets charge them at spend.unpriced_price_per_mtok "
                   f"{_fallback(config)}):")
        out += [f"  {sheet.model}: no {' or '.join(sheet.missing)} price" for sheet in unpriced]
    else:
        out.append("every model is priced")
    return "\n".join(out)


def _fallback(config: GatewayConfig) -> str:
    price = config.spend.unpriced_price_per_mtok
    return f"(input {price.input}, output {price.output})"


def _model_table(sheet: PriceSheet) -> list[str]:
    where = f"catalog entry {sheet.catalog_entry}" if sheet.catalog_entry else "not in the catalog"
    title = f"{sheet.model}  ({where})"
    if not sheet.priced:
        return [title + f"  UNPRICED: no {' or '.join(sheet.missing)} price"]
    columns = [(_tier_name(0, sheet), sheet.base)]
    columns += [(_tier_name(above, sheet), column) for above, column in sheet.tiers]
    header = ["token type"]
    for name, _ in columns:
        header += [name, "source"]
    lines: list[Sequence[str]] = [header]
    for token_type in PRICE_FIELDS:
        row = [token_type]
        for _, column in columns:
            cell = column.get(token_type)
            row += [_price(cell), cell.source if cell is not None else ""]
        lines.append(row)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    table = ["  " + "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
             .rstrip() for line in lines]
    return [title, *table]


def _tier_name(above: int, sheet: PriceSheet) -> str:
    if not sheet.tiers:
        return "price"
    if above == 0:
        return f"prompt <= {sheet.tiers[0][0]:,}"
    return f"prompt > {above:,}"


def warnings(config: GatewayConfig) -> list[str]:
    """`check-config`'s warning about models with no price, when there are any."""
    unpriced = [model for model in config.models.values()
                if not model.pricing.priced and not priced_per_id(model)]
    if not unpriced:
        return []
    action = ("refused (403)" if config.spend.unpriced == "refuse" else
              "served, and budgets charge them at spend.unpriced_price_per_mtok "
              f"{_fallback(config)}")
    names = ", ".join(model.name for model in unpriced)
    return [f"warning: no price for {names} (not in the price catalog, no price_per_mtok in "
            f"the config): their calls are {action}; set price_per_mtok to price them "
            "(`llm-gateway prices` shows every model's)"]

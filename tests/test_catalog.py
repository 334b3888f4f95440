"""The price catalog as the default: looked up offline by provider and model id, tiers,
the config overriding it field by field, and what `prices` and `check-config` say."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from importlib import metadata

import pytest

from gateway import pricetable
from gateway.catalog import catalog_lookup, catalog_version, standard_prices
from gateway.config import default_text, load

PROVIDERS = """
providers:
  oai: {kind: openai, base_url: "https://api.openai.com/v1", provider_name: openai}
  gem: {kind: openai, base_url: "https://generativelanguage.googleapis.com/v1beta/openai",
        provider_name: gcp.gemini}
  claude: {kind: anthropic}
"""
PICO = 1_000_000  # pico-dollars per token in $1 per million tokens


def _models(models: str) -> dict[str, object]:
    return dict(load(PROVIDERS + "models:\n" + models, {}).models)


@pytest.mark.integration  # a process of its own, whose sockets are all refused
def test_catalog_works_with_no_network() -> None:
    """A fresh process with every socket connection refused still resolves catalog prices:
    the data is bundled and the gateway never asks for an update."""
    script = (
        "import socket\n"
        "def refuse(*args, **kwargs):\n"
        "    raise OSError('no network in this test')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "from gateway.config import load\n"
        "text = 'providers: {oai: {kind: openai, base_url: \"https://api.openai.com/v1\"}}\\n'"
        " + 'models: {gpt-4.1: {provider: oai}}\\n'\n"
        "print(load(text, {}).models['gpt-4.1'].pricing.base.input)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.strip() == str(2 * PICO)


def test_embedded_default_names_the_installed_catalog_version() -> None:
    """The embedded default says which catalog prices it, and that is the one installed."""
    named = re.search(r"catalog: genai-prices (\S+)\)", default_text())
    assert named is not None and named.group(1) == metadata.version("genai-prices")
    assert catalog_version() == f"genai-prices {named.group(1)}"


def test_embedded_default_models_have_todays_list_prices() -> None:
    """GPT-4.1 at $2 input (not $2.50), Gemini 2.5 Flash at $0.30: the catalog's prices."""
    models = load(default_text(), {}).models
    assert models["gpt-4.1"].pricing.base.input == 2 * PICO
    assert models["gpt-4.1"].pricing.base.cached_input == PICO // 2
    assert models["gemini-2.5-flash"].pricing.base.input == 3 * PICO // 10
    assert all(model.pricing.priced for model in models.values())


def test_sonnet_45_and_gemini_25_pro_have_a_tier_above_200k_prompt_tokens() -> None:
    """Both models' every price doubles (output 1.5x) above 200,000 prompt tokens."""
    models = _models("  sonnet: {provider: claude, upstream_model: claude-sonnet-4-5}\n"
                     "  pro: {provider: gem, upstream_model: gemini-2.5-pro}\n")
    sonnet = models["sonnet"].pricing  # type: ignore[attr-defined]
    assert sonnet.rates(200_000) is sonnet.base and sonnet.tiers[0][0] == 200_000
    high = sonnet.rates(200_001)
    assert (high.input, high.cached_input, high.cache_write, high.cache_write_1h, high.output) == (
        6 * PICO, 6 * PICO // 10, 75 * PICO // 10, 12 * PICO, 225 * PICO // 10)
    pro = models["pro"].pricing  # type: ignore[attr-defined]
    assert (pro.base.input, pro.rates(200_001).input, pro.rates(200_001).output) == (
        125 * PICO // 100, 25 * PICO // 10, 15 * PICO)


def test_config_prices_override_the_catalog_field_by_field() -> None:
    """A price set in the config wins at every tier; the others stay the catalog's."""
    models = _models("  sonnet: {provider: claude, upstream_model: claude-sonnet-4-5,\n"
                     "           price_per_mtok: {output: 10}}\n")
    pricing = models["sonnet"].pricing  # type: ignore[attr-defined]
    assert (pricing.base.input, pricing.base.output) == (3 * PICO, 10 * PICO)
    assert (pricing.rates(300_000).input, pricing.rates(300_000).output) == (6 * PICO, 10 * PICO)


def test_catalog_false_uses_the_config_alone() -> None:
    """`catalog: false` ignores the catalog: a model with only an input price is unpriced."""
    models = _models("  own: {provider: oai, upstream_model: gpt-4.1,\n"
                     "        price_per_mtok: {input: 1, output: 2, catalog: false}}\n"
                     "  half: {provider: oai, upstream_model: gpt-4.1,\n"
                     "         price_per_mtok: {input: 1, catalog: false}}\n")
    own = models["own"].pricing  # type: ignore[attr-defined]
    assert (own.base.input, own.base.cached_input) == (PICO, PICO)
    assert not models["half"].pricing.priced  # type: ignore[attr-defined]


def test_deepseek_time_of_day_price_is_its_peak_whenever_resolved() -> None:
    """DeepSeek's off-peak discount is a time-of-day price: the resolved price is the peak,
    at any hour the gateway starts."""
    found = catalog_lookup("deepseek-chat", None)
    assert found is not None
    from genai_prices import data_snapshot

    _, info = data_snapshot.get_snapshot().find_provider_model("deepseek-chat", None,
                                                               "deepseek", None)
    for hour in (3, 20):
        prices = standard_prices(info, datetime(2026, 12, 6, hour, tzinfo=UTC))
        assert prices.input_mtok == Decimal("0.27")


def test_unknown_model_is_unpriced_and_listed_by_prices_and_check_config() -> None:
    """A model in neither the catalog nor the config is unpriced: `prices` lists it under
    the models with no price, `check-config` warns about it."""
    config = load(PROVIDERS + "models:\n  mystery: {provider: oai, upstream_model: mystery-x}\n"
                  "  gpt-4.1: {provider: oai}\n", {})
    assert not config.models["mystery"].pricing.priced
    report = pricetable.render(config)
    assert "mystery  (not in the catalog)  UNPRICED: no input or output price" in report
    assert "models with no price" in report and "  mystery: no input or output price" in report
    assert "gpt-4.1  (catalog entry openai/gpt-4.1)" in report
    (warning,) = pricetable.warnings(config)
    assert warning.startswith("warning: no price for mystery") and "(input 15, output 75)" in warning


def test_a_priceless_pattern_is_priced_per_id_not_listed_as_unpriced() -> None:
    """`prices` says a pattern entry with no price is priced per id from the catalog, and
    neither it nor `check-config` counts it among the models with no price."""
    config = load(PROVIDERS + 'models:\n  "claude-*": {provider: claude}\n', {})
    report = pricetable.render(config)
    assert "claude-*  (a pattern with no price: each id it serves is priced" in report
    assert "every model is priced" in report and pricetable.warnings(config) == []


def test_prices_table_names_each_numbers_source() -> None:
    """Each price comes with its source: the catalog's version, the config, or what it is
    billed as; a tiered model has a column per tier."""
    config = load(PROVIDERS + "models:\n  sonnet: {provider: claude, upstream_model: "
                  "claude-sonnet-4-5, price_per_mtok: {output: 10}}\n", {})
    report = pricetable.render(config)
    assert "prompt <= 200,000" in report and "prompt > 200,000" in report
    lines = {line.split()[0]: line.split() for line in report.splitlines()
             if line.startswith("  ") and line.split()}
    assert lines["input"] == ["input", "3", "genai-prices", "0.2.3", "6", "genai-prices", "0.2.3"]
    assert lines["output"] == ["output", "10", "config", "10", "config"]
    assert lines["reasoning"] == ["reasoning", "10", "as", "output", "10", "as", "output"]

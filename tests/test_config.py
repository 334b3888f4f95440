"""Config loading: interpolation, defaults and mistakes reported by key path."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.config import ConfigError, ServerConfig, default_text, load, load_from

ROOT = Path(__file__).parents[1]

BASE = """
providers:
  relay: {kind: openai, base_url: "https://relay.example/v1", api_key: "${RELAY_API_KEY}",
          provider_name: openai, timeout_s: 30}
  sim: {kind: mock}
models:
  gpt-4.1: {provider: relay, upstream_model: gpt-4.1,
            price_per_mtok: {input: 2.5, output: 8, cached_input: 0.625}}
"""


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(text, env or {})
    return info.value.problems


def test_loads_issue_example() -> None:
    """The documented example loads with its key from the environment."""
    config = load(BASE, {"RELAY_API_KEY": "sk-relay"})
    relay = config.providers["relay"]
    assert relay.api_key is not None and relay.api_key.value == "sk-relay"
    assert relay.timeout_s == 30
    assert config.models["gpt-4.1"].price.cached_input == Decimal("0.625")


def test_bad_price_names_the_key_path() -> None:
    """A negative price is reported as models.<name>.price_per_mtok.output."""
    text = BASE.replace("output: 8", "output: -1")
    assert "models.gpt-4.1.price_per_mtok.output: must be a number >= 0" in problems(text)


def test_literal_secret_is_refused() -> None:
    """An API key written into the file is an error: secrets come from the environment."""
    text = BASE.replace('"${RELAY_API_KEY}"', '"sk-literal"')
    assert any(p.startswith("providers.relay.api_key: must come from the environment")
               for p in problems(text))


def test_unknown_provider_and_key_reported_together() -> None:
    """All mistakes are listed at once, each with its path."""
    text = BASE.replace("provider: relay", "provider: nope").replace("kind: mock", "kind: bogus")
    found = problems(text)
    assert any(p.startswith("models.gpt-4.1.provider: names no provider") for p in found)
    assert any(p.startswith("providers.sim.kind: must be one of") for p in found)


def test_unset_key_marks_provider_unusable() -> None:
    """A key variable that is not set leaves the provider unusable, naming the variable."""
    relay = load(BASE, {}).providers["relay"]
    assert not relay.usable and relay.api_key_missing == "RELAY_API_KEY"


def test_secret_repr_hides_value() -> None:
    """Printing a config never prints a key."""
    config = load(BASE, {"RELAY_API_KEY": "sk-relay-very-secret"})
    assert "sk-relay-very-secret" not in repr(config)


def test_embedded_default_uses_simulator_without_keys() -> None:
    """With no keys set the four default models are served by the simulator."""
    config = load(default_text(), {})
    for name in ("gpt-4.1", "claude-sonnet-4.5", "gemini-2.5-flash", "deepseek-v3.2"):
        assert config.provider_for(config.models[name]).kind == "mock"
    assert config.models["claude-sonnet-4.5"].pricing.base.output == 15_000_000  # pico-$/token


def test_embedded_default_uses_real_provider_when_key_set() -> None:
    """Setting a provider's key variable routes its model to the real provider."""
    config = load(default_text(), {"DEEPSEEK_API_KEY": "sk-ds"})
    assert config.provider_for(config.models["deepseek-v3.2"]).name == "deepseek"
    assert config.provider_for(config.models["gpt-4.1"]).kind == "mock"


def test_embedded_default_claude_is_native_anthropic_with_a_key() -> None:
    """With ANTHROPIC_API_KEY set the default claude-sonnet-4.5 goes to kind anthropic
    (Anthropic's own API), without it to the simulator."""
    config = load(default_text(), {"ANTHROPIC_API_KEY": "sk-ant-x"})
    provider = config.provider_for(config.models["claude-sonnet-4.5"])
    assert (provider.kind, provider.base_url) == ("anthropic", "https://api.anthropic.com")
    assert load(default_text(), {}).provider_for(
        config.models["claude-sonnet-4.5"]).kind == "mock"


def test_invalid_yaml_is_a_config_error() -> None:
    """Broken YAML is reported, not raised as a traceback."""
    assert problems("models: [unclosed")[0].startswith("<string>: not valid YAML")


def test_yaml_errors_name_the_file(tmp_path: Path) -> None:
    """A YAML mistake in a file names that file and line, not `<unicode string>`."""
    path = tmp_path / "gateway.yaml"
    path.write_text("models:\n  a: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_from(str(path), {})
    message = info.value.problems[0]
    assert "<unicode string>" not in message
    assert message.startswith(f"{path}: not valid YAML") and f'"{path}", line' in message


def test_yaml_on_is_a_key_not_a_boolean() -> None:
    """`on:` (retry.on) stays a string key: only true/false are booleans, as in YAML 1.2."""
    text = BASE + "resilience:\n  retry:\n    on: [status_5xx]\n"
    config = load(text, {"RELAY_API_KEY": "k"})
    assert config.resilience.defaults.retry.on == frozenset({"status_5xx"})


def test_absurd_price_is_refused() -> None:
    """A price above $1 a token ($1,000,000 per million) is a mistake, reported by key path."""
    text = BASE.replace("output: 8", "output: 1e999999")
    assert ("models.gpt-4.1.price_per_mtok.output: must be at most 1000000 (US dollars per "
            "million tokens)") in problems(text)


ANTHROPIC = """
providers:
  claude: {kind: openai, base_url: "https://api.anthropic.com/v1", provider_name: anthropic}
  oai: {kind: openai, base_url: "https://api.openai.com/v1"}
models:
  sonnet: {provider: claude, price_per_mtok: {input: 3, output: 15}}
  pinned: {provider: claude, price_per_mtok: {input: 3, output: 15, cached_input: 0.5,
                                              cache_write: 4, cache_write_1h: 7}}
  gpt: {provider: oai, price_per_mtok: {input: 2, output: 8}}
"""


def test_anthropic_models_default_to_anthropic_cache_multipliers() -> None:
    """A model of an anthropic provider the catalog does not know prices cache reads 0.1x,
    5-minute writes 1.25x, 1-hour 2x of input; set prices win; others bill them as input."""
    models = load(ANTHROPIC, {}).models
    rates = models["sonnet"].pricing.base  # pico-dollars per token: $/Mtok x 10^6
    assert (rates.cached_input, rates.cache_write, rates.cache_write_1h) == (
        300_000, 3_750_000, 6_000_000)
    pinned = models["pinned"].pricing.base
    assert (pinned.cached_input, pinned.cache_write, pinned.cache_write_1h) == (
        500_000, 4_000_000, 7_000_000)
    gpt = models["gpt"].pricing.base
    assert (gpt.cached_input, gpt.cache_write, gpt.cache_write_1h) == (
        2_000_000, 2_000_000, 2_000_000)


def test_bad_cache_write_price_names_the_key_path() -> None:
    """A negative cache-write price is reported by its key path."""
    text = ANTHROPIC.replace("cache_write: 4", "cache_write: -4")
    assert "models.pinned.price_per_mtok.cache_write: must be a number >= 0" in problems(text)


ROUTES = """
providers:
  claude: {kind: anthropic}
models:
  claude-sonnet-4.5:
    provider: claude
    upstream_model: claude-sonnet-4-5
    aliases: [claude-sonnet-4-5-20250929]
    price_per_mtok: {input: 3, output: 15}
  "claude-haiku-*": {provider: claude, price_per_mtok: {input: 1, output: 5}}
  "claude-*": {provider: claude, price_per_mtok: {input: 3, output: 15}}
"""


def test_aliases_and_patterns_find_their_model() -> None:
    """A model is found by name, by alias, else by the first pattern that matches; a pattern
    sends the id upstream as requested and never renames the answer."""
    config = load(ROUTES, {})
    assert config.lookup("claude-sonnet-4.5") is config.models["claude-sonnet-4.5"]
    alias = config.lookup("claude-sonnet-4-5-20250929")
    assert alias is config.models["claude-sonnet-4.5"] and alias.upstream_id("x") == "claude-sonnet-4-5"
    haiku = config.lookup("claude-haiku-4-5-20251001")
    assert haiku is not None and haiku.name == "claude-haiku-*" and haiku.price.input == 1
    assert haiku.upstream_id("claude-haiku-4-5-20251001") == "claude-haiku-4-5-20251001"
    assert not haiku.renames and alias.renames
    opus = config.lookup("claude-opus-4-1[1m]")
    assert opus is not None and opus.name == "claude-*"
    assert config.lookup("gpt-4.1") is None


def test_alias_and_pattern_mistakes_are_reported() -> None:
    """An alias that is a model's name, a repeated alias and a pattern's upstream_model fail."""
    text = ROUTES.replace("aliases: [claude-sonnet-4-5-20250929]",
                          "aliases: [claude-sonnet-4.5, dup, dup]")
    found = problems(text)
    assert "models.claude-sonnet-4.5.aliases: 'claude-sonnet-4.5' is already a model's name" in found
    assert "models.claude-sonnet-4.5.aliases: 'dup' is already an alias of claude-sonnet-4.5" in found
    text = ROUTES.replace('"claude-*": {provider: claude,',
                          '"claude-*": {provider: claude, upstream_model: x,')
    assert any(p.startswith("models.claude-*.upstream_model: a pattern entry") for p in problems(text))


def test_relative_ledger_path_is_the_config_files(tmp_path: Path) -> None:
    """A relative storage.sqlite_path is taken relative to the config file's directory."""
    path = tmp_path / "gateway.yaml"
    path.write_text(BASE + "storage: {sqlite_path: data/l.sqlite3}\n")
    config = load_from(str(path), {"RELAY_API_KEY": "k"})
    assert config.storage.sqlite_path == str(tmp_path / "data" / "l.sqlite3")


def test_embedded_default_ledger_is_in_the_data_home(tmp_path: Path) -> None:
    """Without a config file the ledger is $XDG_DATA_HOME/llm-gateway/gateway.sqlite3;
    GATEWAY_SQLITE_PATH, when absolute, is used as is."""
    config = load_from(None, {"XDG_DATA_HOME": str(tmp_path)})
    assert config.storage.sqlite_path == str(tmp_path / "llm-gateway" / "gateway.sqlite3")
    config = load_from(None, {"HOME": str(tmp_path)})
    assert config.storage.sqlite_path.startswith(str(tmp_path / ".local" / "share"))
    config = load_from(None, {"GATEWAY_SQLITE_PATH": "/srv/l.sqlite3"})
    assert config.storage.sqlite_path == "/srv/l.sqlite3"


def test_env_example_base_urls_reach_the_paths_the_default_expects() -> None:
    """Every *_BASE_URL in .env.example, set as shown, gives the provider the URL the
    embedded default uses without it (the OpenAI-compatible path included)."""
    example = (ROOT / ".env.example").read_text()
    urls = dict(re.findall(r"^# ([A-Z]+_BASE_URL)=(\S+)$", example, re.MULTILINE))
    assert set(urls) == {"OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "DEEPSEEK_BASE_URL"}
    default = load(default_text(), {})
    for variable, url in urls.items():
        configured = load(default_text(), {variable: url})
        name = variable.removesuffix("_BASE_URL").lower()
        assert configured.providers[name].base_url == default.providers[name].base_url


@pytest.mark.parametrize(("given", "used"), [
    ("https://api.anthropic.com", "https://api.anthropic.com/v1"),
    ("https://generativelanguage.googleapis.com/",
     "https://generativelanguage.googleapis.com/v1beta/openai"),
    ("https://api.deepseek.com", "https://api.deepseek.com/v1"),
    ("https://relay.example", "https://relay.example"),
    ("https://api.anthropic.com/custom", "https://api.anthropic.com/custom"),
])
def test_a_known_providers_bare_host_gets_its_openai_path(given: str, used: str) -> None:
    """A well-known provider's host given without a path gets its OpenAI-compatible path;
    any other URL is kept as written."""
    text = BASE.replace("https://relay.example/v1", given)
    assert load(text, {"RELAY_API_KEY": "k"}).providers["relay"].base_url == used


def test_models_know_their_operations() -> None:
    """Embedding models serve embeddings only and the rest every other operation, unless
    `operations` lists them."""
    config = load(default_text(), {})
    assert config.models["text-embedding-3-small"].operations == ("embeddings",)
    chat = config.models["gpt-4.1"]
    assert chat.serves("chat") and chat.serves("text_completion") and not chat.serves("embeddings")
    assert not config.models["text-embedding-3-small"].serves("chat")
    text = BASE + "  both: {provider: sim, operations: [chat, embeddings], " \
        "price_per_mtok: {input: 1, output: 1}}\n"
    both = load(text, {"RELAY_API_KEY": "k"}).models["both"]
    assert both.serves("chat") and both.serves("embeddings") and not both.serves("images")
    bad = BASE + "  x: {provider: sim, operations: [], price_per_mtok: {input: 1, output: 1}}\n"
    assert "models.x.operations: must list at least one operation, e.g. [chat] or [embeddings]" \
        in problems(bad, {"RELAY_API_KEY": "k"})


def test_server_limits_have_defaults_and_are_validated() -> None:
    """Timeouts, the inflated-body limit and the metrics port are read and checked."""
    text = BASE + ("server: {header_timeout_s: 5, body_timeout_s: 7, keepalive_timeout_s: 9, "
                   "max_inflated_body_bytes: 1000, metrics_port: 9464}\n")
    server = load(text, {"RELAY_API_KEY": "k"}).server
    assert (server.header_timeout_s, server.body_timeout_s, server.keepalive_timeout_s) == (5, 7, 9)
    assert server.max_inflated_body_bytes == 1000 and server.metrics_port == 9464
    assert load(BASE, {"RELAY_API_KEY": "k"}).server == ServerConfig()
    bad = BASE + "server: {header_timeout_s: 0, metrics_port: 70000}\n"
    found = problems(bad, {"RELAY_API_KEY": "k"})
    assert "server.header_timeout_s: must be a number > 0" in found
    assert "server.metrics_port: must be an integer from 0 to 65535" in found

"""The gateway's configuration: frozen dataclasses and a pure loader.

`load(text, environ)` parses YAML, interpolates `${VAR}` from `environ` (never
`os.environ` directly, so tests pass a dict) and validates everything, raising
`ConfigError` with one `key.path: message` line per mistake.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from gateway.confread import ConfigError, Problems, Section
from gateway.envsubst import Substitution, has_reference, substitute
from gateway.limits import RequestLimits, parse_limits
from gateway.resilience.config import MODEL_KEYS as RESILIENCE_MODEL_KEYS
from gateway.resilience.config import ResilienceConfig, parse_resilience
from gateway.spend.config import SpendConfig, parse_spend

PROVIDER_KINDS = ("openai", "mock")
DEFAULT_PORT = 8080
MAX_PRICE_PER_MTOK = Decimal(1_000_000)  # $1 a token


@dataclass(frozen=True)
class Secret:
    """A value from the environment that must never be printed."""

    value: str = field(repr=False)
    variable: str | None = None

    def __repr__(self) -> str:
        return f"Secret(variable={self.variable!r})"

    def __bool__(self) -> bool:
        return bool(self.value)


@dataclass(frozen=True)
class MockSettings:
    """How the built-in simulated provider behaves."""

    latency_ms: float = 250.0
    ms_per_chunk: float = 15.0
    completion_tokens: int = 64
    jitter: float = 0.2
    seed: int | None = None


@dataclass(frozen=True)
class ProviderConfig:
    name: str
    kind: str
    provider_name: str
    base_url: str = ""
    api_key: Secret | None = None
    api_key_missing: str | None = None  # the unset variable's name, if any
    timeout_s: float = 120.0
    connect_timeout_s: float = 10.0
    headers: Mapping[str, str] = field(default_factory=dict)
    mock: MockSettings = field(default_factory=MockSettings)
    proxy: str | None = None  # its own HTTP(S) proxy, over the environment's HTTPS_PROXY/HTTP_PROXY
    ca_file: str | None = None  # a PEM bundle to verify its TLS certificate with

    @property
    def usable(self) -> bool:
        """False when the provider needs a key whose variable is not set."""
        return self.api_key_missing is None


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens."""

    input: Decimal
    output: Decimal
    cached_input: Decimal


@dataclass(frozen=True)
class ModelConfig:
    name: str
    provider: str
    upstream_model: str
    price: Price
    offline_provider: str | None = None


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    max_body_bytes: int = 8 * 1024 * 1024
    metrics_path: str = "/metrics"
    shutdown_timeout_s: float = 30.0


@dataclass(frozen=True)
class StorageConfig:
    """Where durable state lives: SQLite on disk (one replica) or Redis (shared)."""

    backend: str = "sqlite"
    sqlite_path: str = "data/gateway.sqlite3"
    redis_url: str | None = None
    redis_prefix: str = "llmgw:"


@dataclass(frozen=True)
class GatewayConfig:
    server: ServerConfig
    providers: Mapping[str, ProviderConfig]
    models: Mapping[str, ModelConfig]
    storage: StorageConfig = field(default_factory=StorageConfig)
    resilience: ResilienceConfig = field(default_factory=ResilienceConfig)
    spend: SpendConfig = field(default_factory=SpendConfig)
    limits: RequestLimits = field(default_factory=RequestLimits)
    source: str = "<embedded default>"

    def provider_for(self, model: ModelConfig) -> ProviderConfig:
        """The provider that serves `model` now: its own, or its offline stand-in."""
        provider = self.providers[model.provider]
        if not provider.usable and model.offline_provider:
            return self.providers[model.offline_provider]
        return provider


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false. YAML 1.1 also reads `on`, `off`, `yes`
    and `no` as booleans, which turns a key such as `retry.on` into `True`."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _interpolate(node: Any, path: str, environ: Mapping[str, str], refs: dict[str, Substitution]) -> Any:
    if isinstance(node, str):
        if "$" not in node:
            return node
        sub = substitute(node, environ)
        if sub.referenced:
            refs[path] = sub
        return sub.value
    if isinstance(node, Mapping):
        return {
            k: _interpolate(v, f"{path}.{k}" if path else str(k), environ, refs)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_interpolate(v, f"{path}[{i}]", environ, refs) for i, v in enumerate(node)]
    return node


def _provider(name: str, sec: Section, raw: Section, refs: Mapping[str, Substitution]) -> ProviderConfig:
    sec.reject_unknown(
        {"kind", "base_url", "api_key", "provider_name", "timeout_s", "connect_timeout_s",
         "headers", "mock", "proxy", "ca_file"}
    )
    kind = sec.choice("kind", PROVIDER_KINDS, "openai")
    api_key: Secret | None = None
    missing: str | None = None
    if sec.has("api_key") and sec.data.get("api_key") is not None:
        raw_key = raw.data.get("api_key")
        key_path = sec.child_path("api_key")
        if not isinstance(raw_key, str) or not has_reference(raw_key):
            sec.fail("api_key", "must come from the environment, e.g. \"${OPENAI_API_KEY}\", "
                     "never a literal secret in the file")
        else:
            sub = refs.get(key_path)
            variable = sub.referenced[0] if sub and sub.referenced else None
            if sub and sub.missing:
                missing = sub.missing[0]
            else:
                api_key = Secret(sec.string("api_key"), variable)
    base_url = sec.string("base_url", required=kind == "openai").rstrip("/")
    if kind == "openai" and base_url and not base_url.startswith(("http://", "https://")):
        sec.fail("base_url", "must start with http:// or https://")
    proxy = sec.optional_string("proxy") or None  # "" (an unset variable with a default): none
    if proxy is not None and not proxy.startswith(("http://", "https://")):
        sec.fail("proxy", "must start with http:// or https://")
    headers: dict[str, str] = {}
    for key, value in sec.section("headers").data.items():
        headers[str(key)] = str(value)
    mock_sec = sec.section("mock")
    mock_sec.reject_unknown({"latency_ms", "ms_per_chunk", "completion_tokens", "jitter", "seed"})
    mock = MockSettings(
        latency_ms=mock_sec.number("latency_ms", MockSettings.latency_ms),
        ms_per_chunk=mock_sec.number("ms_per_chunk", MockSettings.ms_per_chunk),
        completion_tokens=mock_sec.integer("completion_tokens", MockSettings.completion_tokens, minimum=1),
        jitter=mock_sec.number("jitter", MockSettings.jitter),
        seed=mock_sec.integer("seed", 0) if mock_sec.has("seed") else None,
    )
    default_name = "simulated" if kind == "mock" else name
    return ProviderConfig(
        name=name,
        kind=kind,
        provider_name=sec.string("provider_name", default_name),
        base_url=base_url,
        api_key=api_key,
        api_key_missing=missing,
        timeout_s=sec.number("timeout_s", 120.0, exclusive=True),
        connect_timeout_s=sec.number("connect_timeout_s", 10.0, exclusive=True),
        headers=headers,
        mock=mock,
        proxy=proxy,
        ca_file=sec.optional_string("ca_file") or None,
    )


def _model(name: str, sec: Section, providers: Mapping[str, ProviderConfig]) -> ModelConfig:
    sec.reject_unknown({"provider", "upstream_model", "price_per_mtok", "offline_provider"}
                       | RESILIENCE_MODEL_KEYS)
    provider = sec.string("provider", required=True)
    if provider and provider not in providers:
        sec.fail("provider", f"names no provider (known: {', '.join(sorted(providers)) or 'none'})")
    offline = sec.optional_string("offline_provider")
    if offline is not None and offline not in providers:
        sec.fail("offline_provider", "names no provider")
    price_sec = sec.section("price_per_mtok")
    price_sec.reject_unknown({"input", "output", "cached_input"})
    input_price = price_sec.decimal("input", required=True)
    price = Price(
        input=input_price,
        output=price_sec.decimal("output", required=True),
        cached_input=price_sec.decimal("cached_input", input_price),
    )
    for key in ("input", "output", "cached_input"):
        if getattr(price, key) > MAX_PRICE_PER_MTOK:  # a typo, and Decimal's range is finite
            price_sec.fail(key, f"must be at most {MAX_PRICE_PER_MTOK} (US dollars per million tokens)")
    return ModelConfig(
        name=name,
        provider=provider,
        upstream_model=sec.string("upstream_model", name),
        price=price,
        offline_provider=offline,
    )


def _server(sec: Section) -> ServerConfig:
    sec.reject_unknown({"host", "port", "max_body_bytes", "metrics_path", "shutdown_timeout_s"})
    port = sec.integer("port", DEFAULT_PORT, minimum=0)
    if port > 65535:
        sec.fail("port", "must be an integer from 0 to 65535")
    metrics_path = sec.string("metrics_path", "/metrics")
    if metrics_path and not metrics_path.startswith("/"):
        sec.fail("metrics_path", "must start with / (or be empty to turn /metrics off)")
    return ServerConfig(
        host=sec.string("host", "127.0.0.1"),
        port=port,
        max_body_bytes=sec.integer("max_body_bytes", 8 * 1024 * 1024, minimum=1),
        metrics_path=metrics_path,
        shutdown_timeout_s=sec.number("shutdown_timeout_s", 30.0),
    )


def _storage(sec: Section) -> StorageConfig:
    sec.reject_unknown({"backend", "sqlite_path", "redis_url", "redis_prefix"})
    backend = sec.choice("backend", ("sqlite", "redis"), "sqlite")
    redis_url = sec.optional_string("redis_url") or None
    if backend == "redis" and not redis_url:
        sec.fail("redis_url", "is required when backend is redis (e.g. \"${REDIS_URL}\")")
    if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        sec.fail("redis_url", "must start with redis://, rediss:// or unix://")
    return StorageConfig(
        backend=backend,
        sqlite_path=sec.string("sqlite_path", StorageConfig.sqlite_path),
        redis_url=redis_url,
        redis_prefix=sec.string("redis_prefix", StorageConfig.redis_prefix),
    )


def load(text: str, environ: Mapping[str, str], *, source: str = "<string>") -> GatewayConfig:
    """Parse, interpolate and validate a config document."""
    try:
        raw_tree = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{source}: not valid YAML: {exc}"]) from None
    problems = Problems()
    refs: dict[str, Substitution] = {}
    tree = _interpolate(raw_tree or {}, "", environ, refs)
    root = Section(tree, "", problems)
    raw_root = Section(raw_tree or {}, "", Problems())
    root.reject_unknown({"server", "providers", "models", "storage", "resilience", "rate_limits",
                         "keys", "budgets", "spend", "limits"})
    server = _server(root.section("server"))
    storage = _storage(root.section("storage"))
    providers: dict[str, ProviderConfig] = {}
    raw_providers = raw_root.section("providers")
    for name, sec in root.section("providers").items():
        providers[name] = _provider(name, sec, raw_providers.section(name), refs)
    models: dict[str, ModelConfig] = {}
    for name, sec in root.section("models").items():
        models[name] = _model(name, sec, providers)
    if not models:
        problems.add("models", "at least one model is required")
    resilience = parse_resilience(root, models)
    spend = parse_spend(root, environ, models=models,
                        provider_names={p.provider_name for p in providers.values()})
    limits = parse_limits(root.section("limits"))
    if spend.default_max_tokens > limits.max_tokens:
        problems.add("spend.default_max_tokens",
                     f"must be at most limits.max_tokens ({limits.max_tokens})")
    problems.raise_if_any()
    return GatewayConfig(
        server=server, providers=providers, models=models, storage=storage,
        resilience=resilience, spend=spend, limits=limits, source=source,
    )


def default_text() -> str:
    return resources.files("gateway").joinpath("default_config.yaml").read_text("utf-8")


def load_from(path: str | None, environ: Mapping[str, str] | None = None) -> GatewayConfig:
    """Load `path`, else `$GATEWAY_CONFIG`, else the embedded default."""
    env = os.environ if environ is None else environ
    chosen = path or env.get("GATEWAY_CONFIG") or None
    if chosen is None:
        return load(default_text(), env, source="<embedded default>")
    try:
        text = Path(chosen).read_text("utf-8")
    except OSError as exc:
        raise ConfigError([f"{chosen}: cannot read config file: {exc.strerror}"]) from None
    return load(text, env, source=chosen)

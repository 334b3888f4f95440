"""The core sections of the config file: `server`, `storage`, `providers` and `models`.

Each section is a frozen pydantic dataclass that declares its keys once, with
their types, defaults and checks (`confread` holds the vocabulary). The same
objects are what the request path reads. This module knows no feature: a
feature (spend control, resilience) owns its own top-level keys and the keys it
adds to a model entry, and `gateway.config` puts the features together.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fnmatch import fnmatchcase
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

from pydantic import BeforeValidator, Field, ValidationInfo, WithJsonSchema, field_validator, model_validator
from pydantic.dataclasses import dataclass as section
from pydantic.json_schema import SkipJsonSchema

from gateway.attribution_config import AttributionConfig
from gateway.confread import (
    STRICT,
    Bool,
    Check,
    Choice,
    Integer,
    Number,
    RequiredStr,
    Str,
    StrList,
    fail,
    fail_keys,
    fields_at,
    money,
    nullable,
    validate,
)
from gateway.envsubst import FromEnv
from gateway.limits import RequestLimits
from gateway.pricing import UNPRICED, ModelPricing
from gateway.redact import looks_secret, secret_parts

PROVIDER_KINDS = ("openai", "anthropic", "gemini", "mock")
ANTHROPIC_BASE_URL = "https://api.anthropic.com"
GEMINI_BASE_URL = "https://generativelanguage.googleapis.com"
DEFAULT_PORT = 8080
MAX_PRICE_PER_MTOK = Decimal(1_000_000)  # $1 a token
# What one upstream may make the gateway hold (docs/security.md explains the choice): one SSE
# event (the largest real ones, a Responses API `response.completed` or an image's partial
# frame, are a few MB) and one JSON answer or error body after decompression (a batch of
# 2048 embeddings of 1536 floats is about 40 MB of JSON).
DEFAULT_MAX_EVENT_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
# Header names whose values are credentials wherever they come from.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key",
                            "x-goog-api-key", "ocp-apim-subscription-key", "cookie"})
# Anthropic bills prompt-cache reads at 0.1x the input price, five-minute writes at 1.25x
# and one-hour writes at 2x: the defaults for a model served by provider_name anthropic
# when neither the config nor the catalog prices them.
ANTHROPIC_CACHE_PRICES = (("cached_input", Decimal("0.1")), ("cache_write", Decimal("1.25")),
                          ("cache_write_1h", Decimal(2)))


@dataclass(frozen=True)
class Secret:
    """A value from the environment that must never be printed."""

    value: str = field(repr=False)
    variable: str | None = None
    missing: str | None = None  # the unset variable's name: then there is no value

    def __repr__(self) -> str:
        return f"Secret(variable={self.variable!r})"

    def __bool__(self) -> bool:
        return bool(self.value)


def _secret(value: Any) -> Secret | None:
    if value is None or isinstance(value, Secret):
        return value
    if not isinstance(value, FromEnv) or not value.referenced:
        fail("must come from the environment, e.g. \"${OPENAI_API_KEY}\", "
             "never a literal secret in the file")
    return Secret(str(value), value.referenced[0], value.missing[0] if value.missing else None)


_FROM_ENV = WithJsonSchema({"type": "string", "pattern": r"\$\{[A-Za-z_][A-Za-z0-9_]*"})
ApiKey = Annotated[Secret | None, BeforeValidator(_secret), _FROM_ENV]


def _token(value: Any) -> Secret | None:
    """A secret from the environment that only guards something: unset or empty is none."""
    if value is None or isinstance(value, Secret):
        return value
    if not isinstance(value, FromEnv) or not value.referenced:
        fail("must come from the environment, e.g. \"${GATEWAY_METRICS_TOKEN}\", "
             "never a literal secret in the file")
    return Secret(str(value), value.referenced[0]) if str(value) else None


Token = Annotated[Secret | None, BeforeValidator(_token), _FROM_ENV]
# A section's own name is its key in the file (`providers.<name>`), set by the loader.
Name = SkipJsonSchema[str]


@section(frozen=True, config=STRICT)
class MockSettings:
    """How the built-in simulated provider behaves."""

    latency_ms: Annotated[float, Number()] = 250.0
    ms_per_chunk: Annotated[float, Number()] = 15.0
    completion_tokens: Annotated[int, Integer(1)] = 64
    jitter: Annotated[float, Number()] = 0.2
    seed: Annotated[int | None, nullable(Integer())] = None


# The OpenAI-compatible path of well-known providers, for a base_url given as the bare
# host (as their own SDKs take it): without it every call would 404 at the host root.
_KNOWN_PATHS = {
    "api.openai.com": "/v1",
    "api.anthropic.com": "/v1",
    "generativelanguage.googleapis.com": "/v1beta/openai",
    "api.deepseek.com": "/v1",
}


def _with_known_path(base_url: str) -> str:
    _, sep, rest = base_url.partition("://")
    if sep and "/" not in rest and rest.lower() in _KNOWN_PATHS:
        return base_url + _KNOWN_PATHS[rest.lower()]
    return base_url


@section(frozen=True, config=STRICT)
class ProviderConfig:
    name: Name = ""
    kind: Annotated[str, Choice(*PROVIDER_KINDS)] = "openai"
    provider_name: Str = ""  # the gen_ai provider name; default: the key, or "simulated" for mock
    base_url: Str = ""
    api_key: ApiKey = None
    timeout_s: Annotated[float, Number(exclusive=True)] = 120.0
    connect_timeout_s: Annotated[float, Number(exclusive=True)] = 10.0
    headers: Mapping[str, Str] = field(default_factory=dict, repr=False)
    mock: MockSettings = field(default_factory=MockSettings)
    # Its own HTTP(S) proxy, over the environment's HTTPS_PROXY/HTTP_PROXY ("": none).
    proxy: Str | None = None
    ca_file: Str | None = None  # a PEM bundle to verify its TLS certificate with ("": none)
    # An OpenAI-compatible upstream that has the Responses API (`/responses`) gets Responses
    # clients' calls as they are; false (most relays and open-model servers): the gateway
    # translates them to chat completions.
    responses_api: Bool = True
    # What one upstream answer may make the gateway hold (docs/security.md): one SSE event,
    # and one JSON answer or error body after decompression.
    max_event_bytes: Annotated[int, Integer(1024)] = DEFAULT_MAX_EVENT_BYTES
    max_response_bytes: Annotated[int, Integer(1024)] = DEFAULT_MAX_RESPONSE_BYTES
    # Values of `headers` that are credentials (from the environment, or by name or shape);
    # set by `_header_secrets` from the file as written, never read from it.
    header_secrets: SkipJsonSchema[tuple[str, ...]] = field(default=(), repr=False)

    @model_validator(mode="before")
    @classmethod
    def _header_secrets(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        headers = data.get("headers")
        found: list[str] = []
        if isinstance(headers, Mapping):
            for name, value in headers.items():
                text = str(value)
                if (isinstance(value, FromEnv) or str(name).lower() in SECRET_HEADERS
                        or looks_secret(text)):
                    found.extend(secret_parts(text))
        return {**data, "header_secrets": tuple(found)}

    @model_validator(mode="before")
    @classmethod
    def _default_name(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and not data.get("provider_name"):
            data = {**data, "provider_name": _default_provider_name(data, data.get("name", ""))}
        native = {"anthropic": ANTHROPIC_BASE_URL, "gemini": GEMINI_BASE_URL}
        if isinstance(data, Mapping) and data.get("kind") in native and not data.get("base_url"):
            data = {**data, "base_url": native[str(data.get("kind"))]}
        return data

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str, info: ValidationInfo) -> str:
        """No trailing slash; an OpenAI-compatible provider given a known bare host gets that
        host's OpenAI-compatible path (a native kind, e.g. anthropic, adds its own paths)."""
        value = value.rstrip("/")
        return _with_known_path(value) if info.data.get("kind", "openai") == "openai" else value

    @field_validator("proxy")
    @classmethod
    def _proxy_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            fail("must start with http:// or https://")
        return value or None  # "" (an unset variable with a default): none

    @field_validator("ca_file")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None

    @model_validator(mode="after")
    def _needs_url(self) -> ProviderConfig:
        if self.kind == "openai" and not self.base_url:
            fail_keys([("base_url", "is required")])
        if self.kind != "mock" and not self.base_url.startswith(("http://", "https://")):
            fail_keys([("base_url", "must start with http:// or https://")])
        return self

    @property
    def api_key_missing(self) -> str | None:
        """The unset variable the key should come from, if any."""
        return self.api_key.missing if self.api_key is not None else None

    @property
    def usable(self) -> bool:
        """False when the provider needs a key whose variable is not set."""
        return self.api_key_missing is None

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every credential this provider sends upstream (for the scrubber)."""
        key = (self.api_key.value,) if self.api_key else ()
        password = urlsplit(self.proxy).password if self.proxy else None
        proxy = (password, unquote(password)) if password else ()
        return key + self.header_secrets + proxy


_PRICE = Annotated[Decimal | None, nullable(Check(money))]


@section(frozen=True, config=STRICT)
class Price:
    """US dollars per million tokens, as the config sets them: each key overrides the
    price catalog's for that token type (at every tier), and an unset one keeps it
    (`gateway.catalog` resolves the effective prices)."""

    input: _PRICE = None
    output: _PRICE = None
    cached_input: _PRICE = None
    cache_write: _PRICE = None  # a five-minute cache entry (the default lifetime)
    cache_write_1h: _PRICE = None
    reasoning: _PRICE = None
    input_audio: _PRICE = None
    output_audio: _PRICE = None
    input_image: _PRICE = None
    output_image: _PRICE = None
    # False: use no catalog price for this model, only the ones set here.
    catalog: bool = True

    @field_validator("input", "output", "cached_input", "cache_write", "cache_write_1h",
                     "reasoning", "input_audio", "output_audio", "input_image", "output_image")
    @classmethod
    def _at_most(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and value > MAX_PRICE_PER_MTOK:  # a typo, and Decimal's range is finite
            fail(f"must be at most {MAX_PRICE_PER_MTOK} (US dollars per million tokens)")
        return value

    def set_fields(self) -> dict[str, Decimal]:
        """The prices this entry sets, by token type."""
        return {name: value for name in PRICE_FIELDS
                if (value := getattr(self, name)) is not None}


PRICE_FIELDS = ("input", "cached_input", "cache_write", "cache_write_1h", "output", "reasoning",
                "input_audio", "output_audio", "input_image", "output_image")


EMBEDDINGS = "embeddings"


def default_operations(name: str, upstream_model: str) -> tuple[str, ...]:
    """Embedding models are named so by every provider (`text-embedding-3-small`,
    `gemini-embedding-001`, `embed-english-v3.0`): they serve embeddings only; any
    other model every other operation (chat, and whatever other dialects serve)."""
    named = f"{name} {upstream_model}".lower()
    return (EMBEDDINGS,) if "embed" in named else ()


@section(frozen=True, config=STRICT)
class ModelConfig:
    provider: RequiredStr
    price: Annotated[Price, Field(alias="price_per_mtok")] = field(default_factory=Price)
    name: Name = ""
    # The effective prices, resolved from the catalog and `price` once at load (set by
    # `_resolve_pricing` when the loader passes a resolver, never read from the file).
    pricing: SkipJsonSchema[ModelPricing] = field(default=UNPRICED, repr=False, compare=False)
    upstream_model: Str = ""  # default: the model's name
    offline_provider: Str | None = None
    aliases: StrList = ()  # other ids clients may ask for (Claude Code's dated ones)
    # The gen_ai operations it serves; empty: every operation but embeddings.
    operations: StrList = ()

    def serves(self, operation: str) -> bool:
        if self.operations:
            return operation in self.operations
        return operation != EMBEDDINGS

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any, info: ValidationInfo) -> Any:
        """A missing price sets none; `upstream_model` defaults to the name; `operations`
        to what the names say (`default_operations`)."""
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        if data.get("price_per_mtok") is None:  # none in the config: the catalog's
            data.pop("price_per_mtok", None)
        if is_pattern(str(data.get("name", ""))):
            if data.get("upstream_model"):
                fail_keys([("upstream_model", "a pattern entry sends each id upstream as "
                            "requested; upstream_model has no place here")])
        elif not data.get("upstream_model"):
            data["upstream_model"] = data.get("name", "")
        if data.get("operations") is None:
            data.pop("operations", None)
            default = default_operations(str(data.get("name", "")),
                                         str(data.get("upstream_model") or ""))
            if default:
                data["operations"] = list(default)
        return data

    @model_validator(mode="after")
    def _resolve_pricing(self, info: ValidationInfo) -> ModelConfig:
        """Its effective prices, once: from the loader's resolver (catalog and config), else
        from its config entry alone (a model built in code)."""
        from gateway.catalog import config_pricing  # it imports this module

        resolver = (info.context or {}).get("price_resolver")
        if resolver is not None:
            pricing = resolver(self)
        elif self.pricing is not UNPRICED:
            return self  # revalidated as part of the whole config: resolved already
        else:
            pricing = config_pricing(self.price)
        # Part of building the object (the field is derived, like a cached property).
        object.__setattr__(self, "pricing", pricing)
        return self

    @field_validator("operations")
    @classmethod
    def _some_operation(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            fail("must list at least one operation, e.g. [chat] or [embeddings]")
        return value

    @property
    def passthrough(self) -> bool:
        """A pattern entry (`claude-*`): serves every id it matches, sent upstream as asked."""
        return not self.upstream_model

    def upstream_id(self, requested: str) -> str:
        """The id sent upstream for a client that asked for `requested`."""
        return self.upstream_model or requested

    @property
    def renames(self) -> bool:
        """Whether answers carry the gateway's model name in place of the upstream's."""
        return bool(self.upstream_model) and self.upstream_model != self.name

    @field_validator("provider")
    @classmethod
    def _provider_known(cls, value: str, info: ValidationInfo) -> str:
        providers = (info.context or {}).get("providers")
        if value and providers is not None and value not in providers:
            fail(f"names no provider (known: {', '.join(sorted(providers)) or 'none'})")
        return value

    @field_validator("offline_provider")
    @classmethod
    def _offline_known(cls, value: str | None, info: ValidationInfo) -> str | None:
        providers = (info.context or {}).get("providers")
        if value is not None and providers is not None and value not in providers:
            fail("names no provider")
        return value


@section(frozen=True, config=STRICT)
class ServerConfig:
    host: Str = "127.0.0.1"
    port: Annotated[int, Integer(0)] = DEFAULT_PORT
    max_body_bytes: Annotated[int, Integer(1)] = 8 * 1024 * 1024  # as received (compressed, if it is)
    # A compressed body once inflated.
    max_inflated_body_bytes: Annotated[int, Integer(1)] = 8 * 1024 * 1024
    metrics_path: Str = "/metrics"  # empty turns /metrics off
    # /metrics on a listener of its own (and not on `port`); empty: none.
    metrics_port: Annotated[int | None, nullable(Integer(0))] = None
    metrics_host: Str | None = None  # that listener's address (default: `host`)
    metrics_token: Token = None  # when set, /metrics needs `Authorization: Bearer <it>`
    shutdown_timeout_s: Annotated[float, Number()] = 30.0
    # Slow clients (nginx's defaults): the whole request head, each pause while a body
    # arrives, and an idle keep-alive connection.
    header_timeout_s: Annotated[float, Number(exclusive=True)] = 60.0
    body_timeout_s: Annotated[float, Number(exclusive=True)] = 60.0
    keepalive_timeout_s: Annotated[float, Number(exclusive=True)] = 75.0

    @field_validator("metrics_port", mode="before")
    @classmethod
    def _empty_port(cls, value: Any) -> Any:
        return None if value == "" else value  # an unset variable with an empty default

    @field_validator("port", "metrics_port")
    @classmethod
    def _port_range(cls, value: int | None) -> int | None:
        if value is not None and value > 65535:
            fail("must be an integer from 0 to 65535")
        return value

    @field_validator("metrics_host")
    @classmethod
    def _empty_host(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("metrics_path")
    @classmethod
    def _metrics_path(cls, value: str) -> str:
        if value and not value.startswith("/"):
            fail("must start with / (or be empty to turn /metrics off)")
        return value


@section(frozen=True, config=STRICT)
class StorageConfig:
    """Where durable state lives: SQLite on disk (one replica) or Redis (shared)."""

    backend: Annotated[str, Choice("sqlite", "redis")] = "sqlite"
    sqlite_path: Str = "data/gateway.sqlite3"
    redis_url: Str | None = None
    redis_prefix: Str = "llmgw:"

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            fail("must start with redis://, rediss:// or unix://")
        return value or None

    @model_validator(mode="after")
    def _redis_needs_url(self) -> StorageConfig:
        if self.backend == "redis" and not self.redis_url:
            fail_keys([("redis_url", "is required when backend is redis (e.g. \"${REDIS_URL}\")")])
        return self


@section(frozen=True, config=STRICT)
class CoreConfig:
    """The core sections; `gateway.config.GatewayConfig` adds each feature's."""

    server: ServerConfig = field(default_factory=ServerConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    providers: Mapping[str, ProviderConfig] = field(default_factory=dict)
    models: Mapping[str, ModelConfig] = field(default_factory=dict)
    limits: RequestLimits = field(default_factory=RequestLimits)
    attribution: AttributionConfig = field(default_factory=AttributionConfig)

    # Derived from `models`: alias -> model name, and the pattern entries in file order.
    aliases: SkipJsonSchema[Mapping[str, str]] = field(default_factory=dict)
    patterns: SkipJsonSchema[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _lookup_tables(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or not isinstance(data.get("models"), Mapping):
            return data
        models: Mapping[str, Any] = data["models"]
        aliases: dict[str, str] = {}
        problems: list[tuple[str, str]] = []
        for name, entry in models.items():
            listed = entry.get("aliases") if isinstance(entry, Mapping) else None
            for alias in listed if isinstance(listed, list) else ():
                if alias in models:
                    problems.append((name, f"'{alias}' is already a model's name"))
                elif alias in aliases:
                    problems.append((name, f"'{alias}' is already an alias of {aliases[alias]}"))
                else:
                    aliases[str(alias)] = name
        if problems:
            fail_keys([(f"models.{name}.aliases", message) for name, message in problems])
        return {**data, "aliases": aliases,
                "patterns": tuple(name for name in models if is_pattern(name))}

    def lookup(self, requested: str) -> ModelConfig | None:
        """The model serving `requested`: by name, by alias, else the first pattern that
        matches it (`claude-*`)."""
        model = self.models.get(requested)
        if model is not None:
            return model
        alias = self.aliases.get(requested)
        if alias is not None:
            return self.models[alias]
        for pattern in self.patterns:
            if fnmatchcase(requested, pattern):
                return self.models[pattern]
        return None

    def provider_for(self, model: ModelConfig) -> ProviderConfig:
        """The provider that serves `model` now: its own, or its offline stand-in."""
        provider = self.providers[model.provider]
        if not provider.usable and model.offline_provider:
            return self.providers[model.offline_provider]
        return provider


CORE_KEYS = tuple(fields_at(CoreConfig, ()))


def is_pattern(name: str) -> bool:
    """A model key with `*`, `?` or `[` serves every id it matches."""
    return any(c in name for c in "*?[")


def _default_provider_name(entry: Mapping[str, Any], key: str) -> str:
    return {"mock": "simulated", "anthropic": "anthropic", "gemini": "gcp.gemini"}.get(
        str(entry.get("kind")), key)


def named_entries(tree: Mapping[str, Any], key: str, problems: list[str], allowed: str) -> Any:
    """`tree[key]` with each entry told its own name (the key it sits under)."""
    entries = tree.get(key)
    if not isinstance(entries, Mapping):
        return entries
    named: dict[str, Any] = {}
    for name, entry in entries.items():
        if isinstance(entry, Mapping) and "name" in entry:
            problems.append(f"{key}.{name}.name: unknown key (expected one of: {allowed})")
        named[str(name)] = {**entry, "name": str(name)} if isinstance(entry, Mapping) else entry
    return named


def provider_names(tree: Mapping[str, Any]) -> set[str]:
    """The gen_ai provider names the file configures (for the features' checks)."""
    names: set[str] = set()
    providers = tree.get("providers")
    for key, entry in (providers.items() if isinstance(providers, Mapping) else ()):
        entry = entry if isinstance(entry, Mapping) else {}
        names.add(str(entry.get("provider_name") or _default_provider_name(entry, str(key))))
    return names


@dataclass(frozen=True)
class FileFacts:
    """What a feature may know about the rest of the file (read even when the core has mistakes)."""

    environ: Mapping[str, str]
    models: Mapping[str, Any]  # each model's entry as written (interpolated)
    providers: frozenset[str]  # the keys under `providers`
    provider_names: frozenset[str]  # their gen_ai provider names
    limits: RequestLimits  # `limits:` as configured, or the defaults where it has mistakes

    @classmethod
    def of(cls, tree: Mapping[str, Any], environ: Mapping[str, str]) -> FileFacts:
        models = tree.get("models")
        providers = tree.get("providers")
        return cls(environ=environ,
                   models={str(k): v for k, v in models.items()} if isinstance(models, Mapping) else {},
                   providers=frozenset(map(str, providers)) if isinstance(providers, Mapping)
                   else frozenset(),
                   provider_names=frozenset(provider_names(tree)),
                   limits=validate(RequestLimits, tree.get("limits"), "limits", [],
                                   known_keys=lambda loc: ()) or RequestLimits())


@dataclass(frozen=True)
class ConfigFeature:
    """A feature's part of the config file, registered by the feature (`gateway.config` lists them).

    `file` is a pydantic dataclass whose fields are the top-level keys the feature
    owns, `model_keys` one whose fields it adds to a `models.<name>` entry; both
    feed the JSON Schema and the unknown-key messages. `load` reads the feature's
    config from the whole (interpolated) file, appending each mistake to `problems`.
    """

    attribute: str  # the feature's config is `GatewayConfig.<attribute>`
    file: type
    model_keys: type | None
    load: Callable[[Mapping[str, Any], FileFacts, list[str]], Any]

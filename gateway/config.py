"""The gateway's configuration: the core sections and each feature's, read from one file.

`load(text, environ)` parses YAML, interpolates `${VAR}` from `environ` (never
`os.environ` directly, so tests pass a dict) and validates everything, raising
`ConfigError` with one `key.path: message` line per mistake. The core sections
live in `coreconfig` and know no feature; each feature (`resilience`, `spend`)
declares its own sections and registers them in `FEATURES` here, which is also
where `GatewayConfig` gets an attribute for it. `schema()` is the JSON Schema of
the whole file, for editors (`llm-gateway config-schema`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter
from pydantic.dataclasses import dataclass as section

from gateway.catalog import resolver_for
from gateway.confread import STRICT, ConfigError, EnvJsonSchema, fields_at, validate
from gateway.coreconfig import (
    CORE_KEYS,
    DEFAULT_PORT,
    MAX_PRICE_PER_MTOK,
    PROVIDER_KINDS,
    ConfigFeature,
    CoreConfig,
    FileFacts,
    MockSettings,
    ModelConfig,
    Price,
    ProviderConfig,
    Secret,
    ServerConfig,
    StorageConfig,
    named_entries,
)
from gateway.envsubst import FromEnv, substitute
from gateway.resilience import config as resilience_config
from gateway.resilience.config import ResilienceConfig
from gateway.spend import config as spend_config
from gateway.spend.config import SpendConfig
from gateway.telemetry import config as telemetry_config
from gateway.telemetry.config import TelemetryConfig

__all__ = [
    "DEFAULT_PORT", "MAX_PRICE_PER_MTOK", "PROVIDER_KINDS", "ConfigError", "GatewayConfig",
    "MockSettings", "ModelConfig", "Price", "ProviderConfig", "Secret", "ServerConfig",
    "StorageConfig", "default_text", "load", "load_from", "schema",
]

# Each feature's sections, in the order their mistakes are listed.
FEATURES: tuple[ConfigFeature, ...] = (resilience_config.FEATURE, spend_config.FEATURE,
                                       telemetry_config.FEATURE)


@section(frozen=True, config=STRICT)
class GatewayConfig(CoreConfig):
    resilience: ResilienceConfig = field(default_factory=ResilienceConfig)
    spend: SpendConfig = field(default_factory=SpendConfig)
    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig)
    source: str = "<embedded default>"


class YamlLoader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false. YAML 1.1 also reads `on`, `off`, `yes`
    and `no` as booleans, which turns a key such as `retry.on` into `True`."""


YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _interpolate(node: Any, environ: Mapping[str, str]) -> Any:
    """Every string with `${VAR}` in it gets its value; it stays a `FromEnv` (see secrets)."""
    if isinstance(node, str):
        if "$" not in node:
            return node
        sub = substitute(node, environ)
        return FromEnv.of(sub) if sub.referenced else sub.value
    if isinstance(node, Mapping):
        return {k: _interpolate(v, environ) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, environ) for v in node]
    return node


def _model_keys() -> set[str]:
    return {key for feature in FEATURES if feature.model_keys is not None
            for key in fields_at(feature.model_keys, ())}


def _known_keys(loc: tuple[str | int, ...]) -> list[str]:
    keys = fields_at(CoreConfig, loc)
    return keys + sorted(_model_keys()) if len(loc) == 2 and loc[0] == "models" else keys


def _core(tree: Mapping[str, Any], facts: FileFacts, problems: list[str]) -> CoreConfig | None:
    feature_keys = _model_keys()
    allowed = ", ".join(sorted(set(fields_at(ModelConfig, ())) | feature_keys))
    models = named_entries(tree, "models", problems, allowed)
    if isinstance(models, Mapping):
        models = {name: {k: v for k, v in entry.items() if k not in feature_keys}
                  if isinstance(entry, Mapping) else entry for name, entry in models.items()}
    providers = tree.get("providers")
    providers = providers if isinstance(providers, Mapping) else {}
    data = {**{k: tree[k] for k in CORE_KEYS if k in tree and tree[k] is not None},
            "providers": named_entries(tree, "providers", problems,
                                       ", ".join(sorted(fields_at(ProviderConfig, ())))) or {},
            "models": models or {}}
    core = validate(CoreConfig, data, "", problems, known_keys=_known_keys,
                    context={"providers": facts.providers,
                             "price_resolver": resolver_for(providers)})
    if models is None or (isinstance(models, Mapping) and not models):
        problems.append("models: at least one model is required")
    return core


def load(text: str, environ: Mapping[str, str], *, source: str = "<string>",
         base_dir: Path | None = None) -> GatewayConfig:
    """Parse, interpolate and validate a config document. Relative paths in it are
    taken relative to `base_dir` when given (the config file's directory)."""
    try:
        raw_tree = yaml.load(text, Loader=YamlLoader)
    except yaml.YAMLError as exc:
        where = str(exc).replace('"<unicode string>"', f'"{source}"')
        raise ConfigError([f"{source}: not valid YAML: {where}"]) from None
    tree = _interpolate(raw_tree if raw_tree is not None else {}, environ)
    if not isinstance(tree, Mapping):
        raise ConfigError(["<root>: must be a mapping", "models: at least one model is required"])
    problems: list[str] = []
    known = set(CORE_KEYS) | {key for f in FEATURES for key in fields_at(f.file, ())}
    problems += [f"{key}: unknown key (expected one of: {', '.join(sorted(known))})"
                 for key in tree if key not in known]
    facts = FileFacts.of(tree, environ)
    core = _core(tree, facts, problems)
    parts = {feature.attribute: feature.load(tree, facts, problems) for feature in FEATURES}
    if problems or core is None:
        raise ConfigError(problems)
    storage = replace(core.storage, sqlite_path=_anchored(core.storage.sqlite_path, base_dir))
    return GatewayConfig(**{f.name: getattr(core, f.name) for f in fields(CoreConfig)
                            if f.name != "storage"}, storage=storage, **parts, source=source)


def _anchored(path: str, base_dir: Path | None) -> str:
    """A relative ledger path means relative to the config file, not to wherever the
    command runs, so `keys create` from any directory writes the ledger the gateway reads."""
    if base_dir is None or not path or Path(path).is_absolute():
        return path
    return str(base_dir / path)


def data_home(environ: Mapping[str, str]) -> Path:
    """Where the embedded default keeps its ledger: $XDG_DATA_HOME/llm-gateway."""
    root = environ.get("XDG_DATA_HOME") or str(Path(environ.get("HOME") or Path.home(),
                                                    ".local", "share"))
    return Path(root, "llm-gateway")


def schema() -> dict[str, Any]:
    """The JSON Schema of the config file as written (a number may also be a `${VAR}` string)."""
    document: dict[str, Any] = TypeAdapter(CoreConfig).json_schema(schema_generator=EnvJsonSchema)
    definitions = document.setdefault("$defs", {})
    model_entry = definitions["ModelConfig"]
    for feature in FEATURES:
        part = TypeAdapter(feature.file).json_schema(schema_generator=EnvJsonSchema)
        definitions.update(part.pop("$defs", {}))
        document["properties"].update(part["properties"])
        if feature.model_keys is not None:
            keys = TypeAdapter(feature.model_keys).json_schema(schema_generator=EnvJsonSchema)
            definitions.update(keys.pop("$defs", {}))
            model_entry["properties"].update(keys["properties"])
    document["title"] = "llm-gateway configuration"
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return document


def schema_text() -> str:
    """`schema()` as the committed `config.schema.json` holds it."""
    return json.dumps(schema(), indent=2) + "\n"


def default_text() -> str:
    return resources.files("gateway").joinpath("default_config.yaml").read_text("utf-8")


def load_from(path: str | None, environ: Mapping[str, str] | None = None) -> GatewayConfig:
    """Load `path`, else `$GATEWAY_CONFIG`, else the embedded default."""
    env = os.environ if environ is None else environ
    chosen = path or env.get("GATEWAY_CONFIG") or None
    if chosen is None:
        return load(default_text(), env, source="<embedded default>", base_dir=data_home(env))
    try:
        text = Path(chosen).read_text("utf-8")
    except OSError as exc:
        raise ConfigError([f"{chosen}: cannot read config file: {exc.strerror}"]) from None
    return load(text, env, source=chosen, base_dir=Path(chosen).resolve().parent)

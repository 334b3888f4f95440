"""The gateway config the benchmark serves: every model on the fake upstream, each dialect on
a provider of its native kind, plus optional extras.

Extra YAML (keys, budgets, ...) is deep-merged over the base, so a variant
can switch features on without repeating the providers and models. Each
variant gets its own SQLite ledger, so no two gateways share a database file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bench import dialects

PRICES = {"input": 2.5, "output": 8, "cached_input": 0.625}
EMBED_PRICES = {"input": 0.02, "output": 0}
CLOCK_MODELS = "bench-clock-*"  # bench/wire.py: streams of <events>x<ms>, any count


def provider_kinds() -> tuple[str, ...]:
    """The provider kinds this tree's gateway accepts (a kind still on a branch is absent)."""
    try:
        from gateway.config import PROVIDER_KINDS
    except ImportError:
        return ("openai", "anthropic", "mock")
    return tuple(PROVIDER_KINDS)


def base(upstream_url: str, models: list[str], kinds: tuple[str, ...] | None = None) -> dict[str, Any]:
    """`models` on an OpenAI provider at `upstream_url`/v1, plus one model per other native
    kind the gateway knows (the Anthropic and Gemini rows of bench/dialects.py), each a
    provider of that kind on the same upstream."""
    kinds = provider_kinds() if kinds is None else kinds
    key = "${BENCH_UPSTREAM_KEY:-sk-bench}"
    providers: dict[str, Any] = {
        "up": {"kind": "openai", "base_url": upstream_url + "/v1", "api_key": key,
               "provider_name": "openai", "timeout_s": 30},
    }
    config_models: dict[str, Any] = {
        name: {"provider": "up", "upstream_model": name, "price_per_mtok": dict(PRICES)}
        for name in models
    }
    config_models[dialects.EMBED_MODEL] = {"provider": "up", "price_per_mtok": dict(EMBED_PRICES)}
    config_models[CLOCK_MODELS] = {"provider": "up", "price_per_mtok": dict(PRICES)}
    native = {"anthropic": ("anth", dialects.CLAUDE_MODEL), "gemini": ("gem", dialects.GEMINI_MODEL)}
    for kind, (name, model) in native.items():
        if kind in kinds:
            providers[name] = {"kind": kind, "base_url": upstream_url, "api_key": key, "timeout_s": 30}
            config_models[model] = {"provider": name, "upstream_model": model,
                                    "price_per_mtok": dict(PRICES)}
    return {"providers": providers, "models": config_models}


def merge(into: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Deep merge: mappings merge key by key, anything else in `extra` replaces."""
    out = dict(into)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def render(
    upstream_url: str, models: list[str], *extras: Path | None, ledger: Path | None = None,
    kinds: tuple[str, ...] | None = None,
) -> str:
    """The base config for the upstream at `upstream_url` (its root), with `ledger` as its
    SQLite file, then each extra file merged in order."""
    config = base(upstream_url, models, kinds)
    if ledger is not None:
        config["storage"] = {"backend": "sqlite", "sqlite_path": str(ledger)}
    for extra in extras:
        if extra is None:
            continue
        loaded = yaml.safe_load(extra.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{extra}: top level must be a mapping")
        config = merge(config, loaded)
    return yaml.safe_dump(config, sort_keys=False)

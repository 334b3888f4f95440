"""The gateway config the benchmark serves: every model on the fake upstream, plus optional extras.

Extra YAML (keys, budgets, ...) is deep-merged over the base, so a variant
can switch features on without repeating the providers and models. Each
variant gets its own SQLite ledger, so no two gateways share a database file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

PRICES = {"input": 2.5, "output": 8, "cached_input": 0.625}


def base(upstream_base_url: str, models: list[str]) -> dict[str, Any]:
    return {
        "providers": {
            "up": {
                "kind": "openai",
                "base_url": upstream_base_url,
                "api_key": "${BENCH_UPSTREAM_KEY:-sk-bench}",
                "provider_name": "openai",
                "timeout_s": 30,
            }
        },
        "models": {
            name: {"provider": "up", "upstream_model": name, "price_per_mtok": dict(PRICES)}
            for name in models
        },
    }


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
    upstream_base_url: str, models: list[str], *extras: Path | None, ledger: Path | None = None
) -> str:
    """The base config, with `ledger` as its SQLite file, then each extra file merged in order."""
    config = base(upstream_base_url, models)
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

"""The effective configuration as the admin API shows it: every secret masked.

Secrets are values of type `Secret` (provider API keys), fields whose names say
they hold one (`secret`, `api_key`, `key_sha256`, `password`, `token`,
`headers` values), webhook URLs (their path is the credential: only the host is
shown) and any URL's user name, password and query string.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from gateway.config import GatewayConfig, Secret

MASK = "***"
_SECRET_FIELDS = ("secret", "api_key", "key_sha256", "password", "token")
_HOST_ONLY = ("url",)  # webhooks
_URLS = ("base_url", "redis_url", "proxy")


def masked(config: GatewayConfig) -> dict[str, Any]:
    value = _walk(config, "")
    assert isinstance(value, dict)
    return value


def _walk(value: Any, name: str) -> Any:
    if isinstance(value, Secret):
        return MASK if value else None
    if value is None or isinstance(value, bool | int | float):
        return value
    if name in _SECRET_FIELDS:
        return MASK
    if isinstance(value, str):
        if name in _HOST_ONLY:
            return host_only(value)
        if name in _URLS:
            return without_credentials(value)
        return value
    if isinstance(value, Decimal):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _walk(getattr(value, f.name), f.name) for f in dataclasses.fields(value)
                if f.name != "path"}
    if isinstance(value, Mapping):
        if name == "headers":
            return {str(k): MASK for k in value}
        return {str(k): _walk(v, str(k) if name not in ("providers", "models") else "")
                for k, v in value.items()}
    if isinstance(value, frozenset | set):
        return sorted(_walk(v, "") for v in value)
    if isinstance(value, list | tuple):
        return [_walk(v, "") for v in value]
    return str(value)


def host_only(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}/{MASK}" if parts.hostname else MASK


def without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if not parts.hostname:
        return url
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    user = f"{MASK}@" if parts.username or parts.password else ""
    return urlunsplit((parts.scheme, user + host, parts.path, MASK if parts.query else "", ""))

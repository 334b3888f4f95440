"""Which HTTP client carries each provider's calls.

The gateway's own client (`gateway.fastpaths.HttpClient`) speaks HTTP/1.1,
with TLS verified against the system's CAs, straight to the upstream. A
provider that needs more goes over aiohttp's `ClientSession` instead, with
the proxy and SSL context it needs:

- a proxy: its own `proxy` setting, else `HTTPS_PROXY` / `HTTP_PROXY` (by the
  base URL's scheme; lower-case names win) unless `NO_PROXY` exempts its host,
  the rules of aiohttp's `trust_env` and of the official SDKs;
- its own CA bundle (`ca_file`).

`GATEWAY_HTTP_CLIENT=aiohttp`, or the fast paths switched off, puts every
provider on aiohttp (with the same proxy and CA rules). The choice is made
once at start and logged once per provider.
"""

from __future__ import annotations

import logging
import ssl
from base64 import b64encode
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from gateway.config import ProviderConfig
from gateway.confread import ConfigError

_log = logging.getLogger(__name__)
_PROXY_SCHEMES = ("http://", "https://")


@dataclass(frozen=True, slots=True)
class Route:
    """How one provider's calls leave the gateway."""

    aiohttp: bool  # over aiohttp's ClientSession, else the gateway's own client
    proxy: str | None = None
    proxy_source: str | None = None  # "proxy" (the provider's setting) or the variable's name
    ssl_context: ssl.SSLContext | None = None  # from `ca_file`

    @property
    def proxy_url(self) -> str | None:
        """The proxy without its credentials (they go in `proxy_headers`)."""
        return None if self.proxy is None else redact(self.proxy)

    @property
    def proxy_headers(self) -> dict[str, str] | None:
        """Proxy-Authorization for a proxy URL with user:password (aiohttp ignores them in
        the URL)."""
        if self.proxy is None:
            return None
        parts = urlsplit(self.proxy)
        if parts.username is None:
            return None
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        return {"Proxy-Authorization": "Basic " + b64encode(credentials.encode()).decode()}

    def describe(self) -> str:
        client = "aiohttp's ClientSession" if self.aiohttp else "the gateway's own HTTP client"
        details = []
        if self.proxy is not None:
            details.append(f"proxy {redact(self.proxy)} from {self.proxy_source}")
        if self.ssl_context is not None:
            details.append("its own CA bundle (ca_file)")
        return client + (f" ({', '.join(details)})" if details else "")


def redact(url: str) -> str:
    """A proxy URL without its user and password (they are secrets)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def env_proxies(environ: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Scheme -> (proxy URL, variable) from `*_proxy` variables; the lower-case spelling
    wins over the upper-case one, and an empty value means none (as urllib reads them)."""
    found: dict[str, tuple[str, str]] = {}
    for lower_case in (False, True):
        for name, value in environ.items():
            if name.lower().endswith("_proxy") and (name == name.lower()) == lower_case:
                found[name.lower().removesuffix("_proxy")] = (value, name)
    return {scheme: entry for scheme, entry in found.items() if entry[0]}


def exempt(host: str, port: int | None, no_proxy: str) -> bool:
    """Whether NO_PROXY exempts `host`: `*`, or an entry that is the host or a domain it is
    in (a leading dot optional), with the port too when the entry names one."""
    host = host.lower()
    for entry in no_proxy.lower().replace(" ", "").split(","):
        if entry == "*":
            return True
        name, _, entry_port = entry.partition(":")
        if entry.startswith("["):  # [IPv6]:port
            name, _, entry_port = entry[1:].partition("]")
            entry_port = entry_port.removeprefix(":")
        name = name.lstrip(".")
        if not name or (entry_port and entry_port != str(port)):
            continue
        if host == name or host.endswith("." + name):
            return True
    return False


def env_proxy_for(url: str, environ: Mapping[str, str]) -> tuple[str, str] | None:
    """The (proxy URL, variable) the environment routes `url` through, or None."""
    proxies = env_proxies(environ)
    parts = urlsplit(url)
    entry = proxies.get(parts.scheme)
    if entry is None:
        return None
    if "no" in proxies and exempt(parts.hostname or "", parts.port, proxies["no"][0]):
        return None
    if not entry[0].startswith(_PROXY_SCHEMES):
        _log.warning("%s is not an http:// or https:// proxy; calling %s without it",
                     entry[1], redact(url))
        return None
    return entry


def _ssl_context(provider: ProviderConfig) -> ssl.SSLContext | None:
    if provider.ca_file is None:
        return None
    try:
        return ssl.create_default_context(cafile=provider.ca_file)
    except (OSError, ssl.SSLError) as error:
        raise ConfigError([f"providers.{provider.name}.ca_file: cannot load "
                           f"{provider.ca_file!r}: {error}"]) from None


def route(provider: ProviderConfig, environ: Mapping[str, str], *, own_client: bool) -> Route:
    """The client, proxy and SSL context for `provider`'s calls (`own_client`: whether the
    gateway's own client may be used at all)."""
    proxy, source = provider.proxy, "proxy"
    if proxy is None:
        found = env_proxy_for(provider.base_url, environ)
        proxy, source = found if found is not None else (None, "")
    context = _ssl_context(provider)
    aiohttp = not own_client or proxy is not None or context is not None
    return Route(aiohttp, proxy, source if proxy is not None else None, context)


def routes(providers: Mapping[str, ProviderConfig], environ: Mapping[str, str], *,
           own_client: bool) -> dict[str, Route]:
    """A route per provider that calls over HTTP (not the simulator), each logged once."""
    found = {}
    for name, provider in providers.items():
        if provider.kind == "mock":
            continue
        found[name] = route(provider, environ, own_client=own_client)
        _log.info("provider %r calls %s over %s", name, redact(provider.base_url),
                  found[name].describe())
    return found

"""Virtual keys: generating them, and authenticating requests against them.

A request's `Authorization: Bearer <key>` is hashed and looked up in an
in-memory map (hash -> principal): no store query per request. Keys created or
revoked with the CLI reach the map by a periodic refresh, and an unknown key
triggers a reload, at most one per second: a miss less than a second after the
last load waits for the next one instead of being refused, so a brand-new key
works on its first use, while a flood of bad keys costs one store read per
second, not one per request.
With no key anywhere (config or store, revoked ones included) the gateway is
open: everyone is the anonymous principal, and the start-up log says so loudly.
While open, requests reload the keys at most once a second (without waiting),
so the first key created closes the gateway within a second; revoking the last
key does not reopen it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from gateway import errors
from gateway.call import ANONYMOUS, Principal
from gateway.spend.budgets import Budget, to_nanos
from gateway.spend.config import DEFAULT_THRESHOLDS, KeyConfig
from gateway.spend.windows import Clock, zone

_log = logging.getLogger(__name__)
KEY_PREFIX = "sk-gw-"
MISS_REFRESH_INTERVAL_S = 1.0
# `hashlib.sha256()` looks the digest up in OpenSSL on every call (a fetch and a context set
# up: a few microseconds a request in the running gateway); a copy of this empty one does not.
_EMPTY_SHA256 = hashlib.sha256()


def new_key() -> str:
    """A fresh virtual key: 256 random bits, recognisable by its prefix."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_id(digest: str) -> str:
    """A short, non-reversible id of a key for the ledger (a prefix of its hash)."""
    return digest[:12]


@dataclass(frozen=True)
class KeyRecord:
    """A key as the gateway knows it: never the key itself, only its hash."""

    alias: str
    team: str
    key_sha256: str
    source: str = "store"  # config | store
    created_at: float | None = None
    revoked_at: float | None = None
    allowed_models: frozenset[str] | None = None
    budget_usd_per_day: Decimal | None = None
    budget_usd_per_month: Decimal | None = None
    expires_at: float | None = None  # Unix seconds; the key is refused from then on

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def principal(self) -> Principal:
        return Principal(alias=self.alias, team=self.team, key_id=key_id(self.key_sha256),
                         allowed_models=self.allowed_models)

    def budgets(self, timezone: str) -> list[Budget]:
        """The per-key budgets a stored key carries (config keys' are in `budgets:`)."""
        found = []
        for window, limit in (("day", self.budget_usd_per_day), ("month", self.budget_usd_per_month)):
            if limit is not None:
                found.append(Budget(name=f"key:{self.alias}:{window}", scope="key",
                                    target=self.alias, window=window, limit_nanos=to_nanos(limit),
                                    action="block", tz=zone(timezone),
                                    thresholds=DEFAULT_THRESHOLDS))
        return found


def config_records(keys: Iterable[KeyConfig]) -> list[KeyRecord]:
    """Config keys whose hash is known (a `key_env` variable that is unset gives none)."""
    return [KeyRecord(alias=k.alias, team=k.team, key_sha256=k.key_sha256, source="config",
                      allowed_models=k.allowed_models)
            for k in keys if k.key_sha256 is not None]


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The key a client presents: `Authorization: Bearer <key>` (the OpenAI SDK, and the
    Anthropic SDK with an auth token), else `x-api-key` (the Anthropic SDK, Claude Code),
    else `x-goog-api-key` (the google-genai SDK; its `?key=` the edge moved there)."""
    value = headers.get("Authorization") or headers.get("authorization")
    if not value:
        key = (headers.get("x-api-key") or headers.get("X-Api-Key")
               or headers.get("x-goog-api-key"))
        return key.strip() or None if key else None
    scheme, _, token = value.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


Loader = Callable[[], Awaitable[list[KeyRecord]]]


class KeyAuthenticator:
    """The `Authenticator` for virtual keys (see gateway/hooks.py)."""

    def __init__(self, config_keys: Iterable[KeyRecord], load: Loader, clock: Clock,
                 on_change: Callable[[list[KeyRecord]], Awaitable[None]] | None = None,
                 configured: int = 0,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._sleep = sleep  # waits on `clock`'s time scale
        self._config = list(config_keys)
        self._load = load
        self._clock = clock
        self._on_change = on_change
        self._configured = configured  # config keys, including ones whose variable is unset
        self._by_hash: dict[str, Principal] = {}
        self._expiry: dict[str, float] = {}  # hash -> expiry, for the keys that have one
        self._records: list[KeyRecord] = []
        self._last_refresh = float("-inf")
        self._refreshing: asyncio.Task[None] | None = None
        self._loads = 0
        self.open = True
        self._publish(self._config)

    @property
    def records(self) -> list[KeyRecord]:
        return list(self._records)

    def _publish(self, records: list[KeyRecord]) -> None:
        active = [r for r in records if r.active]
        self._by_hash = {r.key_sha256: r.principal() for r in active}
        self._expiry = {r.key_sha256: r.expires_at for r in active if r.expires_at is not None}
        self._records = records
        # Open only while no key was ever made: revoking the last key must not open the gateway.
        was_open, self.open = self.open, not records and self._configured == 0
        if was_open and not self.open and self._loads > 1:
            _log.warning("a virtual key now exists: the gateway requires keys from now on")

    async def refresh(self) -> None:
        """Reload stored keys (single flight: concurrent callers share one load)."""
        task = self._refreshing
        if task is None or task.done():
            task = self._refreshing = asyncio.ensure_future(self._do_refresh())
        await asyncio.shield(task)

    async def _do_refresh(self) -> None:
        self._last_refresh = self._clock.now()
        stored = await self._load()
        self._loads += 1
        config_hashes = {r.key_sha256 for r in self._config}
        records = [*self._config, *(r for r in stored if r.key_sha256 not in config_hashes)]
        if self._on_change is not None:
            await self._on_change(records)
        self._publish(records)

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        token = bearer_token(headers)
        if self.open:
            # A key created while the gateway runs open closes it within a second (not only
            # at the next periodic refresh); at most one reload a second, never waited for.
            if not await self._reload_if_due() or self.open:
                return ANONYMOUS
        if token is None:
            raise errors.AuthenticationFailed(
                "You didn't provide an API key. Send your gateway key in the Authorization "
                "header as 'Bearer <key>' (the OpenAI SDK's api_key), in x-api-key (the "
                "Anthropic SDK's) or in x-goog-api-key (the google-genai SDK's).")
        # hash_key's SHA-256, here in the compiled module (one interpreted call less a request)
        hasher = _EMPTY_SHA256.copy()
        hasher.update(token.encode("utf-8"))
        digest = hasher.hexdigest()
        principal = self._by_hash.get(digest)
        if principal is None:
            await self._reload_on_miss()
            principal = self._by_hash.get(digest)
        if principal is not None:
            expiry = self._expiry.get(digest) if self._expiry else None
            if expiry is not None and self._clock.now() >= expiry:
                raise errors.AuthenticationFailed("Incorrect API key provided: this key has expired.")
            return principal
        raise errors.AuthenticationFailed(
            "Incorrect API key provided: the gateway does not know this key, or it was revoked.")

    async def _reload_if_due(self) -> bool:
        """Reload the stored keys unless that was done less than a second ago."""
        if self._clock.now() - self._last_refresh < MISS_REFRESH_INTERVAL_S:
            return False
        await self._reload()
        return True

    async def _reload_on_miss(self) -> None:
        """Load the keys once more to look for one created since the last load: a miss less
        than a second after it waits for the next load (shared by every miss meanwhile)."""
        asked = self._clock.now()
        wait = self._last_refresh + MISS_REFRESH_INTERVAL_S - asked
        if wait > 0:
            await self._sleep(wait)
        running = self._refreshing is not None and not self._refreshing.done()
        if self._last_refresh < asked or running:
            await self._reload()

    async def _reload(self) -> None:
        try:
            await self.refresh()
        except Exception:
            _log.exception("could not reload virtual keys")

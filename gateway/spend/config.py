"""The `keys:`, `budgets:` and `spend:` sections of the config file.

Parsed with `confread.Section` like the rest of the config, so every mistake is
reported with its key path (`budgets[1].timezone: unknown time zone`). Pure: the
environment comes in as a mapping, and a key read from it is kept only as its
SHA-256 hash.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.confread import Section

SCOPES = ("global", "model", "provider", "key", "team")
WINDOWS = ("day", "month")
BUDGET_ACTIONS = ("block", "alert")
WEBHOOK_FORMATS = ("slack", "dingtalk", "feishu", "json")
RUNAWAY_ACTIONS = ("alert", "throttle", "block")
DEFAULT_THRESHOLDS = (50.0, 80.0, 100.0)
# The field that names a budget's target, per scope (global has none).
TARGET_FIELD = {"model": "model", "provider": "provider", "key": "key", "team": "team"}

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:/-]{0,63}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def hash_key(key: str) -> str:
    """The only form in which a virtual key is ever kept: its SHA-256, hex."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def valid_name(name: str) -> bool:
    """Aliases and team names become metric labels: short, printable, no spaces."""
    return bool(_NAME.match(name))


@dataclass(frozen=True)
class KeyConfig:
    """A virtual key defined in the config file (by hash, or by an env variable)."""

    alias: str
    team: str
    key_sha256: str | None  # None when `key_env` names an unset variable
    key_env: str | None = None
    allowed_models: frozenset[str] | None = None
    budget_usd_per_day: Decimal | None = None
    budget_usd_per_month: Decimal | None = None


@dataclass(frozen=True)
class BudgetConfig:
    """A spending limit on one scope over a calendar window."""

    name: str
    scope: str
    target: str | None  # model / gen_ai provider name / key alias / team; None for global
    window: str
    limit_usd: Decimal
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS  # percent of the limit
    action: str = "block"
    timezone: str = "UTC"
    path: str = ""  # where it was defined, for messages (`budgets[0]`, `keys[2]`)


@dataclass(frozen=True)
class WebhookConfig:
    """Where threshold and runaway notifications go, and in which format."""

    url: str = field(repr=False)  # webhook URLs are secrets (Slack, DingTalk tokens)
    format: str = "json"
    secret: str | None = field(default=None, repr=False)  # DingTalk / Feishu signing
    timeout_s: float = 5.0

    @property
    def display(self) -> str:
        """Scheme and host only: the rest of a webhook URL is a credential."""
        scheme, _, rest = self.url.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0]}/..."


@dataclass(frozen=True)
class RunawayConfig:
    """The per-key runaway guard: rate spikes against a key's own baseline, and loops."""

    enabled: bool = True
    action: str = "alert"
    spike_factor: float = 5.0  # current minute > factor x the key's usual requests/minute
    min_requests_per_minute: int = 60  # ... and above this floor
    warmup_minutes: int = 10  # minutes of history before a baseline is trusted
    baseline_minutes: float = 30.0  # time constant of the baseline's moving average
    loop_threshold: int = 20  # identical request bodies from one key ...
    loop_window_s: float = 60.0  # ... within this many seconds
    block_s: float = 900.0  # how long `block` refuses the key
    notify_cooldown_s: float = 600.0  # at most one webhook per key and kind this often


@dataclass(frozen=True)
class SpendConfig:
    keys: tuple[KeyConfig, ...] = ()
    budgets: tuple[BudgetConfig, ...] = ()
    timezone: str = "UTC"
    default_max_tokens: int = 4096  # output reserved when a request sets no max_tokens
    key_refresh_s: float = 10.0  # how often keys created or revoked by the CLI are picked up
    reservation_ttl_s: float = 3600.0  # a reservation older than this belongs to a dead gateway
    webhooks: tuple[WebhookConfig, ...] = ()
    notify_max_attempts: int = 5
    notify_backoff_s: float = 1.0
    runaway: RunawayConfig = field(default_factory=RunawayConfig)

    @property
    def key_teams(self) -> frozenset[str]:
        return frozenset(k.team for k in self.keys)

    @property
    def key_aliases(self) -> frozenset[str]:
        return frozenset(k.alias for k in self.keys)


def parse_spend(root: Section, environ: Mapping[str, str], *, models: Collection[str],
                provider_names: Collection[str]) -> SpendConfig:
    """Read `keys:`, `budgets:` and `spend:`; problems go to `root.problems`."""
    settings = root.section("spend")
    settings.reject_unknown({"timezone", "default_max_tokens", "key_refresh_s", "reservation_ttl_s",
                             "webhooks", "notify", "runaway"})
    timezone = _timezone(settings, "timezone", "UTC")
    keys = _keys(root, environ, models)
    budgets = _budgets(root, timezone, models, provider_names)
    budgets += _key_budgets(keys, timezone)
    _unique_budget_names(root, budgets)
    notify = settings.section("notify")
    notify.reject_unknown({"max_attempts", "backoff_s"})
    return SpendConfig(
        keys=keys,
        budgets=budgets,
        timezone=timezone,
        default_max_tokens=settings.integer("default_max_tokens", 4096, minimum=1),
        key_refresh_s=settings.number("key_refresh_s", 10.0, minimum=0.0, exclusive=True),
        reservation_ttl_s=settings.number("reservation_ttl_s", 3600.0, minimum=0.0, exclusive=True),
        webhooks=_webhooks(settings),
        notify_max_attempts=notify.integer("max_attempts", 5, minimum=1),
        notify_backoff_s=notify.number("backoff_s", 1.0),
        runaway=_runaway(settings.section("runaway")),
    )


def _timezone(sec: Section, key: str, default: str) -> str:
    name = sec.string(key, default)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        sec.fail(key, f"unknown time zone '{name}' (use an IANA name such as Asia/Shanghai or UTC)")
        return default
    return name


def _list(root: Section, key: str) -> list[Section]:
    value = root.data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        root.fail(key, "must be a list")
        return []
    return [Section(item, f"{root.child_path(key)}[{i}]", root.problems)
            for i, item in enumerate(value)]


def _name(sec: Section, key: str, what: str) -> str:
    value = sec.string(key, required=True)
    if value and not valid_name(value):
        sec.fail(key, f"'{value}' is not a valid {what}: letters, digits and _.@:/- only, "
                      "at most 64 characters")
    return value


def _keys(root: Section, environ: Mapping[str, str], models: Collection[str]
          ) -> tuple[KeyConfig, ...]:
    keys: list[KeyConfig] = []
    seen_alias: dict[str, str] = {}
    seen_hash: dict[str, str] = {}
    for sec in _list(root, "keys"):
        sec.reject_unknown({"alias", "team", "key_sha256", "key_env", "allowed_models",
                            "budget_usd_per_day", "budget_usd_per_month"})
        alias = _name(sec, "alias", "key alias")
        team = _name(sec, "team", "team name")
        if alias in seen_alias:
            sec.fail("alias", f"duplicate alias '{alias}' (also at {seen_alias[alias]})")
        seen_alias.setdefault(alias, sec.path)
        digest, env_name = _key_hash(sec, environ)
        if digest is not None and digest in seen_hash:
            sec.fail("key_sha256" if sec.has("key_sha256") else "key_env",
                     f"the same key is already defined at {seen_hash[digest]}")
        if digest is not None:
            seen_hash.setdefault(digest, sec.path)
        allowed: frozenset[str] | None = None
        if sec.has("allowed_models"):
            names = sec.string_list("allowed_models")
            for index, model in enumerate(names):
                if model not in models:
                    sec.problems.add(f"{sec.child_path('allowed_models')}[{index}]",
                                     f"names no model (known: {', '.join(sorted(models))})")
            allowed = frozenset(names)
        keys.append(KeyConfig(
            alias=alias, team=team, key_sha256=digest, key_env=env_name, allowed_models=allowed,
            budget_usd_per_day=_optional_usd(sec, "budget_usd_per_day"),
            budget_usd_per_month=_optional_usd(sec, "budget_usd_per_month"),
        ))
    return tuple(keys)


def _key_hash(sec: Section, environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    has_hash, has_env = sec.has("key_sha256"), sec.has("key_env")
    if has_hash == has_env:
        sec.fail("key_sha256", "give exactly one of key_sha256 (the key's SHA-256, hex) or "
                               "key_env (the variable holding the key)")
        return None, None
    if has_hash:
        digest = sec.string("key_sha256").strip().lower()
        if not _HEX64.match(digest):
            sec.fail("key_sha256", "must be 64 hex characters (sha256sum of the key)")
            return None, None
        return digest, None
    variable = sec.string("key_env")
    if not _ENV_NAME.match(variable):
        sec.fail("key_env", "must be an environment variable name, e.g. WEB_APP_KEY")
        return None, None
    value = environ.get(variable)
    return (hash_key(value) if value else None), variable


def _optional_usd(sec: Section, key: str) -> Decimal | None:
    return sec.decimal(key) if sec.data.get(key) is not None else None


def _budgets(root: Section, default_tz: str, models: Collection[str],
             provider_names: Collection[str]) -> tuple[BudgetConfig, ...]:
    budgets: list[BudgetConfig] = []
    for sec in _list(root, "budgets"):
        sec.reject_unknown({"name", "scope", "window", "limit_usd", "thresholds", "action",
                            "timezone", *TARGET_FIELD.values()})
        scope = sec.string("scope", "global")
        if scope not in SCOPES:
            sec.fail("scope", f"unknown scope '{scope}' (expected one of: {', '.join(SCOPES)})")
            continue
        target = _target(sec, scope, models, provider_names)
        window = sec.choice("window", WINDOWS, "day")
        limit = sec.decimal("limit_usd", required=True)
        name = sec.string("name", _default_name(scope, target, window))
        if name and not valid_name(name):
            sec.fail("name", f"'{name}' is not a valid budget name")
        budgets.append(BudgetConfig(
            name=name, scope=scope, target=target, window=window, limit_usd=limit,
            thresholds=_thresholds(sec), action=sec.choice("action", BUDGET_ACTIONS, "block"),
            timezone=_timezone(sec, "timezone", default_tz), path=sec.path,
        ))
    return tuple(budgets)


def _target(sec: Section, scope: str, models: Collection[str],
            provider_names: Collection[str]) -> str | None:
    wanted = TARGET_FIELD.get(scope)
    for other in TARGET_FIELD.values():
        if other != wanted and sec.has(other):
            sec.fail(other, f"does not apply to a {scope} budget")
    if wanted is None:
        return None
    what = {"key": "key alias", "team": "team"}.get(scope, scope)
    value = sec.string(wanted)
    if not value:
        sec.fail(wanted, f"is required for a {scope} budget (the {what} it limits)")
        return None
    if scope == "model" and value not in models:
        sec.fail(wanted, f"names no model (known: {', '.join(sorted(models))})")
    if scope == "provider" and value not in provider_names:
        sec.fail(wanted, "names no provider (use the gen_ai provider name, one of: "
                         f"{', '.join(sorted(provider_names))})")
    return value


def _default_name(scope: str, target: str | None, window: str) -> str:
    return f"{scope}:{window}" if target is None else f"{scope}:{target}:{window}"


def _thresholds(sec: Section) -> tuple[float, ...]:
    value = sec.data.get("thresholds")
    if value is None:
        return DEFAULT_THRESHOLDS
    if not isinstance(value, list) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        sec.fail("thresholds", "must be a list of percentages, e.g. [50, 80, 100]")
        return DEFAULT_THRESHOLDS
    if any(not 0 < v <= 1000 for v in value):
        sec.fail("thresholds", "each percentage must be above 0 and at most 1000")
        return DEFAULT_THRESHOLDS
    return tuple(sorted({float(v) for v in value}))


def _key_budgets(keys: tuple[KeyConfig, ...], timezone: str) -> tuple[BudgetConfig, ...]:
    """`budget_usd_per_day` / `_month` on a key are shorthand for a blocking key budget."""
    budgets: list[BudgetConfig] = []
    for index, key in enumerate(keys):
        for window, limit in (("day", key.budget_usd_per_day), ("month", key.budget_usd_per_month)):
            if limit is not None:
                budgets.append(BudgetConfig(
                    name=_default_name("key", key.alias, window), scope="key", target=key.alias,
                    window=window, limit_usd=limit, timezone=timezone,
                    path=f"keys[{index}].budget_usd_per_{window}"))
    return tuple(budgets)


def _unique_budget_names(root: Section, budgets: tuple[BudgetConfig, ...]) -> None:
    seen: dict[str, str] = {}
    for budget in budgets:
        if budget.name in seen:
            root.problems.add(budget.path, f"duplicate budget name '{budget.name}' "
                                           f"(also at {seen[budget.name]})")
        seen.setdefault(budget.name, budget.path)


def _webhooks(settings: Section) -> tuple[WebhookConfig, ...]:
    hooks: list[WebhookConfig] = []
    for sec in _list(settings, "webhooks"):
        sec.reject_unknown({"url", "format", "secret", "timeout_s"})
        url = sec.string("url", required=True)
        fmt = sec.choice("format", WEBHOOK_FORMATS, "json")
        if not url:
            continue  # e.g. "${SLACK_WEBHOOK_URL:-}" with the variable unset: off
        if not url.startswith(("http://", "https://")):
            sec.fail("url", "must start with http:// or https://")
            continue
        hooks.append(WebhookConfig(url=url, format=fmt, secret=sec.optional_string("secret") or None,
                                   timeout_s=sec.number("timeout_s", 5.0, exclusive=True)))
    return tuple(hooks)


def _runaway(sec: Section) -> RunawayConfig:
    sec.reject_unknown({"enabled", "action", "spike_factor", "min_requests_per_minute",
                        "warmup_minutes", "baseline_minutes", "loop_threshold", "loop_window_s",
                        "block_s", "notify_cooldown_s"})
    d = RunawayConfig()
    return RunawayConfig(
        enabled=sec.boolean("enabled", d.enabled),
        action=sec.choice("action", RUNAWAY_ACTIONS, d.action),
        spike_factor=sec.number("spike_factor", d.spike_factor, minimum=1.0, exclusive=True),
        min_requests_per_minute=sec.integer("min_requests_per_minute", d.min_requests_per_minute,
                                            minimum=1),
        warmup_minutes=sec.integer("warmup_minutes", d.warmup_minutes, minimum=1),
        baseline_minutes=sec.number("baseline_minutes", d.baseline_minutes, minimum=1.0),
        loop_threshold=sec.integer("loop_threshold", d.loop_threshold, minimum=2),
        loop_window_s=sec.number("loop_window_s", d.loop_window_s, exclusive=True),
        block_s=sec.number("block_s", d.block_s, exclusive=True),
        notify_cooldown_s=sec.number("notify_cooldown_s", d.notify_cooldown_s),
    )

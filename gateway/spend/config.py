"""The `keys:`, `budgets:` and `spend:` sections of the config file.

Declared once as pydantic dataclasses (`gateway.confread` gives the field types),
so every mistake is reported with its key path (`budgets[1].timezone: unknown
time zone`). Pure: the environment comes in as a mapping, and a key read from it
is kept only as its SHA-256 hash.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import field, replace
from decimal import Decimal
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, ValidationInfo, field_validator, model_validator
from pydantic.dataclasses import dataclass as section
from pydantic.json_schema import SkipJsonSchema

from gateway.confread import (
    STRICT,
    Bool,
    Check,
    Choice,
    Integer,
    Number,
    RequiredMoney,
    RequiredStr,
    Str,
    fail,
    fail_keys,
    fields_at,
    money,
    nullable,
    string_list,
    validate,
)
from gateway.coreconfig import ConfigFeature, FileFacts

SCOPES = ("global", "model", "provider", "key", "team", "user", "tag")
WINDOWS = ("day", "month")
BUDGET_ACTIONS = ("block", "alert")
WEBHOOK_FORMATS = ("slack", "dingtalk", "feishu", "json")
RUNAWAY_ACTIONS = ("alert", "throttle", "block")
DEFAULT_THRESHOLDS = (50.0, 80.0, 100.0)
# The field that names a budget's target, per scope (global has none).
TARGET_FIELD = {"model": "model", "provider": "provider", "key": "key", "team": "team",
                "user": "user", "tag": "tag"}
_TAG_TARGET = re.compile(r"^[A-Za-z0-9_.-]{1,64}=[A-Za-z0-9 _.:/@+#~-]{1,128}$")

T = TypeVar("T")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:/-]{0,63}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def hash_key(key: str) -> str:
    """The only form in which a virtual key is ever kept: its SHA-256, hex."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def valid_name(name: str) -> bool:
    """Aliases and team names become metric labels: short, printable, no spaces."""
    return bool(_NAME.match(name))


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        fail(f"unknown time zone '{name}' (use an IANA name such as Asia/Shanghai or UTC)")
    return name


Zone = Annotated[Str, AfterValidator(_zone)]


def _named(what: str) -> AfterValidator:
    def check(value: str) -> str:
        if value and not valid_name(value):
            fail(f"'{value}' is not a valid {what}: letters, digits and _.@:/- only, at most 64 characters")
        return value

    return AfterValidator(check)


def _context(info: ValidationInfo) -> Mapping[str, Any]:
    return info.context or {}


def key_source(data: Any, info: ValidationInfo) -> Any:
    """Exactly one of key_sha256 / key_env; a key from the environment becomes its hash."""
    if not isinstance(data, Mapping):
        return data
    has_hash, has_env = "key_sha256" in data, "key_env" in data
    if has_hash == has_env:
        fail_keys([("key_sha256", "give exactly one of key_sha256 (the key's SHA-256, hex) or "
                                  "key_env (the variable holding the key)")])
    if has_env and isinstance(data["key_env"], str):
        value = _context(info).get("environ", {}).get(data["key_env"])
        return {**data, "key_sha256": hash_key(value) if value else None}
    return data


@section(frozen=True, config=STRICT)
class KeyConfig:
    """A virtual key defined in the config file (by hash, or by an env variable)."""

    alias: Annotated[RequiredStr, _named("key alias")]
    team: Annotated[RequiredStr, _named("team name")]
    key_sha256: Str | None = None  # None when `key_env` names an unset variable
    key_env: Str | None = None
    allowed_models: frozenset[str] | None = None
    budget_usd_per_day: Annotated[Decimal | None, nullable(Check(money))] = None
    budget_usd_per_month: Annotated[Decimal | None, nullable(Check(money))] = None

    @model_validator(mode="before")
    @classmethod
    def _source(cls, data: Any, info: ValidationInfo) -> Any:
        return key_source(data, info)

    @field_validator("key_sha256")
    @classmethod
    def _hex(cls, value: str | None) -> str | None:
        if value is not None and not _HEX64.match(value.strip().lower()):
            fail("must be 64 hex characters (sha256sum of the key)")
        return value.strip().lower() if value is not None else None

    @field_validator("key_env")
    @classmethod
    def _variable(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.match(value):
            fail("must be an environment variable name, e.g. WEB_APP_KEY")
        return value

    @field_validator("allowed_models", mode="before")
    @classmethod
    def _models(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        names = string_list(value)
        models = _context(info).get("models")
        if models is not None:
            fail_keys((f"[{i}]", f"names no model (known: {', '.join(sorted(models))})")
                      for i, name in enumerate(names) if name not in models)
        return frozenset(names)


def _thresholds(value: Any) -> tuple[float, ...]:
    if not isinstance(value, list | tuple) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        fail("must be a list of percentages, e.g. [50, 80, 100]")
    if any(not 0 < v <= 1000 for v in value):
        fail("each percentage must be above 0 and at most 1000")
    return tuple(sorted({float(v) for v in value}))


Thresholds = Annotated[tuple[float, ...], Check(_thresholds)]


@section(frozen=True, config=STRICT)
class BudgetConfig:
    """A spending limit on one scope over a calendar window."""

    limit_usd: RequiredMoney
    name: Str = ""  # default: scope[:target]:window
    scope: Str = "global"
    window: Annotated[str, Choice(*WINDOWS)] = "day"
    thresholds: Thresholds = DEFAULT_THRESHOLDS  # percent of the limit
    action: Annotated[str, Choice(*BUDGET_ACTIONS)] = "block"
    timezone: Zone = "UTC"  # default: spend.timezone
    # The budget's target, by scope: only the scope's own key is allowed.
    model: Str | None = None
    provider: Str | None = None  # the gen_ai provider name
    key: Str | None = None  # a key alias
    team: Str | None = None
    user: Str | None = None  # an end user id (the request's `user` or x-gateway-user)
    tag: Str | None = None  # `name=value`, a tag of the request (x-gateway-tags, metadata)
    path: SkipJsonSchema[str] = ""  # where it was defined, for messages (`budgets[0]`, `keys[2]`)

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        if data.get("timezone") is None:
            data["timezone"] = _context(info).get("timezone", "UTC")
        if data.get("name") is None:
            scope, window = str(data.get("scope") or "global"), str(data.get("window") or "day")
            target = data.get(TARGET_FIELD.get(scope, ""))
            named = isinstance(target, str | int | float) and not isinstance(target, bool)
            text = str(target).replace("=", ":") if named else None  # tag name=value
            data["name"] = _default_name(scope, text, window)
        return data

    @field_validator("scope")
    @classmethod
    def _scope(cls, value: str) -> str:
        if value not in SCOPES:
            fail(f"unknown scope '{value}' (expected one of: {', '.join(SCOPES)})")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if value and not valid_name(value):
            fail(f"'{value}' is not a valid budget name")
        return value

    @model_validator(mode="after")
    def _target_known(self, info: ValidationInfo) -> BudgetConfig:
        fail_keys(_target_problems(self, _context(info)))
        return self

    @property
    def target(self) -> str | None:
        """The model / gen_ai provider name / key alias / team it limits; None for global."""
        wanted = TARGET_FIELD.get(self.scope)
        return getattr(self, wanted) if wanted else None


def _target_problems(budget: BudgetConfig, context: Mapping[str, Any]) -> list[tuple[str, str]]:
    scope, wanted = budget.scope, TARGET_FIELD.get(budget.scope)
    found = [(other, f"does not apply to a {scope} budget") for other in TARGET_FIELD.values()
             if other != wanted and getattr(budget, other) is not None]
    value = budget.target
    if wanted is None:
        return found
    models, providers = context.get("models"), context.get("provider_names")
    if not value:
        what = {"key": "key alias", "team": "team", "user": "end user id",
                "tag": "tag, as name=value"}.get(scope, scope)
        found.append((wanted, f"is required for a {scope} budget (the {what} it limits)"))
    elif scope == "tag" and not _TAG_TARGET.match(value):
        found.append((wanted, "must be name=value (a tag name of letters, digits and _.-; "
                              "a value of letters, digits, spaces and _.:/@+#~-)"))
    elif scope == "model" and models is not None and value not in models:
        found.append((wanted, f"names no model (known: {', '.join(sorted(models))})"))
    elif scope == "provider" and providers is not None and value not in providers:
        found.append((wanted, "names no provider (use the gen_ai provider name, one of: "
                              f"{', '.join(sorted(providers))})"))
    return found


def _default_name(scope: str, target: str | None, window: str) -> str:
    return f"{scope}:{window}" if target is None else f"{scope}:{target}:{window}"


@section(frozen=True, config=STRICT)
class WebhookConfig:
    """Where threshold and runaway notifications go, and in which format."""

    url: RequiredStr = field(repr=False)  # webhook URLs are secrets (Slack, DingTalk tokens)
    format: Annotated[str, Choice(*WEBHOOK_FORMATS)] = "json"
    secret: Str | None = field(default=None, repr=False)  # DingTalk / Feishu signing
    timeout_s: Annotated[float, Number(exclusive=True)] = 5.0

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            fail("must start with http:// or https://")
        return value  # empty (e.g. "${SLACK_WEBHOOK_URL:-}" with the variable unset): off

    @field_validator("secret")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None

    @property
    def display(self) -> str:
        """Scheme and host only: the rest of a webhook URL is a credential."""
        scheme, _, rest = self.url.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0]}/..."


@section(frozen=True, config=STRICT)
class RunawayConfig:
    """The per-key runaway guard: rate spikes against a key's own baseline, and loops."""

    enabled: Bool = True
    action: Annotated[str, Choice(*RUNAWAY_ACTIONS)] = "alert"
    # Current minute > factor x the key's usual requests/minute ...
    spike_factor: Annotated[float, Number(1.0, exclusive=True)] = 5.0
    min_requests_per_minute: Annotated[int, Integer(1)] = 60  # ... and above this floor
    warmup_minutes: Annotated[int, Integer(1)] = 10  # minutes of history before a baseline is trusted
    baseline_minutes: Annotated[float, Number(1.0)] = 30.0  # time constant of the baseline's moving average
    loop_threshold: Annotated[int, Integer(2)] = 20  # identical request bodies from one key ...
    loop_window_s: Annotated[float, Number(exclusive=True)] = 60.0  # ... within this many seconds
    block_s: Annotated[float, Number(exclusive=True)] = 900.0  # how long `block` refuses the key
    notify_cooldown_s: Annotated[float, Number()] = 600.0  # at most one webhook per key and kind this often


@section(frozen=True, config=STRICT)
class NotifySettings:
    """Retries of a webhook delivery."""

    max_attempts: Annotated[int, Integer(1)] = 5
    backoff_s: Annotated[float, Number()] = 1.0


# The price budgets reserve and charge a call to a model with no price at: as dear as
# the dearest widely used models' list prices, so that a budget is not under-charged.
UNPRICED_INPUT = Decimal(15)
UNPRICED_OUTPUT = Decimal(75)


@section(frozen=True, config=STRICT)
class UnpricedPrice:
    """US dollars per million tokens, for calls to models with no price (flagged in the ledger)."""

    input: Annotated[Decimal, Check(money)] = UNPRICED_INPUT
    output: Annotated[Decimal, Check(money)] = UNPRICED_OUTPUT


@section(frozen=True, config=STRICT)
class SpendConfig:
    """The `spend:` section, with the keys and budgets the file defines."""

    timezone: Zone = "UTC"
    default_max_tokens: Annotated[int, Integer(1)] = 4096  # output reserved when a request sets no max_tokens
    # How often keys created or revoked by the CLI are picked up.
    key_refresh_s: Annotated[float, Number(exclusive=True)] = 10.0
    # A reservation older than this belongs to a dead gateway.
    reservation_ttl_s: Annotated[float, Number(exclusive=True)] = 3600.0
    webhooks: tuple[WebhookConfig, ...] = ()
    notify: NotifySettings = field(default_factory=NotifySettings)
    runaway: RunawayConfig = field(default_factory=RunawayConfig)
    # A call to a model with no price anywhere (catalog or config): served (and charged to
    # budgets at `unpriced_price_per_mtok`, flagged in the ledger), or refused with 403.
    unpriced: Annotated[str, Choice("serve", "refuse")] = "serve"
    unpriced_price_per_mtok: UnpricedPrice = field(default_factory=UnpricedPrice)
    # From the top-level `keys:` and `budgets:` (key shorthand budgets included).
    keys: SkipJsonSchema[tuple[KeyConfig, ...]] = ()
    budgets: SkipJsonSchema[tuple[BudgetConfig, ...]] = ()

    @field_validator("webhooks")
    @classmethod
    def _without_empty(cls, hooks: tuple[WebhookConfig, ...]) -> tuple[WebhookConfig, ...]:
        return tuple(hook for hook in hooks if hook.url)

    @property
    def key_teams(self) -> frozenset[str]:
        return frozenset(k.team for k in self.keys)

    @property
    def key_aliases(self) -> frozenset[str]:
        return frozenset(k.alias for k in self.keys)


@section(frozen=True, config=STRICT)
class SpendFile:
    """The top-level keys this feature owns."""

    keys: tuple[KeyConfig, ...] = ()
    budgets: tuple[BudgetConfig, ...] = ()
    spend: SpendConfig = field(default_factory=SpendConfig)


def load_spend(tree: Mapping[str, Any], facts: FileFacts, problems: list[str]) -> SpendConfig:
    """Read `keys:`, `budgets:` and `spend:`; mistakes go to `problems`."""
    settings = tree.get("spend")
    for derived in ("keys", "budgets"):
        if isinstance(settings, Mapping) and derived in settings:
            problems.append(f"spend.{derived}: unknown key (expected one of: "
                            f"{', '.join(sorted(fields_at(SpendConfig, ())))})")
            settings = {k: v for k, v in settings.items() if k != derived}
    zone = settings.get("timezone") if isinstance(settings, Mapping) else None
    timezone = zone if isinstance(zone, str) and _valid_zone(zone) else "UTC"
    budgets = tree.get("budgets")
    if isinstance(budgets, list):
        budgets = [{**b, "path": f"budgets[{i}]"} if isinstance(b, Mapping) else b
                   for i, b in enumerate(budgets)]
    data = {"keys": tree.get("keys"), "budgets": budgets, "spend": settings}
    context = {"environ": facts.environ, "models": frozenset(facts.models),
               "provider_names": facts.provider_names, "timezone": timezone}
    file = validate(SpendFile, {k: v for k, v in data.items() if v is not None}, "", problems,
                    known_keys=lambda loc: fields_at(SpendFile, loc), context=context)
    # Duplicates are checked among the entries that are valid, even when others are not.
    keys = _each(KeyConfig, tree.get("keys"), context)
    own_budgets = _each(BudgetConfig, budgets, context)
    problems.extend(_duplicate_keys(keys))
    valid_keys = tuple(key for _, key in keys)
    shorthand = _key_budgets(keys, file.spend.timezone if file else timezone)
    problems.extend(_duplicate_budgets(tuple(b for _, b in own_budgets) + shorthand))
    if file is None:
        return SpendConfig()
    if file.spend.default_max_tokens > facts.limits.max_tokens:
        problems.append(f"spend.default_max_tokens: must be at most limits.max_tokens "
                        f"({facts.limits.max_tokens})")
    return replace(file.spend, keys=valid_keys, budgets=file.budgets + shorthand)


def _each(kind: type[T], items: Any, context: Mapping[str, Any]) -> list[tuple[int, T]]:
    """The valid entries of a list, with their indexes (their mistakes are reported elsewhere)."""
    found: list[tuple[int, T]] = []
    for index, item in enumerate(items if isinstance(items, list) else []):
        entry = validate(kind, item, "", [], known_keys=lambda loc: (), context=context)
        if entry is not None:
            found.append((index, entry))
    return found


def _valid_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _duplicate_keys(keys: list[tuple[int, KeyConfig]]) -> list[str]:
    found: list[str] = []
    seen_alias: dict[str, str] = {}
    seen_hash: dict[str, str] = {}
    for index, key in keys:
        path = f"keys[{index}]"
        if key.alias in seen_alias:
            found.append(f"{path}.alias: duplicate alias '{key.alias}' (also at {seen_alias[key.alias]})")
        seen_alias.setdefault(key.alias, path)
        if key.key_sha256 is not None and key.key_sha256 in seen_hash:
            source = "key_env" if key.key_env else "key_sha256"
            found.append(f"{path}.{source}: the same key is already defined at {seen_hash[key.key_sha256]}")
        if key.key_sha256 is not None:
            seen_hash.setdefault(key.key_sha256, path)
    return found


def _key_budgets(keys: list[tuple[int, KeyConfig]], timezone: str) -> tuple[BudgetConfig, ...]:
    """`budget_usd_per_day` / `_month` on a key are shorthand for a blocking key budget."""
    budgets: list[BudgetConfig] = []
    for index, key in keys:
        for window, limit in (("day", key.budget_usd_per_day), ("month", key.budget_usd_per_month)):
            if limit is not None:
                budgets.append(BudgetConfig(
                    name=_default_name("key", key.alias, window), scope="key", key=key.alias,
                    window=window, limit_usd=limit, timezone=timezone,
                    path=f"keys[{index}].budget_usd_per_{window}"))
    return tuple(budgets)


def _duplicate_budgets(budgets: tuple[BudgetConfig, ...]) -> list[str]:
    found: list[str] = []
    seen: dict[str, str] = {}
    for budget in budgets:
        if budget.name in seen:
            found.append(f"{budget.path}: duplicate budget name '{budget.name}' "
                         f"(also at {seen[budget.name]})")
        seen.setdefault(budget.name, budget.path)
    return found


FEATURE = ConfigFeature(attribute="spend", file=SpendFile, model_keys=None, load=load_spend)

"""The config file's vocabulary on pydantic: field types that speak our messages, and key paths.

Every config section declares its keys once, as the fields of a frozen pydantic
dataclass typed with the checks from here (`Annotated[float,
Number(exclusive=True)]`, `Annotated[int, Integer(1)]`, `Choice(...)`, `Str`,
`Money`, ...). Pydantic validates a whole section at once and `validate` turns
each of its errors into one `models.gpt-4.1.price_per_mtok.output: must be a
number >= 0` line, so the user sees every mistake at once. The same declarations
give the JSON Schema that editors use (`EnvJsonSchema`).

Pydantic dataclasses rather than `BaseModel`: the request path reads config
attributes per request, and a dataclass attribute is a plain instance read,
while `BaseModel`'s `__getattr__` hook makes every read about three times slower.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, NoReturn, TypeVar

from pydantic import ConfigDict, GetCoreSchemaHandler, GetJsonSchemaHandler, TypeAdapter, ValidationError
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, SkipJsonSchema
from pydantic_core import PydanticCustomError, PydanticUseDefault, core_schema

# Sections refuse unknown keys (reported with the keys they do know).
STRICT = ConfigDict(extra="forbid", validate_by_name=True, validate_by_alias=True)

T = TypeVar("T")

_PROBLEMS = "config_problems"  # an error type carrying (key, message) pairs below its location
_MESSAGE = "config"  # an error whose message is already ours


class ConfigError(Exception):
    """One or more config mistakes, each `path: message`."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def fail(message: str) -> NoReturn:
    """Refuse the value being validated with `message`, reported at its key path."""
    raise PydanticCustomError(_MESSAGE, message)


def fail_keys(problems: Iterable[tuple[str, str]]) -> None:
    """Refuse a section for mistakes at some of its keys: `(key, message)` pairs."""
    found = tuple(problems)
    if found:
        raise PydanticCustomError(_PROBLEMS, "{count} problems", {"count": len(found), "problems": found})


def _string(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        fail("must be a string")
    return str(value)


def _number(minimum: float, exclusive: bool) -> Callable[[Any], float]:
    message = f"must be a number {'>' if exclusive else '>='} {minimum:g}"

    def check(value: Any) -> float:
        try:
            number = float(value) if not isinstance(value, bool) else math.nan
        except (TypeError, ValueError):
            number = math.nan
        if number != number or (number <= minimum if exclusive else number < minimum):
            fail(message)
        return number

    return check


def _integer(minimum: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        try:
            number = int(str(value)) if not isinstance(value, bool) else minimum - 1
        except ValueError:
            number = minimum - 1
        if number < minimum:
            fail(f"must be an integer >= {minimum}")
        return number

    return check


def money(value: Any) -> Decimal:
    try:
        number = Decimal(str(value)) if not isinstance(value, bool) else Decimal(-1)
    except InvalidOperation:
        number = Decimal(-1)
    if not number.is_finite() or number < 0:
        fail("must be a number >= 0")
    return number


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false", "1", "0", "yes", "no"}:
        return value.lower() in {"true", "1", "yes"}
    fail("must be true or false")


def string_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        fail("must be a list of strings")
    return tuple(value)


def _choice(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = _string(value)
        if text not in choices:
            fail(f"must be one of: {', '.join(choices)}")
        return text

    return check


# A string taking its value from the environment, where the file wants a number or a choice.
_ENV_STRING = {"type": "string", "pattern": r"\$\{"}


@dataclass(frozen=True, eq=False)  # hashed by identity: type expressions hash their metadata
class Check:
    """Field metadata: our coercion and message, and the JSON Schema keywords that say the same.

    A null means the field's default (as leaving the key out does), or "is required"
    for a field without one; a `nullable` check keeps the null (to turn an inherited
    value off).
    """

    convert: Callable[[Any], Any]
    keywords: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    required: bool = False
    nullable: bool = False

    def _run(self, value: Any) -> Any:
        if value is None:
            if self.nullable:
                return None
            if self.required:
                fail("is required")
            raise PydanticUseDefault()
        return self.convert(value)

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler
                                     ) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(self._run, handler(source))

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
                                     ) -> JsonSchemaValue:
        result = handler(schema)
        result.update(self.keywords)
        return result


def nullable_fields(kind: Any) -> frozenset[str]:
    """The fields of a section whose null means "none" rather than "the default"."""
    hints = typing.get_type_hints(kind, include_extras=True)
    return frozenset(name for name, hint in hints.items()
                     if any(isinstance(m, Check) and m.nullable for m in getattr(hint, "__metadata__", ())))


def nullable(check: Check) -> Check:
    """`check`, but a null stays None (it turns an inherited value off)."""
    return dataclasses.replace(check, nullable=True)


def Number(minimum: float = 0.0, *, exclusive: bool = False) -> Check:
    return Check(_number(minimum, exclusive),
                 {"exclusiveMinimum" if exclusive else "minimum": minimum})


def Integer(minimum: int = 0) -> Check:
    return Check(_integer(minimum), {"minimum": minimum})


def Choice(*choices: str) -> Check:
    return Check(_choice(choices), {"anyOf": [{"enum": list(choices)}, _ENV_STRING]})


Str = Annotated[str, Check(_string)]
RequiredStr = Annotated[str, Check(_string, required=True)]
Bool = Annotated[bool, Check(_boolean)]
Money = Annotated[Decimal, Check(money)]
RequiredMoney = Annotated[Decimal, Check(money, required=True)]
StrList = Annotated[tuple[str, ...], Check(string_list)]


_MESSAGES = {
    "missing": "is required",
    "dataclass_type": "must be a mapping",
    "model_type": "must be a mapping",
    "dict_type": "must be a mapping",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "string_type": "must be a string",
}
_UNKNOWN = {"extra_forbidden", "unexpected_keyword_argument"}


def key_path(prefix: str, loc: Iterable[str | int]) -> str:
    """`models` + ("gpt-4.1", "price_per_mtok") -> `models.gpt-4.1.price_per_mtok`; indexes as [i]."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.startswith("["):
            path += part
        else:
            path = f"{path}.{part}" if path else str(part)
    return path or "<root>"


def validate(
    kind: type[T], data: Any, path: str, problems: list[str], *,
    known_keys: Callable[[tuple[str | int, ...]], Iterable[str]],
    context: Mapping[str, Any] | None = None,
) -> T | None:
    """`data` as a `kind`, or None with every mistake appended to `problems` as `path: message`.

    `known_keys(loc)` names the keys allowed where an unknown key was found (for the message).
    """
    try:
        result: T = _adapter(typing.cast(Any, kind)).validate_python(data, context=dict(context or {}))
        return result
    except ValidationError as exc:
        for error in _unknown_first(exc.errors(include_url=False)):
            problems.extend(_lines(path, error, known_keys))
        return None


def _unknown_first(errors: list[Any]) -> list[Any]:
    """A section's unknown keys before its other mistakes (pydantic lists them last)."""
    ordered: list[Any] = []
    for error in errors:
        parent = error["loc"][:-1]
        at = len(ordered)
        if error["type"] in _UNKNOWN:
            at = next((i for i, seen in enumerate(ordered) if seen["loc"][:len(parent)] == parent
                       and not (seen["type"] in _UNKNOWN and seen["loc"][:-1] == parent)), at)
        ordered.insert(at, error)
    return ordered


@functools.cache
def _adapter(kind: Any) -> TypeAdapter[Any]:  # a section class, or a typing form of them
    return TypeAdapter(kind)


def _lines(path: str, error: Any, known_keys: Callable[[tuple[str | int, ...]], Iterable[str]]
           ) -> list[str]:
    loc = tuple(part for part in error["loc"] if not _is_wrapper(part))
    kind = error["type"]
    if kind == _PROBLEMS:
        return [f"{key_path(path, (*loc, key))}: {message}" for key, message in error["ctx"]["problems"]]
    if kind in _UNKNOWN:
        expected = ", ".join(sorted(known_keys(loc[:-1])))
        return [f"{key_path(path, loc)}: unknown key (expected one of: {expected})"]
    message = error["msg"] if kind == _MESSAGE else _MESSAGES.get(kind, error["msg"])
    return [f"{key_path(path, loc)}: {message}"]


def _is_wrapper(part: str | int) -> bool:
    """Pydantic may name a union member or a validator function in a location; a key path does not."""
    return isinstance(part, str) and (part.startswith("function-") or part in {"tagged-union"})


def fields_at(kind: Any, loc: tuple[str | int, ...]) -> list[str]:
    """The keys a section at `loc` below `kind` accepts (dataclass fields, walked by name)."""
    current: Any = kind
    for part in loc:
        current = _section_type(current, part)
        if current is None:
            return []
    current = _unwrap(current)
    if not dataclasses.is_dataclass(current):
        return []
    hints = typing.get_type_hints(current, include_extras=True)
    infos = getattr(current, "__pydantic_fields__", {})
    return [getattr(infos.get(f.name), "alias", None) or f.name for f in dataclasses.fields(current)
            if _in_file(hints.get(f.name))]


def _in_file(hint: Any) -> bool:
    """False for a field the loader fills in (its name, where it was defined): not a key."""
    return not any(isinstance(m, _SKIP) for m in getattr(hint, "__metadata__", ()))


_SKIP = typing.cast(type, SkipJsonSchema)  # a class at run time; a type alias to mypy


def _section_type(current: Any, part: str | int) -> Any:
    current = _unwrap(current)
    if dataclasses.is_dataclass(current) and isinstance(part, str):
        infos = getattr(current, "__pydantic_fields__", {})
        name = next((n for n, info in infos.items() if info.alias == part), part)
        return typing.get_type_hints(current, include_extras=True).get(name)
    args = typing.get_args(current)
    if args and typing.get_origin(current) in {dict, Mapping, tuple, list}:
        return args[-1] if typing.get_origin(current) in {dict, Mapping} else args[0]
    return None


def _unwrap(hint: Any) -> Any:
    while True:
        origin = typing.get_origin(hint)
        if origin is Annotated:
            hint = typing.get_args(hint)[0]
        elif origin in {typing.Union, types.UnionType}:
            inner = [a for a in typing.get_args(hint) if a is not type(None)]
            hint = next((a for a in inner if dataclasses.is_dataclass(a)), inner[0])
        else:
            return hint


class EnvJsonSchema(GenerateJsonSchema):
    """JSON Schema for the file as written: any number or boolean may be a `${VAR}` string.

    Field titles are left out: pydantic makes them from the key ("Timeout S"), which
    tells an editor's user nothing the key does not.
    """

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def _or_env(self, schema: JsonSchemaValue) -> JsonSchemaValue:
        return {"anyOf": [schema, _ENV_STRING]}

    def int_schema(self, schema: core_schema.IntSchema) -> JsonSchemaValue:
        return self._or_env(super().int_schema(schema))

    def float_schema(self, schema: core_schema.FloatSchema) -> JsonSchemaValue:
        return self._or_env(super().float_schema(schema))

    def bool_schema(self, schema: core_schema.BoolSchema) -> JsonSchemaValue:
        return self._or_env(super().bool_schema(schema))

    def decimal_schema(self, schema: core_schema.DecimalSchema) -> JsonSchemaValue:
        return self._or_env({"type": "number", "minimum": 0})  # only money is a Decimal here

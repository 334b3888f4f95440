"""Typed reading of one YAML mapping with key paths in every error message.

Config sections (core, keys, budgets, resilience) all read their part of the
file through `Section`, so every mistake is reported as
`models.gpt-4.1.price_per_mtok.output: must be a number >= 0`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any


class ConfigError(Exception):
    """One or more config mistakes, each `path: message`."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class Problems:
    """Collects every mistake so the user sees all of them at once."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}")

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError(self.items)


_MISSING = object()


class Section:
    """A mapping at a key path; getters record problems and return defaults."""

    def __init__(self, data: Any, path: str, problems: Problems) -> None:
        self.path = path
        self.problems = problems
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            problems.add(path or "<root>", "must be a mapping")
            data = {}
        self.data: Mapping[str, Any] = data

    def child_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, message: str) -> None:
        self.problems.add(self.child_path(key), message)

    def has(self, key: str) -> bool:
        return key in self.data

    def section(self, key: str) -> Section:
        return Section(self.data.get(key), self.child_path(key), self.problems)

    def items(self) -> Iterator[tuple[str, Section]]:
        for key in self.data:
            yield str(key), Section(self.data[key], self.child_path(str(key)), self.problems)

    def reject_unknown(self, allowed: set[str]) -> None:
        for key in self.data:
            if key not in allowed:
                self.fail(str(key), f"unknown key (expected one of: {', '.join(sorted(allowed))})")

    def string(self, key: str, default: str | None = None, *, required: bool = False) -> str:
        value = self.data.get(key, _MISSING)
        if value is _MISSING or value is None:
            if required:
                self.fail(key, "is required")
            return default if default is not None else ""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.fail(key, "must be a string")
            return default or ""
        return str(value)

    def optional_string(self, key: str) -> str | None:
        if self.data.get(key) is None:
            return None
        return self.string(key)

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.string(key, default)
        if value not in choices:
            self.fail(key, f"must be one of: {', '.join(choices)}")
            return default
        return value

    def number(
        self, key: str, default: float, *, minimum: float = 0.0, exclusive: bool = False
    ) -> float:
        value = self.data.get(key, _MISSING)
        if value is _MISSING or value is None:
            return default
        try:
            number = float(value) if not isinstance(value, bool) else float("nan")
        except (TypeError, ValueError):
            number = float("nan")
        bad = number != number or (number <= minimum if exclusive else number < minimum)
        if bad:
            self.fail(key, f"must be a number {'>' if exclusive else '>='} {minimum:g}")
            return default
        return number

    def integer(self, key: str, default: int, *, minimum: int = 0) -> int:
        value = self.data.get(key, _MISSING)
        if value is _MISSING or value is None:
            return default
        try:
            number = int(str(value)) if not isinstance(value, bool) else minimum - 1
        except ValueError:
            number = minimum - 1
        if number < minimum:
            self.fail(key, f"must be an integer >= {minimum}")
            return default
        return number

    def decimal(self, key: str, default: Decimal | None = None, *, required: bool = False) -> Decimal:
        value = self.data.get(key, _MISSING)
        if value is _MISSING or value is None:
            if required:
                self.fail(key, "is required")
            return default if default is not None else Decimal(0)
        try:
            number = Decimal(str(value)) if not isinstance(value, bool) else Decimal(-1)
        except InvalidOperation:
            number = Decimal(-1)
        if not number.is_finite() or number < 0:
            self.fail(key, "must be a number >= 0")
            return default if default is not None else Decimal(0)
        return number

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, _MISSING)
        if value is _MISSING or value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false", "1", "0", "yes", "no"}:
            return value.lower() in {"true", "1", "yes"}
        self.fail(key, "must be true or false")
        return default

    def string_list(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key, _MISSING)
        if value is _MISSING or value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(key, "must be a list of strings")
            return ()
        return tuple(value)

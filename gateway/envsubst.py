"""`${VAR}` and `${VAR:-default}` interpolation of config strings from an environment.

Interpolation runs on parsed YAML scalars, never on the raw text, so a value
from the environment can never inject YAML structure. `$${` is a literal `${`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_PATTERN = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass
class Substitution:
    """The result of interpolating one string, and which variables it needed."""

    value: str
    referenced: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


class FromEnv(str):
    """A config string that took part of its value from the environment.

    Still a `str` for every reader; a secret's field checks for it, because a key
    written into the file itself is refused.
    """

    referenced: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()

    @classmethod
    def of(cls, sub: Substitution) -> FromEnv:
        text = cls(sub.value)
        text.referenced, text.missing = tuple(sub.referenced), tuple(sub.missing)
        return text


def has_reference(text: str) -> bool:
    """True when the string takes any part of its value from the environment."""
    return any(m.group(1) for m in _PATTERN.finditer(text))


def substitute(text: str, environ: Mapping[str, str]) -> Substitution:
    """Replace `${VAR}` / `${VAR:-default}`; an unset VAR without default is missing."""
    result = Substitution(value="")

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "${"
        result.referenced.append(name)
        value = environ.get(name)
        if value is None or (value == "" and match.group(2) is not None):
            if match.group(2) is not None:
                return match.group(2)
            result.missing.append(name)
            return ""
        return value

    result.value = _PATTERN.sub(replace, text)
    return result

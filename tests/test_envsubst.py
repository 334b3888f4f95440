"""`${VAR}` interpolation of config values."""

from gateway.envsubst import has_reference, substitute


def test_substitutes_set_variable() -> None:
    """A set variable replaces its reference."""
    assert substitute("a-${X}-b", {"X": "1"}).value == "a-1-b"


def test_default_used_when_unset_or_empty() -> None:
    """`${VAR:-default}` falls back when VAR is unset or empty."""
    assert substitute("${X:-d}", {}).value == "d"
    assert substitute("${X:-d}", {"X": ""}).value == "d"
    assert substitute("${X:-d}", {"X": "v"}).value == "v"


def test_unset_without_default_is_reported_missing() -> None:
    """An unset variable without default becomes empty and is named as missing."""
    result = substitute("${SECRET}", {})
    assert result.value == ""
    assert result.missing == ["SECRET"]


def test_double_dollar_escapes() -> None:
    """`$${` stays a literal `${`."""
    assert substitute("$${X}", {"X": "1"}).value == "${X}"
    assert not has_reference("$${X}")
    assert has_reference("${X}")

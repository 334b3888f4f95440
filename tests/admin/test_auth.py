"""Admin keys: Bearer only, every configured key accepted, anything else refused."""

from __future__ import annotations

import pytest

from gateway.admin.auth import AdminKeys

KEY = "admin-key-0123456789"


def test_each_configured_key_is_accepted_as_bearer() -> None:
    """Both keys of a comma-separated list work, with any case of the scheme."""
    keys = AdminKeys.from_environ({"GATEWAY_ADMIN_KEYS": f" {KEY} , second-key-abcdefghij"})
    assert keys.enabled and len(keys) == 2
    assert keys.check(f"Bearer {KEY}")
    assert keys.check("bearer second-key-abcdefghij")


@pytest.mark.parametrize("header", [None, "", f"Basic {KEY}", "Bearer ", f"Bearer {KEY}x",
                                    f"Bearer {KEY[:-1]}", KEY])
def test_wrong_or_missing_key_is_refused(header: str | None) -> None:
    """Missing, other schemes, prefixes and near misses are all refused."""
    assert not AdminKeys.from_environ({"GATEWAY_ADMIN_KEYS": KEY}).check(header)


def test_no_variable_means_off() -> None:
    """Without GATEWAY_ADMIN_KEYS the admin API is off and refuses everything."""
    keys = AdminKeys.from_environ({})
    assert not keys.enabled
    assert not keys.check(f"Bearer {KEY}")


def test_short_key_is_an_error() -> None:
    """A key shorter than 16 characters is refused at start, naming which one."""
    with pytest.raises(ValueError, match="key #2 is shorter"):
        AdminKeys.from_environ({"GATEWAY_ADMIN_KEYS": f"{KEY},short"})

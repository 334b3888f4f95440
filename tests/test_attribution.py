"""Tags and end users from headers and the body: parsed, validated, bounded."""

from __future__ import annotations

import pytest

from gateway import attribution, errors


def test_nothing_named_is_the_shared_empty_attribution() -> None:
    """A call without tags or user gets NONE (no allocation on the common path)."""
    assert attribution.read({}, {"model": "m"}) is attribution.NONE
    assert attribution.NONE.tags_json() == ""


def test_header_and_metadata_merge_with_the_header_winning() -> None:
    """Header tags and OpenAI metadata both count; the header wins a shared name."""
    found = attribution.read({"x-gateway-tags": "project=alpha, feature=search"},
                             {"metadata": {"project": "beta", "env": "prod"}})
    assert found.tag_dict() == {"env": "prod", "feature": "search", "project": "alpha"}
    assert found.tags_json() == '{"env":"prod","feature":"search","project":"alpha"}'


def test_user_from_body_else_header() -> None:
    """The body's `user` wins over the x-gateway-user header."""
    assert attribution.read({"x-gateway-user": "h-1"}, {"user": "u-1"}).user == "u-1"
    assert attribution.read({"x-gateway-user": "h-1"}, {}).user == "h-1"


def test_metadata_pairs_that_are_not_tags_are_skipped() -> None:
    """OpenAI accepts freer metadata, so bad pairs are not recorded rather than refused."""
    found = attribution.read({}, {"metadata": {"ok": "yes", "bad name": "x", "n": 3,
                                               "url": "https://x?y=1"}})
    assert found.tag_dict() == {"ok": "yes"}


@pytest.mark.parametrize(("headers", "body", "message"), [
    ({"x-gateway-tags": "project"}, {}, "not name=value"),
    ({"x-gateway-tags": "pro ject=a"}, {}, "tag name"),
    ({"x-gateway-tags": "p=" + "v" * 129}, {}, "value of tag 'p'"),
    ({"x-gateway-tags": "p=a\"b"}, {}, "value of tag 'p'"),
    ({"x-gateway-tags": ",".join(f"t{i}=v" for i in range(17))}, {}, "at most 16 tags"),
    ({}, {"user": "has space"}, "end user id"),
    ({}, {"user": "u" * 129}, "end user id"),
])
def test_bad_tags_and_users_are_400(headers: dict[str, str], body: dict[str, str],
                                    message: str) -> None:
    """Malformed, overlong or too many tags and bad user ids are a clear 400."""
    with pytest.raises(errors.InvalidRequest, match=message) as info:
        attribution.read(headers, body)
    assert info.value.status == 400

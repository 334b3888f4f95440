"""Tags and end users from headers and the body: parsed, validated, bounded."""

from __future__ import annotations

import pytest

from gateway import attribution, errors
from gateway.attribution_config import AttributionConfig, TagLabels


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


CLAUDE_CODE_USER = ("user_" + "ab12" * 16 + "_account_0f8fad5b-d9cb-469f-a165-70867728950e"
                    "_session_7c9e6679-7425-40de-944b-e07fc1f90ae7")


def test_anthropic_metadata_user_id_is_the_end_user_after_the_explicit_ones() -> None:
    """Anthropic's metadata.user_id names the end user (and is no tag) when neither the
    `user` field nor the x-gateway-user header does; in an OpenAI body it is a tag."""
    body = {"metadata": {"user_id": "dev-7", "run": "r1"}}
    found = attribution.read({}, body, user_in_metadata=True)
    assert (found.user, found.tag_dict()) == ("dev-7", {"run": "r1"})
    assert attribution.read({"x-gateway-user": "h-1"}, body, user_in_metadata=True).user == "h-1"
    openai_body = attribution.read({}, body)
    assert (openai_body.user, openai_body.tag_dict()) == ("", {"user_id": "dev-7", "run": "r1"})
    assert body == {"metadata": {"user_id": "dev-7", "run": "r1"}}  # the body is not touched


def test_a_long_metadata_user_id_is_shortened_keeping_distinct_ids_distinct() -> None:
    """Claude Code's ~160-character user_id becomes 128 characters (its start, `~`, a hash
    of the whole); another session of the same account stays another user; an id that is
    not printable ASCII is ignored rather than refused."""
    first = attribution.read({}, {"metadata": {"user_id": CLAUDE_CODE_USER}}, True).user
    other = CLAUDE_CODE_USER[:-4] + "0000"
    second = attribution.read({}, {"metadata": {"user_id": other}}, True).user
    assert len(first) == attribution.MAX_USER == len(second) and first != second
    assert first.startswith(CLAUDE_CODE_USER[:100]) and first[-17] == "~"
    assert first == attribution.read({}, {"metadata": {"user_id": CLAUDE_CODE_USER}}, True).user
    for bad in ("has space", "naïve", 7, ""):
        assert attribution.read({}, {"metadata": {"user_id": bad}}, True).user == ""


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


def test_tag_labels_only_for_allow_listed_names_and_bounded() -> None:
    """Only allow-listed tag names become label pairs, each name's values bounded (later
    newcomers are `_OTHER`); without an allow-list nothing does, and the user never."""
    labels = TagLabels(AttributionConfig(metric_tags=("project",), metric_tag_values=2))
    assert labels.enabled
    seen = [labels(attribution.read({"x-gateway-tags": f"project={p},feature=f{p}"},
                                    {"user": "u-" + p})) for p in ("a", "b", "c", "a")]
    assert seen == [(("gateway.tags.project", "a"),), (("gateway.tags.project", "b"),),
                    (("gateway.tags.project", "_OTHER"),), (("gateway.tags.project", "a"),)]
    assert labels(attribution.NONE) == ()
    off = TagLabels(AttributionConfig())
    assert not off.enabled
    assert off(attribution.read({"x-gateway-tags": "project=a"}, {})) == ()


def test_metric_tags_config_is_checked() -> None:
    """The allow-list names valid tag names (at most 16), and the value bound is 1 to 1000."""
    from gateway.config import load
    from gateway.confread import ConfigError

    base = ("providers: {p: {kind: mock}}\n"
            "models: {m: {provider: p, price_per_mtok: {input: 1, output: 1}}}\n")
    config = load(base + "attribution: {metric_tags: [project, project, team.x]}\n", {})
    assert config.attribution.metric_tags == ("project", "team.x")
    assert config.attribution.metric_tag_values == 50
    with pytest.raises(ConfigError) as info:
        load(base + "attribution: {metric_tags: ['a b'], metric_tag_values: 5000}\n", {})
    message = str(info.value)
    assert "attribution.metric_tags: 'a b' is not a tag name" in message
    assert "attribution.metric_tag_values: must be at most 1000" in message

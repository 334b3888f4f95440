"""The `attribution:` config section (which tags may become metric labels) and the
labels it makes of a call's tags (`TagLabels`); the tags themselves are read by
`attribution.py`."""

from __future__ import annotations

from typing import Annotated

from pydantic import field_validator
from pydantic.dataclasses import dataclass as section

from gateway.attribution import MAX_NAME, MAX_TAGS, NAME, Attribution, shown
from gateway.confread import STRICT, Integer, StrList, fail
from gateway.telemetry import names as n
from gateway.telemetry.vocabulary import BoundedNames

MAX_METRIC_TAG_VALUES = 1000


@section(frozen=True, slots=True, config=STRICT)
class AttributionConfig:
    """The `attribution:` section: which tags may become metric labels."""

    # Tag names whose values become labels (`gateway.tags.<name>`) of gateway_requests_total,
    # gateway_cost_usd_total and gateway_tokens_total. Empty (the default): no tag ever is.
    metric_tags: StrList = ()
    # The distinct values of each such tag kept as labels, per process; later ones are
    # `_OTHER` (the series count stays bounded whatever clients send).
    metric_tag_values: Annotated[int, Integer(1)] = 50

    @field_validator("metric_tags")
    @classmethod
    def _names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [name for name in value if not NAME.match(name)]
        if bad:
            fail(f"'{shown(bad[0])}' is not a tag name (1 to {MAX_NAME} letters, digits, "
                 "'_', '.' or '-')")
        if len(set(value)) > MAX_TAGS:
            fail(f"at most {MAX_TAGS} tag names")
        return tuple(dict.fromkeys(value))

    @field_validator("metric_tag_values")
    @classmethod
    def _values(cls, value: int) -> int:
        if value > MAX_METRIC_TAG_VALUES:
            fail(f"must be at most {MAX_METRIC_TAG_VALUES}")
        return value


class TagLabels:
    """A call's allow-listed tags as metric label pairs, each tag's values bounded."""

    __slots__ = ("_bounded", "enabled")

    def __init__(self, config: AttributionConfig) -> None:
        self._bounded = {name: BoundedNames(config.metric_tag_values)
                         for name in config.metric_tags}
        self.enabled = bool(self._bounded)

    def __call__(self, found: Attribution) -> tuple[tuple[str, str], ...]:
        """(label, value) pairs of the allow-listed tags `found` has; () for none."""
        pairs = []
        for name, value in found.tags:
            bounded = self._bounded.get(name)
            if bounded is not None:
                pairs.append((n.GATEWAY_TAGS_PREFIX + name, bounded(value) or ""))
        return tuple(pairs)

"""Which generation of the GenAI conventions the gateway emits, chosen once at start.

`OTEL_SEMCONV_STABILITY_OPT_IN` is the standard switch (a comma list, as for the
HTTP and database conventions): unset, the v1.41 names; `gen_ai_latest_experimental`,
the names of `open-telemetry/semantic-conventions-genai`; `gen_ai_latest_experimental/dup`
both, so dashboards move over without a gap. The variable and the value are those of
opentelemetry-instrumentation's `_semconv` module (`OTEL_SEMCONV_STABILITY_OPT_IN`,
`_StabilityMode.GEN_AI_LATEST_EXPERIMENTAL`; tests/telemetry/test_semconv.py keeps them
equal). Its reader is private, reads `os.environ` into a process-wide singleton (tests
pass their own environment) and knows no `/dup` form for gen_ai, so the list is read
here, by the same rule: comma-separated, stripped, `/dup` winning.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

ENV_VAR: Final = "OTEL_SEMCONV_STABILITY_OPT_IN"
LATEST: Final = "gen_ai_latest_experimental"
LATEST_DUP: Final = f"{LATEST}/dup"

# The upstream revisions the two generations follow (docs/metrics.md cites them too).
OLD_VERSION: Final = "v1.41.0 (open-telemetry/semantic-conventions)"
NEW_VERSION: Final = ("open-telemetry/semantic-conventions-genai, migration guide at "
                      "32c328e85013588c6fe32ebc30934ab5b1752b6a")


class Semconv:
    """Which names to emit: `old` (v1.41), `new` (the next generation), or both."""

    __slots__ = ("new", "old")

    def __init__(self, old: bool = True, new: bool = False) -> None:
        self.old = old
        self.new = new

    def describe(self) -> str:
        if self.old and self.new:
            return f"both generations ({ENV_VAR}={LATEST_DUP})"
        if self.new:
            return f"latest experimental ({ENV_VAR}={LATEST})"
        return "v1.41"

    def __repr__(self) -> str:
        return f"Semconv(old={self.old}, new={self.new})"


def semconv(environ: Mapping[str, str]) -> Semconv:
    """The generation(s) OTEL_SEMCONV_STABILITY_OPT_IN asks for (other signals' values in
    the list, such as `http`, are ignored here); `/dup` wins when both are listed."""
    values = {value.strip() for value in environ.get(ENV_VAR, "").split(",")}
    if LATEST_DUP in values:
        return Semconv(old=True, new=True)
    if LATEST in values:
        return Semconv(old=False, new=True)
    return Semconv()

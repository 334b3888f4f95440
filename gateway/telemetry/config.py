"""The `telemetry:` section of the config file: which callers' message content may be
captured.

`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` turns capture on for the whole
process (the standard switch); `telemetry.capture_content` can only narrow it, per
virtual key (by alias) and per team, never widen it: with the variable unset, no
config captures anything. A key's setting wins over its team's, a team's over
`default`, so `default: false` with keys or teams set to true is an allow-list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from typing import Annotated, Any

from pydantic.dataclasses import dataclass as section

from gateway.confread import STRICT, Bool, Check, fail, fields_at, validate
from gateway.coreconfig import ConfigFeature, FileFacts


def _switches(value: Any) -> dict[str, bool]:
    if not isinstance(value, Mapping):
        fail("must be a mapping of names to true or false, e.g. {support-bot: false}")
    bad = [str(name) for name, on in value.items() if not isinstance(on, bool)]
    if bad:
        fail(f"must map each name to true or false (not: {', '.join(sorted(bad))})")
    return {str(name): on for name, on in value.items()}


Switches = Annotated[Mapping[str, bool], Check(_switches)]


@section(frozen=True, config=STRICT)
class CaptureContent:
    """Whose calls may carry message content when the environment turns capture on."""

    default: Bool = True  # callers whose key and team are not listed
    keys: Switches = field(default_factory=dict)  # key alias -> may capture
    teams: Switches = field(default_factory=dict)  # team -> may capture

    def allows(self, alias: str, team: str) -> bool:
        allowed = self.keys.get(alias)
        if allowed is None:
            allowed = self.teams.get(team, self.default)
        return allowed


@section(frozen=True, config=STRICT)
class TelemetryConfig:
    """The `telemetry:` section."""

    capture_content: CaptureContent = field(default_factory=CaptureContent)


@section(frozen=True, config=STRICT)
class TelemetryFile:
    """The top-level keys this feature owns."""

    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig)


def load_telemetry(tree: Mapping[str, Any], facts: FileFacts,
                   problems: list[str]) -> TelemetryConfig:
    """Read `telemetry:`; mistakes go to `problems`."""
    data = {"telemetry": tree["telemetry"]} if tree.get("telemetry") is not None else {}
    file = validate(TelemetryFile, data, "", problems,
                    known_keys=lambda loc: fields_at(TelemetryFile, loc))
    return file.telemetry if file is not None else TelemetryConfig()


FEATURE = ConfigFeature(attribute="telemetry", file=TelemetryFile, model_keys=None,
                        load=load_telemetry)

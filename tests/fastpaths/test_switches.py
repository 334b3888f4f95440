"""The fast paths' switches: one each plus one for all, the tested SDK range (the same as
pyproject's pin), self-checks, and the SDK's own classes whenever ours step aside."""

from __future__ import annotations

import logging
import re
import tomllib
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from gateway.fastpaths import LiteTracer, fastexport, selfcheck, switches
from gateway.fastpaths.hotmetrics import HotCounter, HotHistogram
from gateway.fastpaths.switches import FastPaths, log_fallback, select
from gateway.telemetry.setup import setup_telemetry

ROOT = Path(__file__).resolve().parents[2]
TESTED = {"opentelemetry-sdk": "1.45.1", "opentelemetry-api": "1.45.1"}
OLDER = {"opentelemetry-sdk": "1.44.0", "opentelemetry-api": "1.44.0"}
SDK_PATHS = ("lite_spans", "hot_metrics", "otlp_export", "encode_on_end")


def _on(fast: FastPaths) -> set[str]:
    return {name for name in ("http_client", "coarse_timers", *SDK_PATHS) if getattr(fast, name)}


def test_every_fast_path_is_on_by_default_on_the_tested_sdk() -> None:
    """With no switch set, on the installed (tested) SDK, every fast path runs."""
    fast = select({})
    assert _on(fast) == {"http_client", "coarse_timers", *SDK_PATHS}
    assert fast.fallback is None


@pytest.mark.parametrize(("variable", "value", "off"), [
    ("GATEWAY_HTTP_CLIENT", "aiohttp", "http_client"),
    ("GATEWAY_HTTP_CLIENT_SPANS", "true", "http_client"),
    ("GATEWAY_COARSE_TIMERS", "false", "coarse_timers"),
    ("GATEWAY_LITE_SPANS", "false", "lite_spans"),
    ("GATEWAY_FAST_METRICS", "false", "hot_metrics"),
    ("GATEWAY_OTLP_ENCODE_ON_END", "false", "encode_on_end"),
])
def test_each_switch_turns_off_its_own_fast_path(variable: str, value: str, off: str) -> None:
    """Each switch turns off its fast path and nothing else."""
    assert _on(select({variable: value})) == {"http_client", "coarse_timers", *SDK_PATHS} - {off}


def test_the_otlp_switch_also_turns_off_encoding_as_spans_end() -> None:
    """GATEWAY_OTLP_FAST_EXPORT=false leaves span export to the SDK's exporter and batching."""
    assert _on(select({"GATEWAY_OTLP_FAST_EXPORT": "false"})) == {
        "http_client", "coarse_timers", "lite_spans", "hot_metrics"}


def test_one_switch_turns_every_fast_path_off() -> None:
    """GATEWAY_FAST_PATHS=false turns them all off, without a fallback to report."""
    fast = select({"GATEWAY_FAST_PATHS": "false"})
    assert _on(fast) == set() and fast.fallback is None


def test_an_sdk_outside_the_tested_range_turns_the_sdk_dependent_ones_off() -> None:
    """Another SDK minor version: spans, metrics and export fall back; the HTTP client and
    timers (which read nothing of the SDK) stay."""
    fast = select({}, sdk_versions=OLDER)
    assert _on(fast) == {"http_client", "coarse_timers"}
    assert fast.fallback == "opentelemetry-sdk 1.44.0 is outside the tested range >=1.45,<1.46"
    newer = select({}, sdk_versions={"opentelemetry-sdk": "1.45.2", "opentelemetry-api": "1.46.0"})
    assert newer.fallback is not None and "opentelemetry-api 1.46.0" in newer.fallback
    missing = select({}, sdk_versions={"opentelemetry-sdk": None, "opentelemetry-api": "1.45.0"})
    assert missing.fallback is not None and "(not found)" in missing.fallback
    assert select({}, sdk_versions=TESTED).fallback is None


def test_a_failed_self_check_turns_only_that_fast_path_off() -> None:
    """A self-check that fails turns its own fast path off and says why."""
    def check(name: str) -> str | None:
        return "AttributeError: no _receive_metrics" if name == "hot_metrics" else None

    fast = select({}, sdk_versions=TESTED, self_check=check)
    assert _on(fast) == {"http_client", "coarse_timers", *SDK_PATHS} - {"hot_metrics"}
    assert fast.fallback == "self-check failed: hot_metrics (AttributeError: no _receive_metrics)"


def test_the_self_checks_pass_on_the_installed_sdk() -> None:
    """Each self-check runs clean against the SDK the suite runs on."""
    selfcheck.lite_spans()
    selfcheck.hot_metrics()
    selfcheck.otlp_export()


def test_the_fallback_is_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    """Stepping aside logs one warning naming the reason and what still runs; none otherwise."""
    with caplog.at_level(logging.INFO, logger="gateway.fastpaths"):
        log_fallback(select({}, sdk_versions=OLDER))
        log_fallback(select({}))
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert caplog.records[0].levelno == logging.WARNING
    assert "1.44.0 is outside the tested range" in message
    assert "off: lite spans, hot metrics, OTLP span encoder" in message


def test_the_tested_range_is_pyprojects_pin() -> None:
    """pyproject.toml pins opentelemetry-sdk and -api to exactly TESTED_SDK, and the
    installed versions are inside it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (low_major, low_minor), (high_major, high_minor) = switches.TESTED_SDK
    for name in switches.SDK_DISTRIBUTIONS:
        pins = [d for d in project["dependencies"] if re.match(rf"{name}\b", d)]
        assert pins == [f"{name}>={low_major}.{low_minor},<{high_major}.{high_minor}"]
    assert switches.untested_sdk(switches.installed_sdk_versions()) is None


def test_telemetry_on_the_fallback_uses_the_sdks_own_classes() -> None:
    """On an untested SDK the tracer, the instruments, the OTLP exporter and its batching are
    the SDK's: none of ours is built."""
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_EXPORTER_OTLP_PROTOCOL":
           "http/protobuf", "OTEL_METRICS_EXPORTER": "prometheus"}
    telemetry = setup_telemetry(env, select(env, sdk_versions=OLDER))
    try:
        assert type(telemetry.tracer) is SdkTracer
        instruments = telemetry.instruments
        for recorder in (instruments.operation_duration, instruments.token_usage,
                         instruments.time_per_output_chunk, instruments.overhead):
            assert not isinstance(recorder, HotHistogram)
        assert not isinstance(instruments.cost, HotCounter)
        assert telemetry.tracer_provider is not None
        processors = telemetry.tracer_provider._active_span_processor._span_processors
        assert [type(p) for p in processors] == [BatchSpanProcessor]
        exporter = processors[0].span_exporter
        assert type(exporter).__module__.startswith("opentelemetry.exporter.otlp.proto.http")
    finally:
        telemetry.shutdown(timeout_s=1.0)
    fast = setup_telemetry(env, select(env, sdk_versions=TESTED))
    try:
        assert isinstance(fast.tracer, LiteTracer)
        assert isinstance(fast.instruments.operation_duration, HotHistogram)
        assert fast.tracer_provider is not None
        processor = fast.tracer_provider._active_span_processor._span_processors[0]
        assert type(processor) is fastexport.PreEncodingSpanProcessor
    finally:
        fast.shutdown(timeout_s=1.0)

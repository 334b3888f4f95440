"""The span cost tool: it makes a request's SERVER and CLIENT spans with the gateway's own
code, sampled and not, and tables what they cost and what encoding them costs."""

from __future__ import annotations

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON

from bench import spans
from gateway.fastpaths import fastexport


def test_a_request_makes_both_spans_and_they_are_exported() -> None:
    """A sampled request's two spans come out of the gateway's code, reach the exporter
    encoded, and decode to a SERVER span with its CLIENT child; unsampled, none do."""
    on, off = spans._Rig(ALWAYS_ON), spans._Rig(ALWAYS_OFF)
    for rig in (on, off):
        rig.request(stream=True)
        rig.request(stream=False)
        assert rig.telemetry.tracer_provider is not None
        rig.telemetry.tracer_provider.force_flush()
    assert on.sink.exported == 4 and off.sink.exported == 0
    server, client = on.finished
    decoded = ExportTraceServiceRequest.FromString(fastexport.encode_spans([server, client]))
    got = decoded.resource_spans[0].scope_spans[0].spans
    assert [s.name for s in got] == ["POST /v1/chat/completions", "chat gpt-4.1"]
    assert got[1].parent_span_id == got[0].span_id
    for rig in (on, off):
        assert rig.telemetry.tracer_provider is not None
        rig.telemetry.tracer_provider.shutdown()


def test_costs_are_measured_and_tabled() -> None:
    """Each mode gets a row with the sampled and unsampled cost, their difference and the
    encoding alone."""
    costs = spans.measure("json", repeat=5, rounds=1)
    assert costs.sampled > 0 and costs.unsampled > 0 and costs.encode > 0
    row = spans.table([costs]).splitlines()[-1]
    assert row.startswith("| json | ") and row.count("|") == 6

"""The attempt recorder's CLIENT spans: their attributes, and the attribute blocks that
let the span encoder write the recurring ones once."""

from __future__ import annotations

from typing import Any

from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway.fastpaths import fastexport
from gateway.telemetry import names as n
from gateway.telemetry.recorder import AttemptRecorder
from tests.support import telemetry as support


def _attempt(tt: support.TestTelemetry, request_id: str, request: dict[str, Any],
             **extra: Any) -> dict[str, Any]:
    """One finished attempt's CLIENT span attributes."""
    recorder = AttemptRecorder(
        tt.telemetry, Context(), operation=n.OP_CHAT, provider_name="openai", model="gpt-4.1",
        server_address="api.example", server_port=443, request_attributes=request,
        extra_attributes={n.GATEWAY_KEY_ALIAS: "team-a", n.GATEWAY_REQUEST_ID: request_id,
                          n.GATEWAY_ATTEMPT: 1, **extra})
    recorder.finish(response_model="gpt-4.1-2025", usage=None, cost=None)
    return support.attrs(tt.spans.get_finished_spans()[-1])


def test_attempts_of_one_key_share_a_block_and_keep_every_attribute() -> None:
    """Attempts of the same model, provider and key start from one cached block, and each
    span still carries the measurement key's, the request's and the attempt's attributes
    with its own request id; the encoded spans decode to the SDK's encoding."""
    tt = support.make_test_telemetry()
    first = _attempt(tt, "r1", {n.GEN_AI_REQUEST_MAX_TOKENS: 5})
    second = _attempt(tt, "r2", {n.GEN_AI_REQUEST_TEMPERATURE: 0.5})
    assert len(tt.telemetry.span_starts) == 1
    common = {n.GEN_AI_OPERATION_NAME: n.OP_CHAT, n.GEN_AI_PROVIDER_NAME: "openai",
              n.GEN_AI_REQUEST_MODEL: "gpt-4.1", n.SERVER_ADDRESS: "api.example",
              n.SERVER_PORT: 443, n.GATEWAY_KEY_ALIAS: "team-a", n.GATEWAY_ATTEMPT: 1,
              n.GEN_AI_RESPONSE_MODEL: "gpt-4.1-2025"}
    assert first == {**common, n.GEN_AI_REQUEST_MAX_TOKENS: 5, n.GATEWAY_REQUEST_ID: "r1"}
    assert second == {**common, n.GEN_AI_REQUEST_TEMPERATURE: 0.5, n.GATEWAY_REQUEST_ID: "r2"}
    spans = tt.spans.get_finished_spans()
    assert [getattr(s, "_block", None) is not None for s in spans] == [True, True]
    ours = ExportTraceServiceRequest.FromString(fastexport.encode_spans(spans))
    assert ours == sdk_encode(spans)


def test_another_attempt_number_or_key_takes_its_own_block() -> None:
    """The block holds the attempt's values: a second attempt or another key gets another."""
    tt = support.make_test_telemetry()
    _attempt(tt, "r1", {})
    assert _attempt(tt, "r1", {}, **{n.GATEWAY_ATTEMPT: 2})[n.GATEWAY_ATTEMPT] == 2
    assert _attempt(tt, "r1", {}, **{n.GATEWAY_KEY_ALIAS: "b"})[n.GATEWAY_KEY_ALIAS] == "b"
    assert len(tt.telemetry.span_starts) == 3


def test_extra_values_that_cannot_be_keyed_take_no_block() -> None:
    """A bool or float extra (True == 1, -0.0 == 0.0 as keys) or an extra key the request
    also sets gives the same attributes as always, without a cached block, the extra value
    winning as before."""
    tt = support.make_test_telemetry()
    flagged = _attempt(tt, "r1", {}, **{"gateway.flag": True})
    assert flagged["gateway.flag"] is True and flagged[n.GATEWAY_ATTEMPT] == 1
    clash = _attempt(tt, "r2", {n.GATEWAY_KEY_ALIAS: "from-request"})
    assert clash[n.GATEWAY_KEY_ALIAS] == "team-a"
    assert tt.telemetry.span_starts == {}

"""The lifecycle's SERVER spans through the real path on the fast tier: their attributes,
and the one attribute block per method, route and URL that the span encoder reuses."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway.dialects.openai_chat import OpenAIChat
from gateway.fastpaths import fastexport
from gateway.telemetry import names as n
from gateway.testing import FakeClock
from tests.support.inmemory import PathRig, Upstream
from tests.support.telemetry import attrs

ROUTE = "/v1/chat/completions"


async def test_server_spans_of_one_route_share_a_block() -> None:
    """Requests on one route and Host start their SERVER spans from one block, each with its
    own request id and every HTTP attribute; the spans encode to the SDK's encoding."""
    async with FakeClock() as clock:
        rig = PathRig(clock, Upstream())
        life = rig.lifecycle
        visits = [life.open({"x-request-id": rid}, OpenAIChat(), ROUTE,
                            ("https", ROUTE, "gw.example:8443")) for rid in ("a1", "a2")]
        other = life.open({}, OpenAIChat(), ROUTE, ("http", ROUTE, "other.example"))
        for visit in (*visits, other):
            await life.close(visit, 400, "invalid_request_error")
    spans = rig.server_spans()
    assert [attrs(s)[n.GATEWAY_REQUEST_ID] for s in spans[:2]] == ["a1", "a2"]
    assert {k: v for k, v in attrs(spans[0]).items() if k != n.GATEWAY_REQUEST_ID} == {
        n.HTTP_REQUEST_METHOD: "POST", n.HTTP_ROUTE: ROUTE, n.URL_SCHEME: "https",
        n.URL_PATH: ROUTE, n.SERVER_ADDRESS: "gw.example", n.SERVER_PORT: 8443,
        n.HTTP_RESPONSE_STATUS_CODE: 400, n.GATEWAY_KEY_ALIAS: "unauthenticated",
        n.GATEWAY_TEAM: "unauthenticated", n.ERROR_TYPE: "invalid_request_error"}
    assert attrs(spans[2])[n.SERVER_ADDRESS] == "other.example"
    blocks = [getattr(s, "_block", None) for s in spans]
    assert blocks[0] is not None and blocks[0] is blocks[1] and blocks[2] is not blocks[0]
    assert spans[0].name == f"POST {ROUTE}"
    ours = ExportTraceServiceRequest.FromString(fastexport.encode_spans(spans))
    assert ours == sdk_encode(spans)

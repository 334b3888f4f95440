"""The lifecycle's SERVER spans through the real path on the fast tier: their attributes,
the one attribute block per method, route, path and Host that the span encoder reuses, and
the request's scheme and Host read only to make a new one."""

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


class Sent:
    """Where a request went, as the edge's request object gives it (scheme, and Host or the
    listener's address), counting how often the lifecycle asks."""

    def __init__(self, scheme: str, host: str) -> None:
        self._scheme = scheme
        self._host = host
        self.reads = 0

    @property
    def scheme(self) -> str:
        self.reads += 1
        return self._scheme

    @property
    def host(self) -> str:
        self.reads += 1
        return self._host


async def test_server_spans_of_one_route_share_a_block() -> None:
    """Requests on one route and Host start their SERVER spans from one block, each with its
    own request id and every HTTP attribute; the spans encode to the SDK's encoding."""
    async with FakeClock() as clock:
        rig = PathRig(clock, Upstream())
        life = rig.lifecycle
        sent = Sent("https", "gw.example:8443")
        visits = [life.open({"x-request-id": rid, "host": "gw.example:8443"}, OpenAIChat(),
                            ROUTE, sent, ROUTE) for rid in ("a1", "a2")]
        other = life.open({"host": "other.example"}, OpenAIChat(), ROUTE,
                          Sent("http", "other.example"), ROUTE)
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


async def _url_attributes(requests: list[tuple[dict[str, str], Sent, str]]
                          ) -> list[tuple[object, ...]]:
    """Each request's SERVER span url and server attributes, in order."""
    async with FakeClock() as clock:
        rig = PathRig(clock, Upstream())
        life = rig.lifecycle
        for headers, sent, path in requests:
            await life.close(life.open(headers, OpenAIChat(), ROUTE, sent, path), 400,
                             "invalid_request_error")
    return [tuple(attrs(s).get(k) for k in (n.URL_SCHEME, n.URL_PATH, n.SERVER_ADDRESS,
                                            n.SERVER_PORT)) for s in rig.server_spans()]


async def test_the_url_is_read_once_per_path_and_host_header() -> None:
    """Scheme and Host are asked of the request only for a path and Host header not seen
    before on the route; each request still gets its own path's and Host's attributes."""
    first, again, other_host, other_path = (Sent("http", "gw.example:8080"),
                                            Sent("http", "gw.example:8080"),
                                            Sent("http", "api.example"),
                                            Sent("http", "gw.example:8080"))
    got = await _url_attributes([
        ({"host": "gw.example:8080"}, first, ROUTE),
        ({"host": "gw.example:8080"}, again, ROUTE),
        ({"host": "api.example"}, other_host, ROUTE),
        ({"host": "gw.example:8080"}, other_path, "/chat/completions"),
    ])
    assert got == [("http", ROUTE, "gw.example", 8080), ("http", ROUTE, "gw.example", 8080),
                   ("http", ROUTE, "api.example", None),
                   ("http", "/chat/completions", "gw.example", 8080)]
    assert [s.reads for s in (first, again, other_host, other_path)] == [2, 0, 2, 2]


async def test_a_request_not_named_by_its_host_header_is_worked_out_each_time() -> None:
    """Without a Host header (the listener's address stands in), or with a host other than
    its Host header's (an absolute-form target's), the attributes come from the request
    itself every time, and are not kept for the requests with that Host header."""
    bare = [Sent("http", "10.0.0.5:8080") for _ in range(2)]
    absolute, plain = Sent("http", "target.example"), Sent("http", "gw.example:8080")
    got = await _url_attributes([
        ({}, bare[0], ROUTE), ({}, bare[1], ROUTE),
        ({"host": "gw.example:8080"}, absolute, ROUTE),
        ({"host": "gw.example:8080"}, plain, ROUTE),
    ])
    assert got == [("http", ROUTE, "10.0.0.5", 8080), ("http", ROUTE, "10.0.0.5", 8080),
                   ("http", ROUTE, "target.example", None), ("http", ROUTE, "gw.example", 8080)]
    assert [s.reads for s in (*bare, absolute, plain)] == [2, 2, 2, 2]

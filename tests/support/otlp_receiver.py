"""A real OTLP receiver (HTTP/protobuf and gRPC) that keeps what it was sent."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from aiohttp import web
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric
from opentelemetry.proto.trace.v1.trace_pb2 import Span

ExportTrace = trace_service_pb2.ExportTraceServiceRequest
ExportMetrics = metrics_service_pb2.ExportMetricsServiceRequest


@dataclass
class Received:
    traces: list[Any] = field(default_factory=list)
    metrics: list[Any] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    trace_agents: list[str] = field(default_factory=list)  # User-Agent of each span export

    def spans(self) -> list[Span]:
        return [span for req in self.traces for rs in req.resource_spans
                for ss in rs.scope_spans for span in ss.spans]

    def metric_list(self) -> list[Metric]:
        return [m for req in self.metrics for rm in req.resource_metrics
                for sm in rm.scope_metrics for m in sm.metrics]

    def resource_attributes(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for req in self.metrics:
            for rm in req.resource_metrics:
                for kv in rm.resource.attributes:
                    out[kv.key] = kv.value.string_value
        return out


@contextlib.asynccontextmanager
async def http_receiver() -> AsyncIterator[tuple[str, Received]]:
    """OTLP/HTTP protobuf on a free port; yields (endpoint, received)."""
    received = Received()

    async def traces(request: web.Request) -> web.Response:
        raw = await request.read()
        received.raw.append(raw)
        received.trace_agents.append(request.headers.get("user-agent", ""))
        received.traces.append(ExportTrace.FromString(raw))
        return web.Response(body=trace_service_pb2.ExportTraceServiceResponse().SerializeToString(),
                            content_type="application/x-protobuf")

    async def metrics(request: web.Request) -> web.Response:
        raw = await request.read()
        received.raw.append(raw)
        received.metrics.append(ExportMetrics.FromString(raw))
        return web.Response(
            body=metrics_service_pb2.ExportMetricsServiceResponse().SerializeToString(),
            content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    app.router.add_post("/v1/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", received
    finally:
        await runner.cleanup()


class _Traces(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    def __init__(self, received: Received) -> None:
        self.received = received

    def Export(self, request: Any, context: Any) -> Any:
        self.received.raw.append(request.SerializeToString())
        self.received.traces.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()


class _Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):  # type: ignore[misc]
    def __init__(self, received: Received) -> None:
        self.received = received

    def Export(self, request: Any, context: Any) -> Any:
        self.received.raw.append(request.SerializeToString())
        self.received.metrics.append(request)
        return metrics_service_pb2.ExportMetricsServiceResponse()


@contextlib.contextmanager
def grpc_receiver() -> Iterator[tuple[str, Received]]:
    """OTLP/gRPC on a free port; yields (endpoint, received)."""
    received = Received()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Traces(received), server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_Metrics(received), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"http://127.0.0.1:{port}", received
    finally:
        server.stop(grace=None)

"""A minimal OTLP/HTTP receiver, so the gateway pays the full export cost during the benchmark.

Accepts http/protobuf on /v1/traces, /v1/metrics and /v1/logs and answers
200 with an empty body, like a collector. It counts exports, bytes and spans
(decoding the trace payloads) so the benchmark can check that telemetry
really flowed; GET /stats returns the counts, POST /reset zeroes them.

    python -m bench.otlp_sink --port 4318
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from bench.serving import serve_until_signal

TARGET_ATTRIBUTE = "bench.target"


@dataclass
class Counts:
    """Exports, bytes and spans received, by name."""

    by_name: Counter[str] = field(default_factory=Counter)


COUNTS = web.AppKey("counts", Counts)


def _target(resource: Resource) -> str:
    for attribute in resource.attributes:
        if attribute.key == TARGET_ATTRIBUTE:
            return str(attribute.value.string_value)
    return "unknown"


def _count(signal_name: str, payload: bytes, counts: Counter[str]) -> None:
    if signal_name == "traces":
        traces = ExportTraceServiceRequest()
        traces.ParseFromString(payload)
        for resource_spans in traces.resource_spans:
            n = sum(len(scope.spans) for scope in resource_spans.scope_spans)
            counts[f"spans:{_target(resource_spans.resource)}"] += n
    elif signal_name == "metrics":
        metrics = ExportMetricsServiceRequest()
        metrics.ParseFromString(payload)
        for target in {_target(rm.resource) for rm in metrics.resource_metrics}:
            counts[f"metrics_exports:{target}"] += 1


async def receive(request: web.Request) -> web.Response:
    signal_name = request.match_info["signal"]
    payload = await request.read()
    counts = request.app[COUNTS].by_name
    counts[f"{signal_name}_exports"] += 1
    counts[f"{signal_name}_bytes"] += len(payload)
    try:
        _count(signal_name, payload, counts)
    except Exception:  # a payload we cannot decode is counted, not fatal
        counts["undecodable"] += 1
    return web.Response(status=200, body=b"", content_type="application/x-protobuf")


async def stats(request: web.Request) -> web.Response:
    return web.json_response(dict(request.app[COUNTS].by_name))


async def reset(request: web.Request) -> web.Response:
    request.app[COUNTS].by_name.clear()
    return web.Response(status=204)


def create_app() -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[COUNTS] = Counts()
    app.router.add_post("/v1/{signal:traces|metrics|logs}", receive)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    return app


async def serve(host: str, port: int) -> None:
    await serve_until_signal(create_app(), host, port)


def main() -> None:
    parser = argparse.ArgumentParser(description="Minimal OTLP/HTTP receiver.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4318)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()

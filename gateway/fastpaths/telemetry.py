"""What telemetry setup asks of the OTLP span fast path: an exporter for a name,
and the batching processor to put in front of it."""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from gateway.fastpaths import fastexport
from gateway.fastpaths.switches import FastPaths


def fast_span_exporter(name: str, environ: Mapping[str, str],
                       fast: FastPaths) -> SpanExporter | None:
    """Our exporter for an OTLP exporter name (the same bytes, written without building
    protobuf objects), or None: the SDK's exporter for that name is used."""
    if not fast.otlp_export:
        return None
    if name == "otlp_proto_http":
        return fastexport.OTLPHTTPSpanExporter(environ)
    if name == "otlp_proto_grpc":
        return fastexport.grpc_span_exporter()
    return None


def batch_processor(exporter: SpanExporter, fast: FastPaths) -> type[BatchSpanProcessor]:
    """The SDK's batch processor, or ours that encodes spans as they end for exporters
    that take encoded spans."""
    if fast.encode_on_end and getattr(exporter, "accepts_encoded", False):
        return fastexport.PreEncodingSpanProcessor
    return BatchSpanProcessor

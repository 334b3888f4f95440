"""The GenAI conventions' `gen_ai.client.inference.operation.details` event, which
carries message content when OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT chooses
events (EVENT_ONLY, SPAN_AND_EVENT).

An OpenTelemetry event is a log record with an event name, emitted in the CLIENT
span's context (so it carries its trace and span ids), as opentelemetry-util-genai
does. It goes through the logs SDK when OTEL_LOGS_EXPORTER configures one; without a
logs pipeline it becomes an event on the CLIENT span, so that choosing events still
reaches a trace backend instead of vanishing. Only calls whose content is captured
emit it: nothing here runs for the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry._logs import Logger, LogRecord
from opentelemetry.context import Context
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.trace import Span

from gateway.telemetry import names as n


class ContentEvents:
    """Emits the details event: through `provider` when there is one, else on the span."""

    __slots__ = ("_logger",)

    def __init__(self, provider: LoggerProvider | None = None, scope: str = "gateway",
                 version: str | None = None) -> None:
        self._logger: Logger | None = (provider.get_logger(scope, version)
                                       if provider is not None else None)

    @property
    def as_logs(self) -> bool:
        return self._logger is not None

    def emit(self, span: Span, context: Context, attributes: Mapping[str, Any]) -> None:
        """One details event of the attempt whose CLIENT span is `span` (not yet ended)."""
        if self._logger is not None:
            self._logger.emit(LogRecord(event_name=n.GEN_AI_CONTENT_EVENT,
                                        attributes=dict(attributes), context=context))
        elif span.is_recording():
            span.add_event(n.GEN_AI_CONTENT_EVENT, attributes)

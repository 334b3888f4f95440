"""Message content to files or object storage instead of the trace backend, through
opentelemetry-util-genai's completion hook (off by default).

`OTEL_INSTRUMENTATION_GENAI_COMPLETION_HOOK` names the hook as util-genai's instrumentations
read it: an entry point of the `opentelemetry_genai_completion_hook` group; `upload` is
util-genai's own, which writes each call's messages as JSON through fsspec (a local
directory, `gs://`, `s3://`, ...: `OTEL_INSTRUMENTATION_GENAI_UPLOAD_BASE_PATH`, read by
util-genai from the process environment) on its own threads, and stamps
`gen_ai.input.messages_ref` / `gen_ai.output.messages_ref` /
`gen_ai.system_instructions_ref` on the span. The hook only receives what capture lets
through: OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT must still turn capture on,
and the config's per-key and per-team narrowing still applies; a call sent to the hook
carries its content nowhere else (neither span attributes nor the details event).
util-genai (pinned with the test extra, see pyproject.toml) and fsspec come with the
`content-upload` extra and are imported only when the variable is set.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from importlib.metadata import entry_points
from importlib.util import find_spec
from typing import Any

import orjson
from opentelemetry.trace import Span

ENV_VAR = "OTEL_INSTRUMENTATION_GENAI_COMPLETION_HOOK"
GROUP = "opentelemetry_genai_completion_hook"
BASE_PATH = "OTEL_INSTRUMENTATION_GENAI_UPLOAD_BASE_PATH"
_log = logging.getLogger(__name__)


class ContentUpload:
    """Hands each captured call's content to a util-genai completion hook."""

    def __init__(self, hook: Any) -> None:
        self.hook = hook

    def complete(self, span: Span, captured: Mapping[str, Any]) -> None:
        """`captured` (the GenAI JSON strings by attribute name) to the hook, in the
        util-genai types it takes; the hook may stamp references on `span`."""
        from opentelemetry.util.genai import types

        def messages(name: str) -> list[dict[str, Any]]:
            raw = captured.get(name)
            return orjson.loads(raw) if raw else []

        inputs = [types.InputMessage(role=m["role"], parts=_parts(types, m["parts"]))
                  for m in messages("gen_ai.input.messages")]
        outputs = [types.OutputMessage(role=m["role"], parts=_parts(types, m["parts"]),
                                       finish_reason=m.get("finish_reason") or "")
                   for m in messages("gen_ai.output.messages")]
        system = _parts(types, messages("gen_ai.system_instructions"))
        try:
            self.hook.on_completion(inputs=inputs, outputs=outputs, system_instruction=system,
                                    span=span)
        except Exception:  # a storage problem must never fail the call
            _log.exception("the completion hook failed; this call's content is not stored")

    def shutdown(self, timeout_s: float) -> None:
        shutdown = getattr(self.hook, "shutdown", None)
        if shutdown is not None:
            shutdown(timeout_sec=timeout_s)


def _parts(types: Any, parts: list[dict[str, Any]]) -> list[Any]:
    """The GenAI JSON parts the gateway captures as util-genai message parts."""
    converted: list[Any] = []
    for part in parts:
        kind = part.get("type")
        if kind == "text":
            converted.append(types.Text(content=str(part.get("content", ""))))
        elif kind == "tool_call":
            converted.append(types.ToolCallRequest(arguments=part.get("arguments"),
                                                   name=str(part.get("name") or ""),
                                                   id=part.get("id")))
        elif kind == "tool_call_response":
            converted.append(types.ToolCallResponse(response=part.get("response"),
                                                    id=part.get("id")))
        else:
            converted.append(types.GenericPart(type=str(kind), value=None))
    return converted


def content_upload(environ: Mapping[str, str]) -> ContentUpload | None:
    """The hook `OTEL_INSTRUMENTATION_GENAI_COMPLETION_HOOK` names, or None (unset, not
    installed, or failing to start: then content goes where the capture mode says)."""
    name = environ.get(ENV_VAR, "").strip()
    if not name:
        return None
    if name == "upload" and not environ.get(BASE_PATH, "").strip():
        _log.error("%s=upload needs %s (a directory or an fsspec URL); content is not "
                   "uploaded", ENV_VAR, BASE_PATH)
        return None
    found = list(entry_points(group=GROUP, name=name))
    if not found:
        _log.error("%s=%s: no such completion hook (install llm-gateway[content-upload] for "
                   "util-genai's `upload`)", ENV_VAR, name)
        return None
    if name == "upload" and find_spec("fsspec") is None:  # util-genai would go silently no-op
        _log.error("%s=upload needs fsspec (install llm-gateway[content-upload]); content is "
                   "not uploaded", ENV_VAR)
        return None
    try:
        hook = found[0].load()()
    except Exception:
        _log.exception("the completion hook %s could not start", name)
        return None
    _log.info("message content goes to the completion hook %s when captured", name)
    return ContentUpload(hook)

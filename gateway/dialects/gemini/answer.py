"""Usage and response attributes from a Gemini answer (a `GenerateContentResponse`,
whole or one streamed chunk of it).

`usageMetadata.promptTokenCount` includes the cached tokens (`cachedContentTokenCount`);
tool-use prompt tokens (`toolUsePromptTokenCount`) are input billed beside it; the
thinking tokens (`thoughtsTokenCount`) are billed as output but not counted in
`candidatesTokenCount`. The gateway's `Usage.input` is all the input, so a long-context
price tier sees the whole prompt; `Usage.output` includes the thinking.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.telemetry import names as n
from gateway.usage import MAX_TOKENS, Usage


def _int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return min(value, MAX_TOKENS)
    return 0


def usage_from(metadata: Any) -> Usage | None:
    """Read a `usageMetadata` object parsed from JSON; None when absent."""
    if not isinstance(metadata, dict):
        return None
    prompt = _int(metadata.get("promptTokenCount")) + _int(metadata.get("toolUsePromptTokenCount"))
    cached = _int(metadata.get("cachedContentTokenCount"))
    thoughts = _int(metadata.get("thoughtsTokenCount"))
    output = _int(metadata.get("candidatesTokenCount")) + thoughts
    return Usage(input=prompt, output=output, cache_read=min(cached, prompt), reasoning=thoughts)


def finish_reasons(payload: Mapping[str, Any]) -> list[str]:
    """The candidates' finish reasons as Gemini names them (`STOP`, `MAX_TOKENS`, ...)."""
    candidates = payload.get("candidates")
    if not isinstance(candidates, list):
        return []
    return [str(c["finishReason"]) for c in candidates
            if isinstance(c, dict) and isinstance(c.get("finishReason"), str)]


def response_attributes(payload: Mapping[str, Any]) -> dict[str, Any]:
    """gen_ai response attributes of an answer: its id and finish reasons."""
    attrs: dict[str, Any] = {}
    ident = payload.get("responseId")
    if isinstance(ident, str):
        attrs[n.GEN_AI_RESPONSE_ID] = ident
    reasons = finish_reasons(payload)
    if reasons:
        attrs[n.GEN_AI_RESPONSE_FINISH_REASONS] = reasons
    return attrs


def response_model(payload: Mapping[str, Any]) -> str | None:
    model = payload.get("modelVersion")
    return model if isinstance(model, str) else None


def texts(payload: Mapping[str, Any]) -> dict[int, str]:
    """The text of each candidate (thoughts left out), by index."""
    found: dict[int, str] = {}
    candidates = payload.get("candidates")
    for position, candidate in enumerate(candidates if isinstance(candidates, list) else ()):
        if not isinstance(candidate, dict):
            continue
        content = candidate.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        text = "".join(str(p.get("text", "")) for p in parts or ()
                       if isinstance(p, dict) and not p.get("thought"))
        index = candidate.get("index", position)
        if text:
            found[index if isinstance(index, int) else position] = text
    return found

"""Recent calls and traffic without a trace backend: a hook that adds each finished
call to a bounded ring of the last N calls and to per-minute traffic buckets, in
this process's memory. Only the admin API reads them, so the gateway registers it
only while that API is on; the call's tags and end user, which the ring shows, are
read on the way in by `attribution_hook.TagReader`, registered either way.

Prompt and completion text is never kept here. Under `serve --workers N` or
several replicas each process has its own ring: the admin API says so.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from gateway import attribution
from gateway.admin.traffic import Traffic
from gateway.call import Call
from gateway.hooks import BaseHook

DEFAULT_SIZE = 500


class CallLog(BaseHook):
    """The ring of recent calls and the traffic buckets, fed by the request path (after
    `TagReader`, a hook of its own: an interpreted subclass could not call its compiled
    method)."""

    def __init__(self, size: int = DEFAULT_SIZE, traffic: Traffic | None = None) -> None:
        self.calls: deque[dict[str, Any]] = deque(maxlen=max(1, size))
        self.traffic = traffic or Traffic()

    async def on_finish(self, call: Call) -> None:
        now = time.time()
        record = summarize(call, time.perf_counter() - call.started, now)
        self.calls.append(record)
        self.traffic.add(record)

    def recent(self, limit: int) -> list[dict[str, Any]]:
        """The last `limit` calls, newest first."""
        out: list[dict[str, Any]] = []
        for record in reversed(self.calls):
            if len(out) >= limit:
                break
            out.append(record)
        return out


def summarize(call: Call, latency_s: float, now: float) -> dict[str, Any]:
    """A finished call as the console shows it: no content, no secret."""
    usage = call.usage
    found = attribution.of(call.state)
    context = call.server_span.get_span_context()
    first = next((a.first_chunk_s for a in call.attempts if a.first_chunk_s is not None), None)
    served = call.served_model.name if call.served_model is not None else None
    return {
        "ts": now,
        "request_id": call.request_id,
        "trace_id": f"{context.trace_id:032x}" if context.is_valid else None,
        "key": call.principal.alias,
        "team": call.principal.team,
        "tags": found.tag_dict(),
        "user": found.user or None,
        "operation": call.operation,
        "model_requested": call.model.name,
        "model_served": served,
        "provider": call.served_provider,
        "stream": call.client.stream,
        "input_tokens": usage.input,
        "output_tokens": usage.output,
        "cached_tokens": usage.cache_read,
        "reasoning_tokens": usage.reasoning,
        "cost_usd": float(call.cost),
        "unpriced": call.unpriced,  # the cost leaves out an unpriced model's tokens
        "latency_s": round(latency_s, 6),
        "time_to_first_chunk_s": None if first is None else round(first, 6),
        "status": call.status,
        "error_type": call.error_type,
        "fallback_reason": call.fallback_reason,
        "attempts": len(call.attempts),
    }

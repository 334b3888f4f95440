"""The hook that reads each call's tags and end user on the way in.

It runs on every request, so it is compiled (setup.py) and awaited as a native
coroutine; the admin API's call log (`admin/calls.py`) extends it with the way out.
"""

from __future__ import annotations

from typing import Any

from gateway import attribution
from gateway.call import Call
from gateway.dialects.anthropic.messages import NAME as ANTHROPIC_MESSAGES
from gateway.hooks import BaseHook
from gateway.telemetry import names as n


class TagReader(BaseHook):
    """Reads each call's tags and end user into its state (the ledger and the spans
    carry them); all the call log does when nothing can read the log."""

    async def on_request(self, call: Call) -> None:
        found = attribution.read(call.headers, call.client.body,
                                 call.client.dialect.name == ANTHROPIC_MESSAGES)
        if found is attribution.NONE:
            return
        call.state[attribution.STATE_KEY] = found
        span = call.server_span
        if span.is_recording():
            attrs: dict[str, Any] = {f"{n.GATEWAY_TAGS_PREFIX}{k}": v for k, v in found.tags}
            if found.user:
                attrs[n.USER_ID] = found.user
            span.set_attributes(attrs)

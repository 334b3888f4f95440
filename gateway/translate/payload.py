"""The one reading every stream translator makes of an upstream event: its data as a
JSON object, or the raw data when it is not one (`[DONE]`)."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.sse import event_data


def event_payload(event: bytes) -> dict[str, Any] | bytes | None:
    """The event's JSON object, the raw data when it is not one (`[DONE]`), or None."""
    data = event_data(event)
    if data is None:
        return None
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError:
        return data
    return payload if isinstance(payload, dict) else data


class PayloadFed:
    """A stream translator whose `feed` reads the event and hands it to `feed_payload`,
    which a chained translator also calls with a payload already read."""

    def feed(self, event: bytes) -> bytes:
        return self.feed_payload(event_payload(event))

    def feed_payload(self, payload: dict[str, Any] | bytes | None) -> bytes:
        raise NotImplementedError

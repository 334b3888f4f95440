"""What every stream watcher reports as the relay feeds it (`dialects.base.StreamWatcher`:
whether the stream is done, how it failed, the response model and attributes), set up
once for the watchers that keep it as plain attributes. Interpreted, so that watchers
in interpreted modules may build on it."""

from __future__ import annotations

from typing import Any

from gateway.dialects.base import StreamEnd


class StreamState:
    """A watcher's report so far: nothing yet."""

    def __init__(self) -> None:
        self.done = False
        self.failure: StreamEnd | None = None
        self.response_model: str | None = None
        self.response_attributes: dict[str, Any] = {}

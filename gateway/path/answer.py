"""What one upstream attempt hands up: framework-neutral, no HTTP server types.

`JsonAnswer` is a whole body, already accounted for. `EventStream` is an SSE
answer whose first event has arrived: the relay reads its `chunks` and passes
each to `feed`, which splits it into events and lets the dialect's watcher
read them (usage, finish reasons, timing) and say what to forward. The relay
drives the upstream's own iterator rather than one wrapped per chunk: a stream
costs one await per chunk, as it did before the layers were split.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from gateway import errors
from gateway.call import AttemptResult
from gateway.config import ModelConfig
from gateway.dialects.base import Dialect, StreamEnd, StreamWatcher
from gateway.providers.base import Provider, UpstreamResponse
from gateway.sse import SSESplitter, event_data
from gateway.telemetry.recorder import AttemptRecorder

INCOMPLETE = StreamEnd("upstream_incomplete", "incomplete_stream",
                       "the upstream closed the stream before it was complete")


@dataclass(slots=True, init=False)
class JsonAnswer:
    """A whole JSON answer, ready for the client."""

    status: int
    body: bytes
    upstream_headers: Mapping[str, str]
    model: ModelConfig  # the model that served it
    result: AttemptResult
    ready_at: float  # perf_counter when it was ready: the overhead header's end

    def __init__(self, status: int, body: bytes, upstream_headers: Mapping[str, str],
                 model: ModelConfig, result: AttemptResult, ready_at: float) -> None:
        self.status = status  # written out: see gateway.call.AttemptResult
        self.body = body
        self.upstream_headers = upstream_headers
        self.model = model
        self.result = result
        self.ready_at = ready_at


class EventStream:
    """An SSE answer being read from the upstream.

    Its end is written in one place, `cut_short` (the relay, for transport failures and
    the client leaving; `feed_end` for an upstream that closed early); an end the
    watcher saw in the data is the watcher's `failure`.
    """

    __slots__ = ("_closed", "_pending", "_splitter", "chunks", "cut", "dialect", "model",
                 "provider", "recorder", "response", "upstream_headers", "wait_s", "watcher")

    def __init__(self, dialect: Dialect, model: ModelConfig, provider: Provider,
                 recorder: AttemptRecorder, response: UpstreamResponse,
                 watcher: StreamWatcher) -> None:
        self.dialect = dialect
        self.model = model
        self.provider = provider
        self.recorder = recorder
        self.response = response
        self.upstream_headers: Mapping[str, str] = response.headers
        self.chunks: AsyncIterator[bytes] = response.iter_chunks()
        self.watcher = watcher
        self.cut: StreamEnd | None = None
        self.wait_s = 0.0  # time the relay waited on `chunks`
        self._splitter = SSESplitter()
        self._pending: list[bytes] = []
        self._closed = False

    async def first_event(self) -> None:
        """Read up to the first event that has data (comments and keep-alives alone are no
        first token); an error reported there fails the attempt while it can fall back."""
        splitter, pending = self._splitter, self._pending
        async for chunk in self.chunks:
            events = splitter.feed(chunk)
            pending.extend(events)
            for event in events:
                data = event_data(event)
                if data is None:
                    continue
                message = self.dialect.event_error(data)
                if message is not None:
                    raise errors.UpstreamBadResponse(
                        f"the upstream for model '{self.model.name}' reported {message!r} "
                        "before its first token")
                return
        raise errors.UpstreamBadResponse(
            f"the upstream for model '{self.model.name}' closed the stream before any data")

    def first(self) -> bytes:
        """The bytes to send for the events read before commit."""
        events, self._pending = self._pending, []
        return self.watcher.feed(events)

    def feed(self, chunk: bytes) -> bytes:
        """The bytes to send for one more chunk from the upstream."""
        return self.watcher.feed(self._splitter.feed(chunk))

    @property
    def done(self) -> bool:
        return self.watcher.done

    def feed_end(self) -> bytes:
        """The upstream closed: the closing bytes when that was before the stream's end."""
        if self.watcher.done:
            return b""
        self.cut_short(INCOMPLETE)
        return self.dialect.stream_error(INCOMPLETE.message, INCOMPLETE.error_type)

    def cut_short(self, end: StreamEnd) -> None:
        self.cut = end

    @property
    def ending(self) -> StreamEnd | None:
        """How the stream ended, when not well."""
        return self.cut or self.watcher.failure

    async def aclose(self) -> None:
        """Release the upstream (aborting it if unread) and finish its body iterator now
        rather than in a finalizer task later."""
        if self._closed:
            return
        self._closed = True
        self.response.close()
        aclose = getattr(self.chunks, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()

"""What one upstream attempt hands up: framework-neutral, no HTTP server types.

`JsonAnswer` is a whole body, already accounted for. `EventStream` is an SSE
answer whose first event has arrived: the relay reads its `chunks` and passes
each to `feed`, which splits it into events and lets the dialect's watcher
read them (usage, finish reasons, timing) and say what to forward. The relay
drives the upstream's own iterator rather than one wrapped per chunk: a stream
costs one await per chunk, as it did before the layers were split.

An event the watcher reports as an error is scrubbed of secrets before it is
forwarded; ordinary content events are not scanned (docs/security.md: an
upstream's credential reaches its diagnostics, not the model's output).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from gateway import errors
from gateway.call import AttemptResult
from gateway.config import ModelConfig
from gateway.dialects.base import Dialect, StreamEnd, StreamWatcher
from gateway.fastpaths import BodyTooLarge
from gateway.providers.base import Provider, UpstreamResponse
from gateway.redact import Scrubber
from gateway.sse import EventTooLarge, SSESplitter, event_data
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

    __slots__ = ("_closed", "_max_event", "_pending", "_splitter", "chunks", "cut", "dialect",
                 "model", "provider", "recorder", "response", "scrubber", "upstream_headers",
                 "wait_s", "watcher")

    def __init__(self, dialect: Dialect, model: ModelConfig, provider: Provider,
                 recorder: AttemptRecorder, response: UpstreamResponse,
                 watcher: StreamWatcher, max_event: int, scrubber: Scrubber) -> None:
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
        self._splitter = SSESplitter(max_event)
        self._max_event = max_event
        self.scrubber = scrubber
        self._pending: list[bytes] = []
        self._closed = False

    async def first_event(self) -> None:
        """Read up to the first event that has data (comments and keep-alives alone are no
        first token); an error reported there fails the attempt while it can fall back.
        Everything before that first event counts against the event size limit."""
        splitter, pending = self._splitter, self._pending
        held = 0
        first_token = getattr(self.dialect, "first_token", None)  # see dialects.base.MarksFirstToken
        async for chunk in self.chunks:
            try:
                events = splitter.feed(chunk)
            except EventTooLarge as exc:
                raise self.too_large(exc) from None
            pending.extend(events)
            for event in events:
                data = event_data(event)
                if data is None:
                    continue
                message = self.dialect.event_error(data)
                if message is not None:
                    raise errors.UpstreamBadResponse(
                        f"the upstream for model '{self.model.name}' reported {message!r} "
                        "before its first token",
                        telemetry_message=f"the upstream for model '{self.model.name}' "
                        "reported an error before its first token")
                if first_token is None or first_token(event):
                    return
            held += len(chunk)
            if held > self._max_event:  # comments alone, past the limit: no first token
                pending.clear()
                raise self.too_large(EventTooLarge(self._max_event))
        raise errors.UpstreamBadResponse(
            f"the upstream for model '{self.model.name}' closed the stream before any data")

    def too_large(self, exc: EventTooLarge) -> errors.UpstreamTooLarge:
        return errors.UpstreamTooLarge(
            f"the upstream for model '{self.model.name}' sent an event larger than {exc.limit} "
            "bytes (its provider's max_event_bytes); the gateway stopped reading it")

    def first(self) -> bytes:
        """The bytes to send for the events read before commit."""
        events, self._pending = self._pending, []
        data = self.watcher.feed(events)
        return self._scrubbed(data) if self.watcher.failure is not None else data

    def feed(self, chunk: bytes) -> bytes:
        """The bytes to send for one more chunk from the upstream; raises EventTooLarge."""
        data = self.watcher.feed(self._splitter.feed(chunk))
        if self.watcher.done and self.watcher.failure is not None:
            return self._scrubbed(data)  # an error event: it may quote the credential
        return data

    def _scrubbed(self, data: bytes) -> bytes:
        return self.scrubber.bytes(data)

    @property
    def done(self) -> bool:
        return self.watcher.done

    def feed_end(self) -> bytes:
        """The upstream closed: the closing bytes when that was before the stream's end."""
        if self.watcher.done:
            return b""
        self.cut_short(INCOMPLETE)
        return self.error_event(INCOMPLETE.message, INCOMPLETE.error_type)

    def error_event(self, message: str, code: str) -> bytes:
        """The gateway's own error event ending this stream: the watcher's when it numbers
        its events (dialects.base.NumbersErrors), else the dialect's."""
        own = getattr(self.watcher, "stream_error", None)
        if own is not None:
            event: bytes = own(message, code)
            return event
        return self.dialect.stream_error(message, code)

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


def too_large(exc: BaseException) -> bool:
    """Whether a stream failed because the upstream sent more than its limits allow."""
    return isinstance(exc, (EventTooLarge, BodyTooLarge))

"""The dialect seam: what one client API (OpenAI chat completions, embeddings, and
Anthropic Messages, Gemini, and next the Responses API) tells the request path.

A dialect parses the client's body into the canonical call (`ClientRequest`),
rewrites it for the upstream, reads usage and response attributes from a JSON
answer or, event by event, from an SSE stream (`StreamWatcher`), and shapes
errors the way its SDK expects. The request path (`gateway/path/`) calls only
these; nothing in it knows a dialect's field names. Protocols, not base classes:
a dialect may live in an interpreted module (a test's) while the path is compiled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from gateway.errors import GatewayError
from gateway.usage import Usage


@dataclass(slots=True, init=False)
class ClientRequest:
    """The canonical call: the client's body plus what the gateway reads from it.

    Written by the dialect's `parse`, read by everyone below; only the prompt
    estimate is filled in later, once, on first use.
    """

    dialect: Dialect
    operation: str  # gen_ai.operation.name: "chat", "embeddings", ...
    body: dict[str, Any]
    model: str
    stream: bool
    max_tokens: int | None  # the most output tokens the client allows, when it says
    raw: bytes  # the body as the client sent it
    _prompt_tokens: int

    def __init__(self, dialect: Dialect, body: dict[str, Any], model: str, *,
                 stream: bool = False, max_tokens: int | None = None,
                 raw: bytes = b"") -> None:  # written out: see gateway.call.AttemptResult
        self.dialect = dialect
        self.operation = dialect.operation
        self.body = body
        self.model = model
        self.stream = stream
        self.max_tokens = max_tokens
        self.raw = raw
        self._prompt_tokens = -1

    @property
    def prompt_tokens(self) -> int:
        """The dialect's estimate of the prompt's tokens (computed once, when first asked)."""
        if self._prompt_tokens < 0:
            self._prompt_tokens = self.dialect.estimate_prompt(self.body)
        return self._prompt_tokens


@dataclass(slots=True, init=False)
class Reading:
    """What a dialect read from a whole JSON answer."""

    usage: Usage | None  # None: the answer had none (the path then estimates)
    response_model: str | None
    attributes: dict[str, Any]  # gen_ai response attributes for the CLIENT span
    body: bytes | None  # the answer re-encoded for the client (model renamed), or None: as is
    output_tokens: int  # an estimate, for when `usage` is None
    output_messages: str | None  # captured output content (GenAI JSON), when asked for

    def __init__(self, usage: Usage | None, response_model: str | None,
                 attributes: dict[str, Any], body: bytes | None = None, output_tokens: int = 0,
                 output_messages: str | None = None) -> None:
        self.usage = usage
        self.response_model = response_model
        self.attributes = attributes
        self.body = body
        self.output_tokens = output_tokens
        self.output_messages = output_messages


@dataclass(slots=True)
class StreamEnd:
    """How a stream ended when it did not end well: its `gateway.stream.end` value,
    the attempt's `error.type` and a message for the span (only on a failed stream,
    so its generated `__init__` may run interpreted)."""

    end: str
    error_type: str
    message: str


_Class = TypeVar("_Class", bound=type)


def python_class(cls: _Class) -> _Class:
    """Keeps a class of a compiled module a regular Python class: mypyc compiles its
    methods, but its class attributes stay readable on the class itself and overridable by
    subclasses (a dialect's `upstream_path`, read on the class by the translations). mypyc
    makes any class with a decorator it does not know such a class; this one changes
    nothing at run time."""
    return cls


class ChunkTimer(Protocol):
    """Times a stream's chunks (the attempt's recorder): the first, then each content chunk."""

    def first_chunk(self) -> None: ...

    def chunk(self) -> None: ...


class StreamWatcher(Protocol):
    """Reads one relayed stream event by event and says what to forward to the client."""

    done: bool  # the stream's own end (or an error event) was seen: read no further
    failure: StreamEnd | None  # an error event or a malformed one ended it
    response_model: str | None
    response_attributes: dict[str, Any]

    @property
    def usage(self) -> Usage | None:
        """The usage read so far (read once the stream has ended, however it ended)."""
        ...

    def feed(self, events: list[bytes]) -> bytes:
        """Whole events (each without its blank line) -> the bytes to send the client."""
        ...

    def output_tokens(self) -> int:
        """An estimate of the output so far, for when the upstream reports no usage."""
        ...

    def output_messages(self) -> str | None:
        """Captured output content (GenAI JSON), or None when capture is off or empty."""
        ...


class SharesParse(StreamWatcher, Protocol):
    """A watcher that keeps the JSON object it parsed of the last event it parsed (most
    events it reads in their raw bytes), unchanged, with that event: a translation
    reading the same stream takes it instead of parsing the event again."""

    @property
    def parsed_event(self) -> bytes:
        """The event `parsed` was read from (the very object fed), or b"" before any."""
        ...

    @property
    def parsed(self) -> dict[str, Any] | None:
        ...


class Dialect(Protocol):
    """One API dialect the gateway speaks with clients (and natively with some upstreams)."""

    name: str  # e.g. "openai.chat_completions"; providers list the names they speak
    operation: str  # gen_ai.operation.name
    routes: tuple[str, ...]  # the client paths it is served on (POST)
    upstream_path: str  # the path it calls, relative to a provider's base URL
    pass_headers: tuple[str, ...]  # upstream response headers its clients read
    forward_headers: tuple[str, ...]  # client request headers a native upstream must see

    def parse(self, raw: bytes) -> ClientRequest:
        """The canonical call from the client's body; raises InvalidRequest."""
        ...

    def estimate_prompt(self, body: dict[str, Any]) -> int:
        """A rough count of the prompt's tokens (budgets, rate limits, missing usage)."""
        ...

    def request_attributes(self, request: ClientRequest, capture: bool) -> dict[str, Any]:
        """gen_ai request attributes for the CLIENT span (input content when `capture`)."""
        ...

    def upstream_body(self, request: ClientRequest, upstream_model: str
                      ) -> tuple[dict[str, Any], bytes | None]:
        """The body for the upstream, and its bytes if the dialect has them ready (never the
        client's own: a key given twice could be read differently upstream)."""
        ...

    def read_answer(self, request: ClientRequest, payload: dict[str, Any], served: str,
                    rename: bool, capture: bool) -> Reading:
        """Usage and attributes of a JSON answer; with `rename`, its model becomes `served`."""
        ...

    def watch(self, request: ClientRequest, served: str, rename: bool, timer: ChunkTimer,
              capture: bool) -> StreamWatcher:
        """A watcher for one stream of this dialect."""
        ...

    def event_error(self, data: bytes) -> str | None:
        """The message when an event's data reports an error instead of an answer."""
        ...

    def error_body(self, error: GatewayError) -> bytes:
        """An error response body the dialect's SDK raises as its own error class."""
        ...

    def upstream_error(self, status: int, body: bytes) -> bytes:
        """An upstream's error body as this dialect's clients should see it."""
        ...

    def stream_error(self, message: str, code: str) -> bytes:
        """An SSE event the dialect's SDK raises as an error mid-stream."""
        ...


class MarksFirstToken(Protocol):
    """A dialect whose streams open with events that carry no output yet (Anthropic's
    `message_start`, `ping`, `content_block_start`): the first-token deadline waits for
    the event `first_token` says is the first. Without the method, the first event with
    data is. Looked up by name, like `local_answer`."""

    def first_token(self, event: bytes) -> bool:
        ...


class NumbersErrors(Protocol):
    """A stream watcher whose dialect numbers its events (the Responses API's
    `sequence_number`): the gateway's own mid-stream error event (the upstream died, a
    deadline cut the stream) is written by the watcher, numbered after the last event
    relayed, in place of the dialect's `stream_error`. Looked up by name, once, when such
    an event is written."""

    def stream_error(self, message: str, code: str) -> bytes:
        ...


class ForwardsQuery(Protocol):
    """A dialect whose client may put parameters in the query string that a native
    upstream must see (Anthropic's `?beta=true`, sent by the SDK's beta client and Claude
    Code). Looked up by name, like `local_answer`; a translation has none, so nothing of
    the client's query reaches an upstream of another dialect."""

    forward_query: tuple[str, ...]  # the parameter names passed on, values as sent


class RoutedDialect(Protocol):
    """A dialect whose URL carries part of the call (Gemini's `models/{model}:generateContent`):
    the edge, seeing `parse_routed` when it builds the route (never per request), passes the
    route's parameters and the query to it instead of calling `parse`. `query_key` names a
    query parameter a client may send its key in and the header the edge moves it to before
    authenticating (so it is checked, scrubbed and never logged like that header)."""

    query_key: tuple[str, str]

    def parse_routed(self, raw: bytes, path: Mapping[str, str],
                     query: Mapping[str, str]) -> ClientRequest:
        ...


class RoutesUpstream(Protocol):
    """A dialect whose upstream path depends on the call (the model in Gemini's URL): its
    `upstream_path` holds a `{` template and the attempt asks `upstream_route` for the
    call's own path. Looked up by name, only when the template says so."""

    def upstream_route(self, request: ClientRequest, upstream_model: str) -> str:
        ...


class SplitsUpstream(Protocol):
    """A translation whose call may need more than one upstream request (OpenAI's
    embeddings of more inputs than Gemini's batchEmbedContents takes in one): the attempt
    asks `upstream_parts` for the bodies to send (None: the one body, as usual), sends them
    a few at a time (`path.attempt.PARTS_AT_ONCE`), and reads the parts' answers, joined in
    order by `joined`, as one answer.
    Looked up by name, only for a translated call that is not streamed."""

    def upstream_parts(self, body: dict[str, Any]) -> list[dict[str, Any]] | None:
        ...

    def joined(self, payloads: list[dict[str, Any]]) -> dict[str, Any]:
        ...


class AnswersLocally(Protocol):
    """A dialect whose calls the gateway answers itself when the model's provider does not
    speak it and no translation does (Anthropic's count_tokens: from the prompt estimate).
    The chain looks for `local_answer` by name (a compiled module cannot check a protocol
    at run time)."""

    def local_answer(self, request: ClientRequest) -> bytes:
        """The JSON body of the answer."""
        ...

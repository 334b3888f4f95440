"""The one small interface every upstream client implements.

The gateway's request path talks only to `Provider.send`, so tests and the
simulated provider plug in without patching anything.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from opentelemetry.context import Context

from gateway.config import ModelConfig, ProviderConfig


@dataclass(slots=True, init=False)
class UpstreamRequest:
    """One attempt's request to an upstream, already rewritten for it."""

    operation: str
    path: str  # relative to the provider's base URL, e.g. "/chat/completions"
    body: dict[str, Any]
    stream: bool
    model: ModelConfig
    headers: dict[str, str]  # trace context, request id
    directives: Mapping[str, str]  # x-mock-* for the simulator
    raw: bytes | None  # `body` already serialised, when the client's bytes fit unchanged
    context: Context | None  # the attempt's CLIENT span, for instrumented HTTP clients
    query: str  # the client's query parameters a native upstream must see, encoded; or ""
    method: str  # POST, but for the stored-response routes (GET, DELETE)

    def __init__(self, operation: str, path: str, body: dict[str, Any], stream: bool,
                 model: ModelConfig, headers: dict[str, str] | None = None,
                 directives: Mapping[str, str] | None = None, raw: bytes | None = None,
                 context: Context | None = None,
                 query: str = "", method: str = "POST") -> None:  # see gateway.call.AttemptResult
        self.operation = operation
        self.path = path
        self.body = body
        self.stream = stream
        self.model = model
        self.headers = {} if headers is None else headers
        self.directives = {} if directives is None else directives
        self.raw = raw
        self.context = context
        self.query = query
        self.method = method


class UpstreamResponse(Protocol):
    """An upstream's answer once its status and headers are in."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    async def read(self) -> bytes:
        """The whole body (non-streaming answers and error bodies)."""
        ...

    def iter_chunks(self) -> AsyncIterator[bytes]:
        """Body bytes as they arrive (streaming answers)."""
        ...

    def close(self) -> None:
        """Release the connection; aborts it if the body was not read to the end."""
        ...


class Provider(Protocol):
    """Sends one attempt upstream."""

    config: ProviderConfig
    dialects: frozenset[str]  # the API dialects it speaks natively (`gateway/dialects/`)

    @property
    def server_address(self) -> str | None: ...

    @property
    def server_port(self) -> int | None: ...

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        """Send and return once status and headers arrived; raise on transport failure."""
        ...

    async def close(self) -> None: ...

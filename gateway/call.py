"""The state of one client request as it moves through the gateway."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from opentelemetry.context import Context
from opentelemetry.trace import Span

from gateway.config import ModelConfig
from gateway.dialects.base import ClientRequest
from gateway.errors import GatewayError
from gateway.telemetry.content import ContentMode
from gateway.usage import Usage


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a virtual key's alias and team (never the key itself)."""

    alias: str = "anonymous"
    team: str = "default"
    key_id: str | None = None  # a non-reversible id of the key, for the ledger
    allowed_models: frozenset[str] | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


ANONYMOUS = Principal()


@dataclass(slots=True, init=False)
class AttemptResult:
    """What one upstream attempt cost and how it ended.

    `__init__` is written out (init=False), defaults included, here and in the other
    per-request dataclasses: the generated one stays interpreted in the compiled build.
    """

    model: ModelConfig
    provider_name: str
    usage: Usage | None
    cost: Decimal
    error_type: str | None
    status: int | None
    committed: bool  # bytes were sent to the client
    first_chunk_s: float | None  # a stream's time to its first chunk

    def __init__(self, model: ModelConfig, provider_name: str, usage: Usage | None,
                 cost: Decimal, error_type: str | None = None, status: int | None = None,
                 committed: bool = False, first_chunk_s: float | None = None) -> None:
        self.model = model
        self.provider_name = provider_name
        self.usage = usage
        self.cost = cost
        self.error_type = error_type
        self.status = status
        self.committed = committed
        self.first_chunk_s = first_chunk_s


@dataclass(slots=True, init=False)
class Call:
    """One client request, from body parsed to response finished.

    Each field has one writer; everyone else reads:
    - set once when the call is admitted (`path/lifecycle.py`): request_id, client,
      model, server_span, server_context, headers, query, principal, started, content
      (the message-content capture this caller gets, decided once per call);
    - the chain (`path/chain.py`): served_model, served_provider, fallback_reason,
      attempts, backoff_s (time spent waiting between retries);
    - the attempt (`path/attempt.py`): upstream_wait_s, time spent waiting on upstreams;
    - the lifecycle's close, once, before the `on_finish` hooks: status, error_type;
    - the spend guard: reservation; each hook its own keys of `state`;
    - hooks: `hold` (writes the answer waits for), which the edge waits for (`held`).
    """

    request_id: str
    client: ClientRequest
    model: ModelConfig  # the model the client asked for
    server_span: Span
    server_context: Context
    headers: Mapping[str, str]
    query: str  # the request's query string, as sent ("" for none)
    principal: Principal
    started: float
    content: ContentMode
    upstream_wait_s: float  # time spent waiting on upstreams (excluded from overhead)
    backoff_s: float  # time spent pausing between retries (excluded from overhead)
    served_model: ModelConfig | None
    served_provider: str | None
    fallback_reason: str | None
    attempts: list[AttemptResult]
    status: int
    error_type: str | None
    reservation: Any  # set by the spend guard, settled when the call ends
    state: dict[str, Any]  # for hooks' own per-call data
    # Writes the answer waits for (`hold`), each with what refuses the call if it failed
    # (None: its failure is its writer's to report), until `held` has waited for them.
    holds: list[tuple[asyncio.Future[Any], Callable[[], GatewayError] | None]] | None

    def __init__(self, request_id: str, client: ClientRequest, model: ModelConfig,
                 server_span: Span, server_context: Context, headers: Mapping[str, str],
                 principal: Principal = ANONYMOUS, started: float | None = None,
                 content: ContentMode = ContentMode.NO_CONTENT, query: str = "") -> None:
        self.request_id = request_id
        self.client = client
        self.model = model
        self.server_span = server_span
        self.server_context = server_context
        self.headers = headers
        self.query = query
        self.principal = principal
        self.started = time.perf_counter() if started is None else started
        self.content = content
        self.upstream_wait_s = 0.0
        self.backoff_s = 0.0
        self.served_model = None
        self.served_provider = None
        self.fallback_reason = None
        self.attempts = []
        self.status = 200
        self.error_type = None
        self.reservation = None
        self.state = {}
        self.holds = None

    def hold(self, write: asyncio.Future[Any],
             refusal: Callable[[], GatewayError] | None = None) -> None:
        """Send no byte of the answer before `write` is done (the spend ledger's row of a
        plain call, a stream's journal row). When it fails, `refusal` (if given) makes the
        error to answer with instead, if nothing has been sent yet."""
        if self.holds is None:
            self.holds = []
        self.holds.append((write, refusal))

    async def held(self) -> GatewayError | None:
        """Wait for the writes held so far (each once): the error to refuse the call with
        when one failed that says so, else None."""
        holds, self.holds = self.holds, None
        refused: GatewayError | None = None
        if holds is not None:
            for write, refusal in holds:
                try:
                    await write
                except Exception:
                    if refusal is not None and refused is None:
                        refused = refusal()
        return refused

    @property
    def operation(self) -> str:
        return self.client.operation

    def overhead_s(self, now: float) -> float:
        """The gateway's own time until `now`: elapsed, less upstream waits and backoff."""
        return max(0.0, now - self.started - self.upstream_wait_s - self.backoff_s)

    @property
    def usage(self) -> Usage:
        total = Usage()
        for attempt in self.attempts:
            if attempt.usage is not None:
                total = total + attempt.usage
        return total

    @property
    def cost(self) -> Decimal:
        return sum((a.cost for a in self.attempts), Decimal(0))

    @property
    def unpriced(self) -> bool:
        """Whether an attempt used tokens on a model with no price: `cost` leaves it out."""
        return any(not a.model.pricing.priced and a.usage is not None for a in self.attempts)

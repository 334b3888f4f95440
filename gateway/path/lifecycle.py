"""A proxied call's life around the chain: request id, SERVER span, the caller's
key, the canonical call (parsed by its dialect), model lookup and permissions on
the way in; the final status, the per-request metrics and the `on_finish` hooks
on the way out. Framework-neutral: the edge hands it headers and body bytes.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from gateway import errors
from gateway.call import Call, Principal
from gateway.config import GatewayConfig
from gateway.dialects.base import Dialect
from gateway.fastpaths import add_keyed, context_with, record_keyed
from gateway.hooks import Authenticator, CallHook, overriding
from gateway.telemetry import names as n
from gateway.telemetry import tracecontext
from gateway.telemetry.setup import Telemetry
from gateway.telemetry.vocabulary import status_label

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
UNKNOWN_MODEL = "_unknown"


def request_id(headers: Mapping[str, str]) -> str:
    incoming = headers.get("x-request-id")
    if incoming and _REQUEST_ID.match(incoming):
        return incoming
    # Not a secret, so the fast PRNG will do (uuid4 costs a urandom syscall).
    return f"{random.getrandbits(128):032x}"


class Visit:
    """One proxied request from its headers to its last byte; the `Call` once admitted.

    `open` sets the dialect, request id, span, context and start; `authenticate` the
    principal; `admit` the model label and the call; nothing else writes them.
    """

    __slots__ = ("call", "context", "dialect", "model_label", "principal", "request_id", "span",
                 "started")

    def __init__(self, dialect: Dialect, request_id: str, span: Span, context: Context,
                 started: float) -> None:
        self.dialect = dialect
        self.request_id = request_id
        self.span = span
        self.context = context
        self.started = started
        self.principal: Principal | None = None
        self.model_label = UNKNOWN_MODEL
        self.call: Call | None = None

    def trace_headers(self) -> dict[str, str]:
        """`x-request-id` and the W3C `traceresponse` of the server span."""
        return tracecontext.trace_headers(self.span, self.request_id)


class Lifecycle:
    """Opens, admits and closes proxied calls."""

    def __init__(self, config: GatewayConfig, telemetry: Telemetry, authenticator: Authenticator,
                 hooks: Sequence[CallHook]) -> None:
        self.config = config
        self.telemetry = telemetry
        self.authenticator = authenticator
        self.hooks = list(hooks)
        self._on_finish = overriding(self.hooks, "on_finish")

    def open(self, headers: Mapping[str, str], dialect: Dialect, route: str,
             url: tuple[str, str, str] | None = None) -> Visit:
        """`url` is the request's (scheme, path, Host header) for the SERVER span."""
        started = time.perf_counter()
        rid = request_id(headers)
        parent = tracecontext.extract(headers)
        attributes: dict[str, Any] = {n.HTTP_REQUEST_METHOD: "POST", n.HTTP_ROUTE: route,
                                      n.GATEWAY_REQUEST_ID: rid}
        if url is not None:
            server_attributes(attributes, *url)
        span = self.telemetry.tracer.start_span(
            f"POST {route}", context=parent, kind=SpanKind.SERVER, attributes=attributes)
        self.telemetry.instruments.tallies.active.add((dialect.operation,), 1)
        return Visit(dialect, rid, span, context_with(span, parent), started)

    async def authenticate(self, visit: Visit, headers: Mapping[str, str]) -> None:
        visit.principal = await self.authenticator.authenticate(headers)

    def admit(self, visit: Visit, raw: bytes, headers: Mapping[str, str]) -> Call:
        """The call for this body: parsed by the dialect, its model looked up and allowed."""
        principal = visit.principal
        assert principal is not None  # authenticate() came first
        client = visit.dialect.parse(raw)
        model = self.config.lookup(client.model)
        if model is None:
            raise errors.ModelNotFound(
                f"The model '{printable(client.model)}' does not exist or you do not have "
                "access to it.", param="model")
        visit.model_label = model.name
        if not model.serves(client.operation):
            raise errors.InvalidRequest(_wrong_operation(model.name, client.operation),
                                        param="model", code="model_not_supported")
        if principal.allowed_models is not None and model.name not in principal.allowed_models:
            raise errors.PermissionDenied(
                f"key '{principal.alias}' is not allowed to use model '{model.name}'",
                param="model")
        call = Call(request_id=visit.request_id, client=client, model=model,
                    server_span=visit.span, server_context=visit.context, headers=headers,
                    principal=principal, started=visit.started)
        visit.call = call
        return call

    async def close(self, visit: Visit, status: int, error_type: str | None) -> None:
        """The call's end: its status, the `on_finish` hooks, metrics and the SERVER span."""
        call = visit.call
        if call is not None:
            call.status = status
            call.error_type = error_type
            for hook in self._on_finish:
                await hook.on_finish(call)
        self._end(visit, call, status, error_type)
        self.telemetry.instruments.tallies.active.add((visit.dialect.operation,), -1)

    def _end(self, visit: Visit, call: Call | None, status: int, error_type: str | None) -> None:
        principal, span = visit.principal, visit.span
        operation, model_label = visit.dialect.operation, visit.model_label
        alias = principal.alias if principal else "unauthenticated"
        team = principal.team if principal else "unauthenticated"
        provider = call.served_provider if call and call.served_provider else ""
        if not provider and call is not None:
            provider = self.config.provider_for(call.model).provider_name
        instruments = self.telemetry.instruments
        instruments.tallies.requests.add(
            (operation, model_label, provider, status_label(status), error_type, alias, team))
        overhead = 0.0
        if call is not None:
            self._record_spend(call, alias, team, operation)
            overhead = call.overhead_s(time.perf_counter())
            record_keyed(instruments.overhead, overhead, (operation, model_label),
                         _overhead_attributes, call.server_context)
        if span.is_recording():
            final: dict[str, Any] = {n.HTTP_RESPONSE_STATUS_CODE: status,
                                     n.GATEWAY_KEY_ALIAS: alias, n.GATEWAY_TEAM: team}
            if call is not None:
                final[n.GATEWAY_MODEL_REQUESTED] = call.model.name
                final[n.GATEWAY_OVERHEAD_S] = overhead
                if call.served_model is not None:
                    final[n.GATEWAY_MODEL_SERVED] = call.served_model.name
                if call.fallback_reason is not None:
                    final[n.GATEWAY_FALLBACK_REASON] = call.fallback_reason
                if call.attempts:
                    final[n.GATEWAY_COST_USD] = float(call.cost)
            if error_type is not None:
                final[n.ERROR_TYPE] = error_type
            if status >= 500 or (error_type is not None and status >= 400):
                span.set_status(Status(StatusCode.ERROR, error_type))
            span.set_attributes(final)
        span.end()

    def _record_spend(self, call: Call, alias: str, team: str, operation: str) -> None:
        instruments = self.telemetry.instruments
        for attempt in call.attempts:
            usage = attempt.usage
            if usage is None or not (usage.input or usage.output):
                continue
            key = (operation, attempt.model.name, attempt.provider_name, alias, team)
            add_keyed(instruments.cost, float(attempt.cost), key, _cost_attributes,
                      call.server_context)
            tokens = instruments.tallies.tokens
            for kind, value in (("input", usage.input), ("output", usage.output),
                                ("cache_read", usage.cache_read), ("reasoning", usage.reasoning)):
                if value:
                    tokens.add((*key, kind), value)


def server_attributes(attributes: dict[str, Any], scheme: str, path: str, host: str) -> None:
    """The HTTP server conventions' `url.scheme`, `url.path` (required) and
    `server.address`/`server.port` (from the Host header) into `attributes`."""
    attributes[n.URL_SCHEME] = scheme
    attributes[n.URL_PATH] = path
    address, port = host, ""
    if host.startswith("["):  # [IPv6]:port
        end = host.find("]")
        address, port = host[1:end], host[end + 2:]
    elif host.count(":") == 1:
        address, _, port = host.partition(":")
    if address:
        attributes[n.SERVER_ADDRESS] = address
    if port.isdigit():
        attributes[n.SERVER_PORT] = int(port)


def _overhead_attributes(key: tuple[Any, ...]) -> dict[str, Any]:
    return {n.GEN_AI_OPERATION_NAME: key[0], n.GEN_AI_REQUEST_MODEL: key[1]}


def _cost_attributes(key: tuple[Any, ...]) -> dict[str, Any]:
    operation, model, provider, alias, team = key
    return {n.GEN_AI_OPERATION_NAME: operation, n.GEN_AI_REQUEST_MODEL: model,
            n.GEN_AI_PROVIDER_NAME: provider, n.GATEWAY_KEY_ALIAS: alias, n.GATEWAY_TEAM: team}


def _wrong_operation(model: str, operation: str) -> str:
    if operation == n.OP_EMBEDDINGS:
        return f"'{model}' is a chat model, not an embedding model; use it on /v1/chat/completions."
    return f"'{model}' is an embedding model: use it on /v1/embeddings, not for {operation}."


def printable(name: str) -> str:
    """A client-supplied model name, shortened and stripped for an error message."""
    cleaned = "".join(ch for ch in name if ch.isprintable())
    return cleaned[:100] + ("..." if len(cleaned) > 100 else "")

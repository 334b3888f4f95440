"""A proxied call's life around the chain: request id, SERVER span, the caller's
key, the canonical call (parsed by its dialect), model lookup and permissions on
the way in; the final status, the per-request metrics and the `on_finish` hooks
on the way out. Framework-neutral: the edge hands it headers and body bytes.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, cast

from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from gateway import attribution, errors
from gateway.attribution_config import TagLabels
from gateway.call import Call, Principal
from gateway.config import GatewayConfig
from gateway.coreconfig import ModelConfig
from gateway.dialects.base import Dialect, RoutedDialect
from gateway.fastpaths import (
    AttributeBlock,
    add_keyed,
    context_with,
    end_span,
    record_keyed,
    recording,
    start_span,
)
from gateway.hooks import Authenticator, CallHook, overriding
from gateway.patternprices import model_lookup
from gateway.pricing import cache_savings_usd
from gateway.telemetry import names as n
from gateway.telemetry import tracecontext
from gateway.telemetry.content import ContentMode
from gateway.telemetry.logs import within
from gateway.telemetry.setup import Telemetry
from gateway.telemetry.tallies import Tallies
from gateway.telemetry.vocabulary import status_label

_log = logging.getLogger("gateway.requests")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_MAX_URLS = 1024  # distinct (scheme, path, Host) whose SERVER attributes are kept
UNKNOWN_MODEL = "_unknown"


def request_id(headers: Mapping[str, str]) -> str:
    incoming = headers.get("x-request-id")
    if incoming and _REQUEST_ID.match(incoming):
        return incoming
    # Not a secret, so the fast PRNG will do (uuid4 costs a urandom syscall).
    return f"{random.getrandbits(128):032x}"


class RequestUrl(Protocol):
    """The scheme and authority a request was sent to (an aiohttp request is one): the
    SERVER span's url.scheme and server.address/server.port. Reading them may run code of
    the web framework's, so the lifecycle reads them only for a request it has not seen the
    like of."""

    @property
    def scheme(self) -> str: ...

    @property
    def host(self) -> str: ...  # the Host header, else the address the request came in on


class Visit:
    """One proxied request from its headers to its last byte; the `Call` once admitted.

    `open` sets the dialect, request id, span, context and start; `authenticate` the
    principal; `admit` the model label and the call (`admit_stored` the label alone, for
    a call on a stored response); nothing else writes them.
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
        self.capture = config.telemetry.capture_content
        # What every request reads of the telemetry (interpreted objects: each read of
        # theirs is a generic attribute lookup), read once here.
        self._tracer = telemetry.tracer
        self._instruments = telemetry.instruments
        self._tallies: Tallies = telemetry.instruments.tallies
        self._content = telemetry.content  # the capture mode, before per-caller narrowing
        # The allow-listed tags as labels of the gateway's per-request series (none unless
        # the operator lists tag names: `attribution.metric_tags`).
        self.tag_labels = TagLabels(config.attribution)
        self._tag_labelled = self.tag_labels.enabled  # fixed with the config
        self._unpriced_logged: set[str] = set()  # models whose unpriced calls were logged
        self._on_finish = overriding(self.hooks, "on_finish")
        # config.lookup, with each id a price-less pattern entry serves priced on its own
        self.lookup: Callable[[str], ModelConfig | None] = model_lookup(config)
        # The config is frozen: what `admit` would ask it (interpreted calls) on every
        # request is kept here, per configured name and operation.
        self._models = dict(config.models)  # by exact name, as `lookup` looks first
        self._serving: dict[tuple[str, str], bool] = {}  # (model, operation) -> served
        # (method, route, path, Host header) -> the SERVER span's name and its attributes but
        # the request id (method, route, url and server): the same on every request of a
        # listener's route, so worked out once, as one block for the span encoder (path and
        # Host are the client's: at most _MAX_URLS kept).
        self._server_starts: dict[tuple[str, str, str | None, str | None],
                                  tuple[str, AttributeBlock]] = {}

    def open(self, headers: Mapping[str, str], dialect: Dialect, route: str,
             where: RequestUrl | None = None, path: str = "", method: str = "POST") -> Visit:
        """`where` and `path`: where the request was sent, for the SERVER span (read only
        the first time its route, path and Host header are seen)."""
        started = time.perf_counter()
        rid = request_id(headers)
        parent = tracecontext.extract(headers)
        host = headers.get("host")
        key = (method, route, path if where is not None else None, host)
        start = self._server_starts.get(key)
        # Once per route, path and Host (bounded below). The scheme is not in the key: it is
        # the listener's, and the gateway's listeners are all plain HTTP.
        if start is None:
            start = self._server_start(key, where, path, host)
        span = start_span(self._tracer, start[0], parent, SpanKind.SERVER, start[1],
                          {n.GATEWAY_REQUEST_ID: rid})
        self._tallies.active.add((dialect.operation,), 1)
        return Visit(dialect, rid, span, context_with(span, parent), started)

    def _server_start(self, key: tuple[str, str, str | None, str | None],
                      where: RequestUrl | None, path: str, host: str | None
                      ) -> tuple[str, AttributeBlock]:
        """The SERVER span's name and fixed attributes for `key` (method, route, path, Host
        header), kept when the Host header says where the request went: a request with
        none (the listener's address stands in) or with an absolute-form target (its
        authority does) is worked out each time."""
        method, route = key[0], key[1]
        fixed: dict[str, Any] = {n.HTTP_REQUEST_METHOD: method, n.HTTP_ROUTE: route}
        address = host
        if where is not None:
            address = where.host
            server_attributes(fixed, where.scheme, path, address)
        start = (f"{method} {route}", AttributeBlock(fixed))
        if address == host:
            if len(self._server_starts) >= _MAX_URLS:
                self._server_starts.clear()
            self._server_starts[key] = start
        return start

    async def authenticate(self, visit: Visit, headers: Mapping[str, str]) -> None:
        visit.principal = await self.authenticator.authenticate(headers)

    def admit_stored(self, visit: Visit, model: str) -> None:
        """A call on a stored response (no `Call`, no tokens): labelled with the model that
        made the response."""
        visit.model_label = model

    def admit(self, visit: Visit, raw: bytes, headers: Mapping[str, str],
              query: str = "",
              routed: tuple[Mapping[str, str], Mapping[str, str]] | None = None) -> Call:
        """The call for this body: parsed by the dialect (with the route's parameters and
        query when `routed`: see dialects.base.RoutedDialect), its model looked up and
        allowed (`query`: the request's query string, for a dialect that forwards some of
        it)."""
        principal = visit.principal
        assert principal is not None  # authenticate() came first
        if routed is None:
            client = visit.dialect.parse(raw)
        else:
            client = cast(RoutedDialect, visit.dialect).parse_routed(raw, *routed)
        model = self._models.get(client.model) or self.lookup(client.model)
        if model is None:
            raise errors.ModelNotFound(
                f"The model '{printable(client.model)}' does not exist or you do not have "
                "access to it.", param="model")
        visit.model_label = model.name
        if not self._serves(model, client.operation):
            raise errors.InvalidRequest(_wrong_operation(model.name, client.operation),
                                        param="model", code="model_not_supported")
        if principal.allowed_models is not None and model.name not in principal.allowed_models:
            raise errors.PermissionDenied(
                f"key '{principal.alias}' is not allowed to use model '{model.name}'",
                param="model")
        content = self._content
        if content is not ContentMode.NO_CONTENT and not self.capture.allows(principal.alias,
                                                                             principal.team):
            content = ContentMode.NO_CONTENT  # the config narrows capture for this caller
        call = Call(request_id=visit.request_id, client=client, model=model,
                    server_span=visit.span, server_context=visit.context, headers=headers,
                    principal=principal, started=visit.started, content=content,
                    query=query)
        visit.call = call
        return call

    def _serves(self, model: ModelConfig, operation: str) -> bool:
        key = (model.name, operation)
        served = self._serving.get(key)
        if served is None:  # configured models by the dialects' operations: bounded
            served = self._serving[key] = model.serves(operation)
        return served

    async def close(self, visit: Visit, status: int, error_type: str | None) -> None:
        """The call's end: its status, the `on_finish` hooks, metrics and the SERVER span."""
        call = visit.call
        if call is not None:
            call.status = status
            call.error_type = error_type
            for hook in self._on_finish:
                await hook.on_finish(call)
        if error_type is not None and (call is None or not call.attempts):
            _refused(visit, status, error_type)
        self._end(visit, call, status, error_type)
        self._tallies.active.add((visit.dialect.operation,), -1)

    def _end(self, visit: Visit, call: Call | None, status: int, error_type: str | None) -> None:
        principal, span = visit.principal, visit.span
        operation, model_label = visit.dialect.operation, visit.model_label
        alias = principal.alias if principal else "unauthenticated"
        team = principal.team if principal else "unauthenticated"
        provider = call.served_provider if call and call.served_provider else ""
        if not provider and call is not None:
            provider = self.config.provider_for(call.model).provider_name
        instruments = self._instruments
        labels: tuple[tuple[str, str], ...] = ()
        if call is not None and self._tag_labelled:
            labels = self.tag_labels(attribution.of(call.state))
        key = (operation, model_label, provider, status_label(status), error_type, alias, team)
        self._tallies.requests.add((*key, labels) if labels else key)
        overhead = 0.0
        if call is not None:
            self._record_spend(call, alias, team, operation, labels)
            overhead = call.overhead_s(time.perf_counter())
            record_keyed(instruments.overhead, overhead, (operation, model_label),
                         _overhead_attributes, call.server_context)
        final: dict[str, Any] | None = None
        if recording(span):
            final = {n.HTTP_RESPONSE_STATUS_CODE: status, n.GATEWAY_KEY_ALIAS: alias,
                     n.GATEWAY_TEAM: team}
            if call is not None:
                final[n.GATEWAY_MODEL_REQUESTED] = call.model.name
                final[n.GATEWAY_OVERHEAD_S] = overhead
                if call.served_model is not None:
                    final[n.GATEWAY_MODEL_SERVED] = call.served_model.name
                if call.fallback_reason is not None:
                    final[n.GATEWAY_FALLBACK_REASON] = call.fallback_reason
                if call.attempts:
                    final[n.GATEWAY_COST_USD] = float(call.cost)
                    if call.unpriced:
                        final[n.GATEWAY_COST_UNPRICED] = True  # the cost leaves those out
            if error_type is not None:
                final[n.ERROR_TYPE] = error_type
            if status >= 500 or (error_type is not None and status >= 400):
                span.set_status(Status(StatusCode.ERROR, error_type))
        end_span(span, final)

    def _record_spend(self, call: Call, alias: str, team: str, operation: str,
                      labels: tuple[tuple[str, str], ...]) -> None:
        """Cost and tokens by key and team (and the allow-listed tags' `labels`)."""
        instruments = self._instruments
        for attempt in call.attempts:
            usage = attempt.usage
            if usage is None or not (usage.input or usage.output):
                continue
            model = attempt.model
            key: tuple[Any, ...] = (operation, model.name, attempt.provider_name, alias, team)
            labelled = (*key, labels) if labels else key
            if model.pricing.priced:
                add_keyed(instruments.cost, float(attempt.cost), labelled, _cost_attributes,
                          call.server_context)
                if usage.cache_read:
                    add_keyed(instruments.cache_savings,
                              cache_savings_usd(usage, model.pricing), labelled,
                              _cost_attributes, call.server_context)
            else:
                self._unpriced(model.name, call)
            tokens = self._tallies.tokens
            for kind, value in (("input", usage.input), ("output", usage.output),
                                ("cache_read", usage.cache_read),
                                ("cache_write", usage.cache_creation),
                                ("reasoning", usage.reasoning)):
                if value:
                    tokens.add((*key, kind, labels) if labels else (*key, kind), value)

    def _unpriced(self, model: str, call: Call) -> None:
        """A call to a model with no price: counted, and logged once per model."""
        add_keyed(self._instruments.unpriced_calls, 1, (model,), _unpriced_attributes,
                  call.server_context)
        if model not in self._unpriced_logged:
            self._unpriced_logged.add(model)
            _log.warning("model '%s' has no price (not in the price catalog, none in the "
                         "config): its calls are served and counted in "
                         "gateway_unpriced_calls_total, their cost is unknown", model)


def _refused(visit: Visit, status: int, error_type: str) -> None:
    """Log a request the gateway answered itself with an error (auth, permissions, limits,
    budgets, bad requests), in its SERVER span's context; never the request's content.
    Left out: a client that left (499) and unexpected errors (the edge logs those)."""
    if status == 499 or error_type == n.ERROR_OTHER:
        return
    alias = visit.principal.alias if visit.principal is not None else "unauthenticated"
    with within(visit.context):
        _log.info("request %s refused: %d %s (key %s, model %s)", visit.request_id, status,
                  error_type, alias, visit.model_label)


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


def _unpriced_attributes(key: tuple[Any, ...]) -> dict[str, Any]:
    return {n.GEN_AI_REQUEST_MODEL: key[0]}


def _overhead_attributes(key: tuple[Any, ...]) -> dict[str, Any]:
    return {n.GEN_AI_OPERATION_NAME: key[0], n.GEN_AI_REQUEST_MODEL: key[1]}


def _cost_attributes(key: tuple[Any, ...]) -> dict[str, Any]:
    """(operation, model, provider, alias, team[, tag label pairs]) as attributes."""
    attrs = {n.GEN_AI_OPERATION_NAME: key[0], n.GEN_AI_REQUEST_MODEL: key[1],
             n.GEN_AI_PROVIDER_NAME: key[2], n.GATEWAY_KEY_ALIAS: key[3], n.GATEWAY_TEAM: key[4]}
    if len(key) > 5:
        attrs.update(key[5])
    return attrs


def _wrong_operation(model: str, operation: str) -> str:
    if operation == n.OP_EMBEDDINGS:
        return f"'{model}' is a chat model, not an embedding model; use it on /v1/chat/completions."
    return f"'{model}' is an embedding model: use it on /v1/embeddings, not for {operation}."


def printable(name: str) -> str:
    """A client-supplied model name, shortened and stripped for an error message."""
    cleaned = "".join(ch for ch in name if ch.isprintable())
    return cleaned[:100] + ("..." if len(cleaned) > 100 else "")

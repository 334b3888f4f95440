"""The request path for the proxied routes: SERVER span, auth, body, model
lookup, dispatch, and the per-request metrics, with every error answered in
OpenAI's shape and never a traceback.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from gateway import errors
from gateway.attempt import call_headers, overhead_s
from gateway.call import Call, Principal
from gateway.config import GatewayConfig
from gateway.dispatch import Dispatcher
from gateway.hooks import Authenticator
from gateway.request import ClientRequest
from gateway.resilience.drain import InFlight
from gateway.telemetry import names as n
from gateway.telemetry import tracecontext
from gateway.telemetry.hotmetrics import add_keyed, record_keyed
from gateway.telemetry.litespan import context_with
from gateway.telemetry.setup import Telemetry
from gateway.telemetry.tracecontext import trace_headers

_log = logging.getLogger(__name__)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
UNKNOWN_MODEL = "_unknown"

Parser = Callable[[bytes], ClientRequest]


def request_id(request: web.Request) -> str:
    incoming = request.headers.get("x-request-id")
    if incoming and _REQUEST_ID.match(incoming):
        return incoming
    # Not a secret, so the fast PRNG will do (uuid4 costs a urandom syscall).
    return f"{random.getrandbits(128):032x}"


def error_response(error: errors.GatewayError, extra: dict[str, str]) -> web.Response:
    headers = {**error.headers, **extra}
    return web.Response(body=error.body_bytes(), status=error.status, headers=headers,
                        content_type="application/json")


class Pipeline:
    """Handles one proxied request from headers to the last byte."""

    def __init__(self, config: GatewayConfig, telemetry: Telemetry, authenticator: Authenticator,
                 dispatcher: Dispatcher) -> None:
        self.config = config
        self.telemetry = telemetry
        self.authenticator = authenticator
        self.dispatcher = dispatcher
        self.max_body = config.server.max_body_bytes
        self.inflight = InFlight()  # what a graceful shutdown waits for

    async def handle(self, request: web.Request, parse: Parser, operation: str,
                     route: str) -> web.StreamResponse:
        started = time.perf_counter()
        task = self.inflight.enter()
        rid = request_id(request)
        parent = tracecontext.extract(request.headers)
        tracer = self.telemetry.tracer
        span = tracer.start_span(f"POST {route}", context=parent, kind=SpanKind.SERVER,
                                 attributes={n.HTTP_REQUEST_METHOD: "POST", n.HTTP_ROUTE: route,
                                             n.GATEWAY_REQUEST_ID: rid})
        context = context_with(span, parent)
        active = self.telemetry.instruments.tallies.active
        active_key = (operation,)
        active.add(active_key, 1)
        call: Call | None = None
        principal: Principal | None = None
        model_label = UNKNOWN_MODEL
        status = 500
        error_type: str | None = None
        try:
            principal = await self.authenticator.authenticate(request.headers)
            client = parse(await self._read_body(request))
            model = self.config.models.get(client.model)
            if model is None:
                raise errors.ModelNotFound(
                    f"The model '{_printable(client.model)}' does not exist or you do not have "
                    "access to it.", param="model")
            model_label = model.name
            if principal.allowed_models is not None and model.name not in principal.allowed_models:
                raise errors.PermissionDenied(
                    f"key '{principal.alias}' is not allowed to use model '{model.name}'",
                    param="model")
            call = Call(request_id=rid, client=client, model=model, server_span=span,
                        server_context=context, headers=request.headers, principal=principal,
                        started=started)
            response = await self.dispatcher.dispatch(call, request)
            status = response.status
            error_type = call.error_type or (call.attempts[-1].error_type if call.attempts else None)
            return response
        except errors.GatewayError as exc:
            status = exc.status
            error_type = exc.error_type
            if call is not None:
                call.status, call.error_type = status, error_type
            headers = call_headers(call) if call is not None else trace_headers(span, rid)
            return error_response(exc, headers)
        except Exception:
            _log.exception("unexpected error handling request %s", rid)
            status, error_type = 500, n.ERROR_OTHER
            error = errors.GatewayError("The gateway hit an unexpected error; see its logs "
                                        f"for request {rid}.")
            return error_response(error, trace_headers(span, rid))
        except BaseException:
            # Cancelled: by the client leaving, or by the gateway (shutdown deadline).
            transport = request.transport
            gone = transport is None or transport.is_closing()
            status, error_type = 499, n.ERROR_CLIENT_DISCONNECT if gone else n.ERROR_CANCELLED
            raise
        finally:
            if call is not None:
                call.status = status
                call.error_type = error_type
                await self.dispatcher.finish(call)
            self._end(span, call, principal, operation, model_label, status, error_type, started)
            active.add(active_key, -1)
            self.inflight.leave(task)

    async def _read_body(self, request: web.Request) -> bytes:
        length = request.content_length
        if length is not None and length > self.max_body:
            raise self._too_large()
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise self._too_large() from None

    def _too_large(self) -> errors.PayloadTooLarge:
        return errors.PayloadTooLarge(
            f"The request body is larger than the gateway's limit of {self.max_body} bytes.")

    def _end(self, span: trace.Span, call: Call | None, principal: Principal | None,
             operation: str, model_label: str, status: int, error_type: str | None,
             started: float) -> None:
        alias = principal.alias if principal else "unauthenticated"
        team = principal.team if principal else "unauthenticated"
        provider = call.served_provider if call and call.served_provider else ""
        if not provider and call is not None:
            provider = self.config.provider_for(call.model).provider_name
        instruments = self.telemetry.instruments
        instruments.tallies.requests.add(
            (operation, model_label, provider, status, error_type, alias, team))
        overhead = 0.0
        if call is not None:
            self._record_spend(call, alias, team, operation)
            overhead = overhead_s(call)
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


def _overhead_attributes(key: tuple[Any, ...]) -> dict[str, Any]:
    return {n.GEN_AI_OPERATION_NAME: key[0], n.GEN_AI_REQUEST_MODEL: key[1]}


def _cost_attributes(key: tuple[Any, ...]) -> dict[str, Any]:
    operation, model, provider, alias, team = key
    return {n.GEN_AI_OPERATION_NAME: operation, n.GEN_AI_REQUEST_MODEL: model,
            n.GEN_AI_PROVIDER_NAME: provider, n.GATEWAY_KEY_ALIAS: alias, n.GATEWAY_TEAM: team}


def _printable(name: str) -> str:
    """A client-supplied model name, shortened and stripped for an error message."""
    cleaned = "".join(ch for ch in name if ch.isprintable())
    return cleaned[:100] + ("..." if len(cleaned) > 100 else "")

"""The edge of the proxied routes: the one place a proxied request meets aiohttp.

For each dialect's routes: read the body (`body.py`: size-limited, inflated under a
cap, each pause bounded), have the lifecycle open
and admit the call, ask the chain for an answer, and turn it into an HTTP
response: a JSON body, or a stream the relay runs. Status codes and response
headers are decided here; errors are answered in the dialect's shape, never as
a traceback, and scrubbed of every configured secret on their way out (as are
the upstream headers passed on).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from gateway import errors
from gateway.call import Call
from gateway.dialects.base import Dialect
from gateway.edge.body import BodyLimits, read_body
from gateway.edge.handlers import stamped
from gateway.edge.responses import error_response
from gateway.path.answer import EventStream, JsonAnswer
from gateway.path.chain import Chain
from gateway.path.lifecycle import Lifecycle, Visit
from gateway.path.relay import relay
from gateway.redact import Scrubber
from gateway.resilience.drain import InFlight
from gateway.telemetry import names as n
from gateway.telemetry.logs import within
from gateway.telemetry.tracecontext import trace_headers

_log = logging.getLogger(__name__)


def dialect_error(dialect: Dialect, error: errors.GatewayError, extra: dict[str, str],
                  scrubber: Scrubber | None = None) -> web.Response:
    """An error in `dialect`'s shape (scrubbed, when it may quote an upstream)."""
    body = dialect.error_body(error)
    if scrubber is not None:
        body = scrubber.bytes(body)
    return error_response(error, extra, body)


class Proxy:
    """Serves the proxied routes of every dialect."""

    def __init__(self, lifecycle: Lifecycle, chain: Chain, limits: BodyLimits,
                 inflight: InFlight) -> None:
        self.lifecycle = lifecycle
        self.chain = chain
        self.limits = limits
        self.inflight = inflight  # what a graceful shutdown waits for
        self.scrubber = chain.runner.scrubber
        self._shortest_secret = min((len(s) for s in self.scrubber.secrets), default=1 << 30)

    def handler(self, dialect: Dialect, route: str
                ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """The aiohttp handler of one of `dialect`'s routes (a routed dialect's, see
        dialects.base.RoutedDialect, gets the route's parameters and query)."""
        routed = getattr(dialect, "parse_routed", None) is not None
        query_key: tuple[str, str] | None = getattr(dialect, "query_key", None)

        async def handle(request: web.Request) -> web.StreamResponse:
            if request.method != "POST":
                error = errors.MethodNotAllowed(
                    f"{request.method} is not allowed on {request.path}; use POST.")
                return stamped(request, route, dialect_error(dialect, error, {"allow": "POST"}))
            if not routed:
                return await self.handle(request, dialect, route)
            headers = _with_query_key(request, query_key)
            return await self.handle(request, dialect, route, headers,
                                     (request.match_info, request.query))
        return handle

    async def handle(self, request: web.Request, dialect: Dialect, route: str,
                     headers: Mapping[str, str] | None = None,
                     routed: tuple[Mapping[str, str], Mapping[str, str]] | None = None
                     ) -> web.StreamResponse:
        task = self.inflight.enter()
        if headers is None:
            headers = request.headers
        # The path of the URL the router worked out already (the request's own is another read).
        visit = self.lifecycle.open(headers, dialect, route, request, request.rel_url.path)
        try:
            response, status, error_type = await self._respond(request, dialect, visit,
                                                               headers, routed)
        except BaseException as exc:
            # Cancelled: by the client leaving, or by the gateway (shutdown deadline).
            transport = request.transport
            gone = transport is None or transport.is_closing()
            status, error_type = 499, n.ERROR_CLIENT_DISCONNECT if gone else n.ERROR_CANCELLED
            await self._close(visit, status, error_type, task)
            raise exc  # by name: a bare raise after an await loses the exception when compiled
        await self._close(visit, status, error_type, task)
        return response

    async def _respond(self, request: web.Request, dialect: Dialect, visit: Visit,
                       headers: Mapping[str, str],
                       routed: tuple[Mapping[str, str], Mapping[str, str]] | None
                       ) -> tuple[web.StreamResponse, int, str | None]:
        """The response (an answer, or the error in the dialect's shape), its status and
        error type; only a cancellation raises."""
        life = self.lifecycle
        try:
            await life.authenticate(visit, headers)
            call = life.admit(visit, await read_body(request, self.limits), headers,
                              request.query_string, routed)
            answer = await self.chain.dispatch(call)
            if isinstance(answer, JsonAnswer):
                return self._json(call, dialect, answer), answer.status, answer.result.error_type
            response = await self._stream(request, call, dialect, answer)
            return response, 200, call.attempts[-1].error_type if call.attempts else None
        except errors.GatewayError as exc:
            error = dialect_error(dialect, exc, visit.trace_headers(), self.scrubber)
            return error, exc.status, exc.error_type
        except Exception:
            with within(visit.context):  # the record carries the request's trace
                _log.exception("unexpected error handling request %s", visit.request_id)
            unexpected = errors.GatewayError("The gateway hit an unexpected error; see its "
                                             f"logs for request {visit.request_id}.")
            return dialect_error(dialect, unexpected, visit.trace_headers()), 500, n.ERROR_OTHER

    async def _close(self, visit: Visit, status: int, error_type: str | None,
                     task: asyncio.Task[Any] | None) -> None:
        try:
            await self.lifecycle.close(visit, status, error_type)
            admitted = visit.call  # the answer waits for the writes held for it (the
            if admitted is not None and admitted.holds is not None:  # spend ledger's
                await admitted.held()  # row), which commit while close does its work
        finally:  # a client that leaves meanwhile cancels the wait, not the leaving
            self.inflight.leave(task)

    def _headers(self, call: Call, dialect: Dialect, answer: JsonAnswer | EventStream
                 ) -> dict[str, str]:
        upstream = answer.upstream_headers
        headers = {name: value for name in dialect.pass_headers if (value := upstream.get(name))}
        for name, value in headers.items():
            if len(value) >= self._shortest_secret:  # rate-limit values are short: rarely
                headers[name] = self.scrubber.text(value)
        headers.update(trace_headers(call.server_span, call.request_id))
        headers["x-gateway-model"] = answer.model.name
        return headers

    def _json(self, call: Call, dialect: Dialect, answer: JsonAnswer) -> web.Response:
        headers = self._headers(call, dialect, answer)
        headers["x-gateway-overhead-ms"] = f"{call.overhead_s(answer.ready_at) * 1000:.3f}"
        return web.Response(body=answer.body, status=answer.status, headers=headers,
                            content_type="application/json")

    async def _stream(self, request: web.Request, call: Call, dialect: Dialect,
                      stream: EventStream) -> web.StreamResponse:
        """Commit to the client and have the relay run the stream to its end."""
        try:
            if call.holds is not None:  # a stream's journal row: committed before any byte
                refused = await call.held()
                if refused is not None:
                    raise refused
            headers = self._headers(call, dialect, stream)
            headers["content-type"] = "text/event-stream; charset=utf-8"
            headers["cache-control"] = "no-cache"
            out = web.StreamResponse(status=200, headers=headers)
            await relay(stream, out, out.prepare(request), request)
        except BaseException as exc:
            await self.chain.settle(call, stream, aborted=True)
            raise exc  # by name, as in handle
        await self.chain.settle(call, stream, aborted=False)
        return out


def _with_query_key(request: web.Request, query_key: tuple[str, str] | None
                    ) -> Mapping[str, str]:
    """The request's headers, plus the key a client sent as a query parameter (Gemini's
    `?key=`) in the header the dialect names, unless that header is there already."""
    if query_key is None:
        return request.headers
    param, header = query_key
    key = request.query.get(param)
    if not key or header in request.headers:
        return request.headers
    headers = CIMultiDict(request.headers)
    headers[header] = key
    return headers

"""The stored-response routes of the Responses API: `GET` and `DELETE
/v1/responses/{id}`, `POST /v1/responses/{id}/cancel` and `GET
/v1/responses/{id}/input_items`, each forwarded to the provider that created the
response (`gateway/stored/owners.py` remembers which), with its own key.

Each call goes through the lifecycle as a proxied one does (request id, SERVER span,
the key, `gateway_requests_total` and the active gauge, labelled with the operation
`responses.stored` and the model that made the response) and takes one request from
the key's rate limit; it uses no tokens, so no `Call` is made and nothing reaches the
token, cost or spend records. The caller must be allowed the model that created the
response; an id the gateway did not see created (or created through a translation,
where nothing upstream keeps it) is a 404 in OpenAI's shape.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from aiohttp import web

from gateway import errors
from gateway.config import GatewayConfig
from gateway.dialects.openai_responses.responses import OpenAIResponses
from gateway.edge.responses import error_response
from gateway.path.lifecycle import Lifecycle, Visit
from gateway.providers.base import Provider, UpstreamRequest
from gateway.redact import Scrubber
from gateway.resilience.ratelimit import RateLimitHook
from gateway.stored.owners import ResponseOwners
from gateway.telemetry import names as n
from gateway.telemetry.logs import within
from gateway.telemetry.vocabulary import status_error_type

_log = logging.getLogger(__name__)

ROUTES = (("/v1/responses/{response_id}", ("GET", "DELETE"), ""),
          ("/v1/responses/{response_id}/cancel", ("POST",), "/cancel"),
          ("/v1/responses/{response_id}/input_items", ("GET",), "/input_items"))
# gen_ai.operation.name of these calls (a custom value: none of the conventions' fits)
OPERATION: Final = "responses.stored"
_PASS = ("x-request-id", "openai-processing-ms", "openai-version")
# What a response id looks like (`resp_...`): anything else is never sent upstream.
_ID = re.compile(r"^[A-Za-z0-9_-]{1,200}$")


def _stored_calls() -> OpenAIResponses:
    """The Responses dialect as the lifecycle sees a call on a stored response: OpenAI's
    error shapes, its own operation label. An instance attribute, not a subclass: the
    dialect's methods are compiled and accept only its own class."""
    dialect = OpenAIResponses()
    dialect.operation = OPERATION
    return dialect


class NotStored(errors.GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"
    error_type = "not_found"


class StoredResponses:
    """Forwards calls on stored responses to the provider that created them."""

    def __init__(self, config: GatewayConfig, owners: ResponseOwners,
                 providers: Mapping[str, Provider], lifecycle: Lifecycle,
                 rate_limits: RateLimitHook | None, scrubber: Scrubber) -> None:
        self.config = config
        self.owners = owners
        self.providers = providers  # filled in when the app starts
        self.lifecycle = lifecycle
        self.rate_limits = rate_limits
        self.scrubber = scrubber
        self.dialect = _stored_calls()

    def handler(self, route: str, action: str
                ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self.handle(request, route, action)
        return handle

    async def handle(self, request: web.Request, route: str, action: str) -> web.Response:
        life = self.lifecycle
        visit = life.open(request.headers, self.dialect, route, request, request.rel_url.path,
                          method=request.method)
        status = 500
        error_type: str | None = n.ERROR_OTHER
        try:
            response = await self._answer(request, action, visit)
            status = response.status
            error_type = status_error_type(status) if status >= 400 else None
        except errors.GatewayError as exc:
            status, error_type = exc.status, exc.error_type
            response = error_response(exc, visit.trace_headers(),
                                      self.scrubber.bytes(exc.body_bytes()))
        except Exception:
            with within(visit.context):
                _log.exception("unexpected error handling request %s", visit.request_id)
            error = errors.GatewayError("The gateway hit an unexpected error; see its logs "
                                        f"for request {visit.request_id}.")
            response = error_response(error, visit.trace_headers(), error.body_bytes())
        except BaseException:
            status, error_type = 499, n.ERROR_CLIENT_DISCONNECT
            raise
        finally:
            await life.close(visit, status, error_type)
        return response

    async def _answer(self, request: web.Request, action: str, visit: Visit) -> web.Response:
        await self.lifecycle.authenticate(visit, request.headers)
        assert visit.principal is not None
        if self.rate_limits is not None:
            await self.rate_limits.take_request(visit.principal.alias, visit.context)
        response = await self.forward(request, action, visit)
        response.headers.update(visit.trace_headers())
        return response

    async def forward(self, request: web.Request, action: str, visit: Visit) -> web.Response:
        principal = visit.principal
        assert principal is not None  # authenticated first
        response_id = request.match_info["response_id"]
        if request.query.get("stream") == "true":
            raise errors.InvalidRequest("The gateway does not resume streams of stored "
                                        "responses; retrieve it without stream=true.",
                                        param="stream")
        owner = await self.owners.owner(response_id) if _ID.match(response_id) else None
        allowed = principal.allowed_models
        if owner is None or (allowed is not None and owner[1] not in allowed):
            raise NotStored(f"Response with id '{response_id[:100]}' not found.")
        provider_name, model_name = owner
        self.lifecycle.admit_stored(visit, model_name)
        provider = self.providers.get(provider_name)
        model = self.config.models.get(model_name)
        if provider is None or model is None:
            raise NotStored(f"Response with id '{response_id[:100]}' was created by model "
                            f"'{model_name}', which the gateway no longer serves.")
        if not provider.config.usable:
            raise errors.ProviderNotConfigured(
                f"provider '{provider_name}' is not configured: its API key variable "
                f"{provider.config.api_key_missing} is not set")
        path = f"/responses/{response_id}{action}"
        if request.query_string:
            path += "?" + request.query_string
        upstream = UpstreamRequest(operation="responses", path=path, body={}, stream=False,
                                   model=model, headers={"x-request-id": visit.request_id},
                                   raw=b"", method=request.method)
        status, body, headers = await self._send(provider, upstream)
        if request.method == "DELETE" and status == 200 and not action:
            await self.owners.forget(response_id)
        return web.Response(body=self.scrubber.bytes(body), status=status, headers=headers,
                            content_type="application/json")

    async def _send(self, provider: Provider, upstream: UpstreamRequest
                    ) -> tuple[int, bytes, dict[str, str]]:
        started = time.perf_counter()
        try:
            answer = await provider.send(upstream)
            body = await answer.read()
        except errors.GatewayError:
            raise
        except Exception as exc:  # transport failures of the HTTP client
            raise errors.UpstreamUnreachable(
                f"the connection to provider '{provider.config.name}' failed: "
                f"{type(exc).__name__}") from None
        elapsed = time.perf_counter() - started
        headers = {name: value for name in _PASS if (value := answer.headers.get(name))}
        headers["x-gateway-upstream-ms"] = f"{elapsed * 1000:.1f}"
        return answer.status, body, headers


def add_stored_routes(router: web.UrlDispatcher, stored: StoredResponses) -> None:
    """The stored-response routes, also without the `/v1` prefix (as chat's are)."""
    for route, methods, action in ROUTES:
        handle = stored.handler(route, action)
        for path in (route, route.removeprefix("/v1")):
            for method in methods:
                router.add_route(method, path, handle)

"""The stored-response routes of the Responses API: `GET` and `DELETE
/v1/responses/{id}`, `POST /v1/responses/{id}/cancel` and `GET
/v1/responses/{id}/input_items`, each forwarded to the provider that created the
response (`gateway/stored/owners.py` remembers which), with its own key.

The caller must be allowed the model that created the response; an id the gateway
did not see created (or created through a translation, where nothing upstream keeps
it) is a 404 in OpenAI's shape.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from gateway import errors
from gateway.config import GatewayConfig
from gateway.edge.handlers import stamped
from gateway.edge.responses import error_response
from gateway.hooks import Authenticator
from gateway.path.lifecycle import request_id
from gateway.providers.base import Provider, UpstreamRequest
from gateway.redact import Scrubber
from gateway.stored.owners import ResponseOwners

ROUTES = (("/v1/responses/{response_id}", ("GET", "DELETE"), ""),
          ("/v1/responses/{response_id}/cancel", ("POST",), "/cancel"),
          ("/v1/responses/{response_id}/input_items", ("GET",), "/input_items"))
_PASS = ("x-request-id", "openai-processing-ms", "openai-version")
# What a response id looks like (`resp_...`): anything else is never sent upstream.
_ID = re.compile(r"^[A-Za-z0-9_-]{1,200}$")


class NotStored(errors.GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"
    error_type = "not_found"


class StoredResponses:
    """Forwards calls on stored responses to the provider that created them."""

    def __init__(self, config: GatewayConfig, owners: ResponseOwners,
                 providers: Mapping[str, Provider], authenticator: Authenticator,
                 scrubber: Scrubber) -> None:
        self.config = config
        self.owners = owners
        self.providers = providers  # filled in when the app starts
        self.authenticator = authenticator
        self.scrubber = scrubber

    def handler(self, route: str, action: str
                ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            try:
                response = await self.forward(request, action)
            except errors.GatewayError as exc:
                response = error_response(exc, {}, self.scrubber.bytes(exc.body_bytes()))
            return stamped(request, route, response)
        return handle

    async def forward(self, request: web.Request, action: str) -> web.Response:
        principal = await self.authenticator.authenticate(request.headers)
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
                                   model=model, headers={"x-request-id": request_id(request.headers)},
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

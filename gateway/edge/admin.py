"""The admin API (`/admin/...`, JSON, described by `gateway/admin/openapi.yaml`) and
the console's static files: thin handlers over `admin.service.AdminService`.

Every admin route checks the admin key first; without admin keys configured they
all answer 403 saying how to turn them on; a wrong or missing key gets 401 and
nothing more. Errors use OpenAI's error shape, like the rest of the gateway.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

import orjson
from aiohttp import web

from gateway import errors
from gateway.admin.auth import OFF_MESSAGE, AdminKeys
from gateway.admin.service import AdminService
from gateway.edge.responses import error_response

_log = logging.getLogger("gateway.admin")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_ADMIN_BODY = 64 * 1024
_STATIC = {"console.js": "text/javascript", "console.css": "text/css"}


class AdminOff(errors.GatewayError):
    status = 403
    type = "invalid_request_error"
    code = "admin_api_disabled"
    error_type = "admin_disabled"


class AdminDenied(errors.GatewayError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_admin_key"
    error_type = "authentication"


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json",
                        headers={"cache-control": "no-store"})


class AdminApi:
    def __init__(self, service: AdminService, keys: AdminKeys) -> None:
        self.service = service
        self.keys = keys

    def guarded(self, handler: Callable[[web.Request], Awaitable[Any]], status: int = 200
                ) -> Handler:
        async def run(request: web.Request) -> web.StreamResponse:
            try:
                if not self.keys.enabled:
                    raise AdminOff(OFF_MESSAGE)
                if not self.keys.check(request.headers.get("Authorization")):
                    raise AdminDenied("A valid admin key is required (Authorization: Bearer "
                                      "<admin key>).")
                return _json(await handler(request), status)
            except errors.GatewayError as exc:
                return error_response(exc, {"cache-control": "no-store"})

        return run

    async def status(self, request: web.Request) -> Any:
        return self.service.status()

    async def list_keys(self, request: web.Request) -> Any:
        return {"keys": await self.service.list_keys()}

    async def create_key(self, request: web.Request) -> Any:
        created = await self.service.create_key(await _body(request))
        _log.info("admin API: key '%s' created (team %s)", created["alias"], created["team"])
        return created

    async def revoke_key(self, request: web.Request) -> Any:
        alias = request.match_info["alias"]
        answer = await self.service.revoke_key(alias)
        _log.info("admin API: key '%s' revoked", alias)
        return answer

    async def rotate_key(self, request: web.Request) -> Any:
        alias = request.match_info["alias"]
        answer = await self.service.rotate_key(alias)
        _log.info("admin API: key '%s' rotated", alias)
        return answer

    async def spend(self, request: web.Request) -> Any:
        return await self.service.spend_report(request.query)

    async def budgets(self, request: web.Request) -> Any:
        return {"budgets": await self.service.budgets()}

    async def calls(self, request: web.Request) -> Any:
        return self.service.recent_calls(request.query)

    async def traffic(self, request: web.Request) -> Any:
        return self.service.traffic(request.query)

    async def resilience(self, request: web.Request) -> Any:
        return self.service.resilience()

    async def config(self, request: web.Request) -> Any:
        return self.service.effective_config()


async def _body(request: web.Request) -> Any:
    raw = await request.content.read(MAX_ADMIN_BODY + 1)
    if len(raw) > MAX_ADMIN_BODY:
        raise errors.PayloadTooLarge(f"admin request bodies are limited to {MAX_ADMIN_BODY} bytes")
    try:
        return orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        raise errors.InvalidRequest("the body is not valid JSON") from None


def add_admin_routes(router: web.UrlDispatcher, api: AdminApi) -> None:
    """Every admin route; `tests/edge/test_admin_openapi.py` keeps them equal to the
    OpenAPI file's paths."""
    g = api.guarded
    routes: dict[str, dict[str, Handler]] = {
        "/admin/status": {"GET": g(api.status)},
        "/admin/keys": {"GET": g(api.list_keys), "POST": g(api.create_key, 201)},
        "/admin/keys/{alias}/revoke": {"POST": g(api.revoke_key)},
        "/admin/keys/{alias}/rotate": {"POST": g(api.rotate_key)},
        "/admin/spend": {"GET": g(api.spend)},
        "/admin/budgets": {"GET": g(api.budgets)},
        "/admin/calls": {"GET": g(api.calls)},
        "/admin/traffic": {"GET": g(api.traffic)},
        "/admin/resilience": {"GET": g(api.resilience)},
        "/admin/config": {"GET": g(api.config)},
    }
    for path, methods in routes.items():
        resource = router.add_resource(path)
        for method, handler in methods.items():
            resource.add_route(method, handler)
            if method == "GET":
                resource.add_route("HEAD", handler)  # as add_get does
        # Any other method: 405 naming the allowed ones (not the catch-all's 404).
        resource.add_route("*", _not_allowed(tuple(methods)))
    router.add_get("/", console_page)
    router.add_get("/console", console_page)
    router.add_get("/console/{name}", console_file)


def _not_allowed(allowed: tuple[str, ...]) -> Handler:
    async def answer(request: web.Request) -> web.StreamResponse:
        error = errors.MethodNotAllowed(
            f"{request.method} is not allowed on {request.path[:200]}; use {' or '.join(allowed)}.")
        return error_response(error, {"allow": ", ".join(allowed), "cache-control": "no-store"})
    return answer


def _static(name: str) -> bytes:
    return resources.files("gateway.admin").joinpath("console", name).read_bytes()


async def console_page(request: web.Request) -> web.Response:
    """The console: a static page that asks for the admin key and reads the admin API."""
    return web.Response(body=_static("index.html"), content_type="text/html",
                        headers={"cache-control": "no-cache",
                                 "content-security-policy": "default-src 'self'; "
                                 "img-src 'self' data:; frame-ancestors 'none'",
                                 "x-content-type-options": "nosniff"})


async def console_file(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    kind = _STATIC.get(name)
    if kind is None:
        return error_response(errors.RouteNotFound(f"Invalid URL (GET {request.path[:200]})"), {})
    return web.Response(body=_static(name), content_type=kind,
                        headers={"cache-control": "no-cache", "x-content-type-options": "nosniff"})

"""Thin HTTP handlers of the gateway's own routes (the proxied ones are `proxy.py`):
each reads what it needs from the app and delegates."""

from __future__ import annotations

import time

import orjson
from aiohttp import web

from gateway import errors
from gateway.edge.responses import error_response
from gateway.state import GATEWAY, GatewayState

MODELS_ROUTE = "/v1/models"
_CREATED = int(time.time())


def _state(request: web.Request) -> GatewayState:
    return request.app[GATEWAY]


def _method_not_allowed(request: web.Request, allowed: str) -> web.Response:
    error = errors.MethodNotAllowed(
        f"{request.method} is not allowed on {request.path}; use {allowed}.")
    return error_response(error, {"allow": allowed})


async def models(request: web.Request) -> web.StreamResponse:
    if request.method != "GET":
        return _method_not_allowed(request, "GET")
    state = _state(request)
    try:
        principal = await state.authenticator.authenticate(request.headers)
    except errors.GatewayError as exc:
        return error_response(exc, {})
    allowed = principal.allowed_models
    data = [
        {
            "id": name,
            "object": "model",
            "created": _CREATED,
            "owned_by": state.config.provider_for(model).provider_name,
        }
        for name, model in state.config.models.items()
        if (allowed is None or name in allowed) and not model.passthrough  # no pattern ids
    ]
    return web.Response(body=orjson.dumps({"object": "list", "data": data}),
                        content_type="application/json")


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    state = _state(request)
    checks = {
        "config": True,
        "telemetry": state.telemetry.enabled or "disabled",
        "accepting": not state.draining,
    }
    ok = not state.draining
    return web.json_response({"status": "ready" if ok else "draining", "checks": checks},
                             status=200 if ok else 503)


async def metrics(request: web.Request) -> web.Response:
    body = _state(request).telemetry.metrics_text()
    return web.Response(body=body, headers={
        "content-type": "text/plain; version=0.0.4; charset=utf-8"})


async def not_found(request: web.Request) -> web.Response:
    error = errors.RouteNotFound(f"Invalid URL ({request.method} {request.path[:200]})")
    return error_response(error, {})

"""Thin HTTP handlers of the gateway's own routes (the proxied ones are `proxy.py`):
each reads what it needs from the app and delegates."""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web
from opentelemetry.trace import SpanKind

from gateway import errors
from gateway.config import ModelConfig
from gateway.edge.responses import error_response
from gateway.path.lifecycle import printable, request_id
from gateway.state import GATEWAY, GatewayState
from gateway.telemetry import names as n
from gateway.telemetry import tracecontext
from gateway.telemetry.tracecontext import trace_headers

MODELS_ROUTE = "/v1/models"
MODEL_ROUTE = "/v1/models/{model}"
_CREATED = int(time.time())


def _state(request: web.Request) -> GatewayState:
    return request.app[GATEWAY]


def stamped(request: web.Request, route: str, response: web.Response) -> web.Response:
    """`x-request-id` and `traceresponse` on a response the lifecycle did not make, with
    a SERVER span of its own (as every proxied call has)."""
    state = _state(request)
    span = state.telemetry.tracer.start_span(
        f"{request.method} {route}", context=tracecontext.extract(request.headers),
        kind=SpanKind.SERVER, attributes={n.HTTP_REQUEST_METHOD: request.method,
                                          n.HTTP_ROUTE: route,
                                          n.HTTP_RESPONSE_STATUS_CODE: response.status})
    response.headers.update(trace_headers(span, request_id(request.headers)))
    span.end()
    return response


def _error(request: web.Request, route: str, error: errors.GatewayError,
           extra: dict[str, str]) -> web.Response:
    return stamped(request, route, error_response(error, extra))


def _method_not_allowed(request: web.Request, allowed: str, route: str) -> web.Response:
    error = errors.MethodNotAllowed(
        f"{request.method} is not allowed on {request.path}; use {allowed}.")
    return _error(request, route, error, {"allow": allowed})


def _model_object(state: GatewayState, name: str, model: ModelConfig) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": _CREATED,
            "owned_by": state.config.provider_for(model).provider_name}


async def models(request: web.Request) -> web.StreamResponse:
    if request.method != "GET":
        return _method_not_allowed(request, "GET", MODELS_ROUTE)
    state = _state(request)
    try:
        principal = await state.authenticator.authenticate(request.headers)
    except errors.GatewayError as exc:
        return _error(request, MODELS_ROUTE, exc, {})
    allowed = principal.allowed_models
    data = [_model_object(state, name, model) for name, model in state.config.models.items()
            if (allowed is None or name in allowed) and not model.passthrough]  # no pattern ids
    body = orjson.dumps({"object": "list", "data": data})
    return stamped(request, MODELS_ROUTE, web.Response(body=body, content_type="application/json"))


async def model(request: web.Request) -> web.StreamResponse:
    """`GET /v1/models/{id}`: one model, as the SDK's `models.retrieve` asks for it."""
    if request.method != "GET":
        return _method_not_allowed(request, "GET", MODEL_ROUTE)
    state = _state(request)
    try:
        principal = await state.authenticator.authenticate(request.headers)
    except errors.GatewayError as exc:
        return _error(request, MODEL_ROUTE, exc, {})
    name = request.match_info["model"]
    found = state.config.models.get(name)
    allowed = principal.allowed_models
    if found is None or (allowed is not None and name not in allowed):
        error = errors.ModelNotFound(f"The model '{printable(name)}' does not exist or you do "
                                     "not have access to it.", param="model")
        return _error(request, MODEL_ROUTE, error, {})
    body = orjson.dumps(_model_object(state, name, found))
    return stamped(request, MODEL_ROUTE, web.Response(body=body, content_type="application/json"))


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


async def not_found(request: web.Request) -> web.Response:
    error = errors.RouteNotFound(f"Invalid URL ({request.method} {request.path[:200]})")
    return _error(request, "/{tail}", error, {})

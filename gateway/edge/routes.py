"""The route table: each dialect's routes, then the gateway's own."""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from gateway.dialects.base import Dialect
from gateway.edge import handlers, metrics
from gateway.edge.admin import AdminApi, add_admin_routes
from gateway.edge.proxy import Proxy
from gateway.edge.stored import StoredResponses, add_stored_routes


def add_routes(app: web.Application, proxy: Proxy, dialects: Iterable[Dialect],
               metrics_path: str | None, admin: AdminApi | None = None,
               stored: StoredResponses | None = None) -> None:
    router = app.router
    for dialect in dialects:
        for route in dialect.routes:
            router.add_route("*", route, proxy.handler(dialect, dialect.routes[0]))
    if stored is not None:
        add_stored_routes(router, stored)
    router.add_route("*", handlers.MODELS_ROUTE, handlers.models)
    router.add_route("*", handlers.MODEL_ROUTE, handlers.model)
    router.add_get("/health", handlers.health)
    router.add_route("HEAD", "/", handlers.health)  # Claude Code's reachability check
    router.add_get("/ready", handlers.ready)
    if metrics_path:
        router.add_get(metrics_path, metrics.metrics)
    if admin is not None:
        add_admin_routes(router, admin)
    router.add_route("*", "/{tail:.*}", handlers.not_found)

"""The route table: each dialect's routes, then the gateway's own."""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from gateway.dialects.base import Dialect
from gateway.edge import handlers, metrics
from gateway.edge.proxy import Proxy


def add_routes(app: web.Application, proxy: Proxy, dialects: Iterable[Dialect],
               metrics_path: str | None) -> None:
    router = app.router
    for dialect in dialects:
        for route in dialect.routes:
            router.add_route("*", route, proxy.handler(dialect, dialect.routes[0]))
    router.add_route("*", handlers.MODELS_ROUTE, handlers.models)
    router.add_route("*", handlers.MODEL_ROUTE, handlers.model)
    router.add_get("/health", handlers.health)
    router.add_route("HEAD", "/", handlers.health)  # Claude Code's reachability check
    router.add_get("/ready", handlers.ready)
    if metrics_path:
        router.add_get(metrics_path, metrics.metrics)
    router.add_route("*", "/{tail:.*}", handlers.not_found)

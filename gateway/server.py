"""Runs the gateway: event loop, listening socket, signals and graceful shutdown.

SIGTERM/SIGINT: stop accepting (and report not-ready), let in-flight requests
and streams finish up to `server.shutdown_timeout_s`, cancel the rest, then
flush telemetry.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

from aiohttp import web

from gateway.app import create_app
from gateway.config import GatewayConfig
from gateway.state import GATEWAY

_log = logging.getLogger("gateway")


def install_fast_loop() -> bool:
    """Use uvloop when it is installed (a faster event loop on Linux and macOS)."""
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


async def serve(config: GatewayConfig, host: str, port: int, *, reuse_port: bool = False,
                on_ready: Callable[[int], None] | None = None) -> None:
    app = create_app(config)
    state = app[GATEWAY]
    runner = web.AppRunner(app, access_log=None, handle_signals=False,
                           shutdown_timeout=config.server.shutdown_timeout_s)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_port=reuse_port, backlog=1024)
    await site.start()
    bound = port
    server = getattr(site, "_server", None)
    if server is not None and server.sockets:
        bound = server.sockets[0].getsockname()[1]
    _log.info("llm-gateway listening on http://%s:%d (config: %s, models: %s)", host, bound,
              config.source, ", ".join(config.models))
    if on_ready is not None:
        on_ready(bound)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    _log.info("shutting down: draining in-flight requests for up to %.0f s",
              config.server.shutdown_timeout_s)
    state.draining = True
    await runner.cleanup()
    _log.info("shutdown complete")

"""Runs the gateway: event loop, listening socket, signals and graceful shutdown.

SIGTERM/SIGINT/SIGHUP: stop accepting (and report not-ready), let in-flight
requests and streams finish up to `server.shutdown_timeout_s`, cancel the rest
(a cut stream gets an SSE error event), then flush telemetry. A second signal
stops the wait. SIGHUP does not reload the config: it drains like SIGTERM, so a
closed terminal or a reload sent by habit never cuts a stream or leaves its
spend unsettled (restart the gateway to apply a new config).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
from collections.abc import Callable, Mapping

from aiohttp import web

from gateway.app import create_app
from gateway.config import GatewayConfig
from gateway.edge.listener import BoundSite, ListenError, bind
from gateway.edge.metrics import metrics_app
from gateway.resilience.drain import InFlight
from gateway.state import GATEWAY, GatewayState

_log = logging.getLogger("gateway")
_CANCEL_GRACE_S = 2.0  # for a cancelled request to say why it ended
# A client that hangs up cancels its handler (aiohttp's default since 3.9 is to let it run):
# the upstream call it was waiting for is aborted at once, as Envoy resets the upstream,
# instead of running to the upstream's timeout. The request path is written to be cut at
# any await (a graceful shutdown cancels the same way).
HANDLER_CANCELLATION = True


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
    """Serve until SIGTERM/SIGINT. Raises ListenError, before anything has started,
    when a port cannot be bound."""
    sock = bind(host, port, reuse_port=reuse_port)
    metrics_sock: socket.socket | None = None
    try:
        if config.server.metrics_port is not None:
            metrics_sock = bind(config.server.metrics_host or host, config.server.metrics_port,
                                reuse_port=reuse_port)
    except ListenError:
        sock.close()
        raise
    app = create_app(config)
    state = app[GATEWAY]
    inflight = state.inflight
    runners = [web.AppRunner(app, access_log=None, handle_signals=False,
                             shutdown_timeout=_CANCEL_GRACE_S,
                             handler_cancellation=HANDLER_CANCELLATION)]
    if metrics_sock is not None:
        runners.append(web.AppRunner(metrics_app(state), access_log=None, handle_signals=False))
    sites = await _start(runners, [sock, metrics_sock], config)
    bound = sites[0].port
    tune_gc(os.environ)
    _log.info("llm-gateway listening on http://%s:%d (config: %s, models: %s)", host, bound,
              config.source, ", ".join(config.models))
    if len(sites) > 1:
        _log.info("metrics on %s%s", sites[1].name, config.server.metrics_path or "/metrics")
    if on_ready is not None:
        on_ready(bound)
    stop, hurry = asyncio.Event(), asyncio.Event()
    _on_signals(lambda: hurry.set() if stop.is_set() else stop.set())
    await stop.wait()
    for extra in runners[1:]:
        await extra.cleanup()
    await _shutdown(runners[0], sites[0], state, inflight, config.server.shutdown_timeout_s, hurry)


async def _start(runners: list[web.AppRunner], socks: list[socket.socket | None],
                 config: GatewayConfig) -> list[BoundSite]:
    """Start each app on its socket; on any failure stop what started and re-raise."""
    sites: list[BoundSite] = []
    begun: list[web.AppRunner] = []
    try:
        for runner, sock in zip(runners, socks, strict=False):
            assert sock is not None
            begun.append(runner)
            await runner.setup()
            site = BoundSite(runner, sock, config.server)
            await site.start()
            sites.append(site)
    except BaseException:
        for runner in begun:
            await runner.cleanup()
        for sock in socks:
            if sock is not None:
                sock.close()
        raise
    return sites


def tune_gc(environ: Mapping[str, str]) -> None:
    """Keep the cyclic GC off the hot path: everything built at start (config, telemetry
    SDK, imported modules) is frozen out of collection, and the youngest generation is
    collected every 50,000 allocations instead of 700. Request objects are acyclic and
    freed by reference counting, so collections were pure overhead (docs/performance.md).
    GATEWAY_GC_TUNE=false keeps CPython's defaults."""
    if environ.get("GATEWAY_GC_TUNE", "true").lower() == "false":
        return
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(50_000, gen1, gen2)


def _on_signals(callback: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, callback)


async def _shutdown(runner: web.AppRunner, site: web.BaseSite, state: GatewayState,
                    inflight: InFlight, timeout_s: float, hurry: asyncio.Event) -> None:
    """Stop accepting, drain, cancel what is left, then clean up (which flushes telemetry).
    A second signal stops waiting for in-flight requests."""
    state.draining = True  # /ready answers 503
    await site.stop()  # new connections are refused from here on
    if runner.server is not None:
        runner.server.pre_shutdown()  # idle keep-alive connections close; busy ones after their answer
    _log.info("shutting down: %d request(s) in flight, waiting up to %g s (signal again to cut)",
              len(inflight.tasks), timeout_s)
    left = await inflight.drain(timeout_s, hurry)
    if left:
        _log.warning("shutdown: cancelling %d request(s) still running", left)
        await inflight.cancel_rest(_CANCEL_GRACE_S)
    await runner.cleanup()
    _log.info("shutdown complete")

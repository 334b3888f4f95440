"""The app factory: `create_app(config, telemetry)` wires the dialects' routes,
providers, telemetry and the request path's layers; nothing lives in module-level
state.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence

import aiohttp
from aiohttp import web

from gateway.admin.auth import OFF_MESSAGE, AdminKeys
from gateway.admin.calls import DEFAULT_SIZE, CallLog
from gateway.admin.service import AdminService
from gateway.attribution_hook import TagReader
from gateway.clock import Clock, LoopClock
from gateway.config import GatewayConfig
from gateway.dialects.base import Dialect
from gateway.dialects.openai_responses.responses import NAME as RESPONSES
from gateway.dialects.registry import Dialects, default_dialects
from gateway.edge.admin import AdminApi
from gateway.edge.body import BodyLimits
from gateway.edge.proxy import Proxy
from gateway.edge.routes import add_routes
from gateway.edge.stored import StoredResponses
from gateway.fastpaths import HttpClient, select, use_coarse_timers
from gateway.hooks import Authenticator, CallHook, OpenAccess
from gateway.path.attempt import AttemptRunner
from gateway.path.chain import Chain
from gateway.path.lifecycle import Lifecycle
from gateway.providers.base import Provider
from gateway.providers.clients import routes as upstream_routes
from gateway.providers.registry import build_providers
from gateway.redact import Scrubber, proxy_secrets, scrubbed_logs
from gateway.resilience.drain import InFlight
from gateway.resilience.ratelimit import build_rate_limit_hook
from gateway.router import FallbackRouter, Router
from gateway.spend.backend import LocalBackend
from gateway.spend.control import SpendControl, build_spend
from gateway.state import GATEWAY, GatewayState
from gateway.stored.owners import OwnerStore, OwnerWriter, ResponseOwners, SqliteOwners, make_store
from gateway.telemetry.setup import Telemetry, setup_telemetry

_log = logging.getLogger("gateway.admin")
ENV_RECENT_CALLS = "GATEWAY_RECENT_CALLS"  # size of the recent-calls ring (per process)
ENV_TRACE_URL = "GATEWAY_TRACE_URL"  # the console's link to a trace: {trace_id} is filled in
# Who made each stored response, when the Responses dialect is served.
RESPONSE_OWNERS: web.AppKey[ResponseOwners] = web.AppKey("response_owners", ResponseOwners)


def _client_session(environ: Mapping[str, str], telemetry: Telemetry) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=300,
                                     enable_cleanup_closed=False)
    trace_configs = []
    if environ.get("GATEWAY_HTTP_CLIENT_SPANS", "").lower() == "true":
        # Off by default: the GenAI CLIENT span already describes each upstream call.
        from opentelemetry.instrumentation.aiohttp_client import create_trace_config

        # The gateway's own tracer provider: the SDK's global one is never set.
        trace_configs.append(create_trace_config(tracer_provider=telemetry.tracer_provider))
    # No trust_env: each provider's proxy comes with its requests, from its route (the same
    # rules, read from the environment create_app was given).
    return aiohttp.ClientSession(connector=connector, trace_configs=trace_configs,
                                 auto_decompress=True, skip_auto_headers=("User-Agent",))


def build_scrubber(config: GatewayConfig, environ: Mapping[str, str]) -> Scrubber:
    """The one scrubber: every provider's credentials and the proxy passwords in `environ`."""
    secrets = [secret for p in config.providers.values() for secret in p.secrets]
    return Scrubber([*secrets, *proxy_secrets(environ)])


def create_app(
    config: GatewayConfig,
    telemetry: Telemetry | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    authenticator: Authenticator | None = None,
    router: Router | None = None,
    hooks: Sequence[CallHook] = (),
    providers: Mapping[str, Provider] | None = None,
    spend: SpendControl | None = None,
    dialects: Sequence[Dialect] | None = None,
    provider_dialects: Mapping[str, Iterable[str]] | None = None,
    clock: Clock | None = None,
) -> web.Application:
    """A ready-to-run gateway application for `config`.

    `dialects` are the client APIs served (default: OpenAI chat completions and
    embeddings); `provider_dialects` adds dialects a provider kind speaks natively to
    those its adapter declares (a new dialect carried by the `openai` adapter, say).
    `clock` drives deadlines, retry pauses, breakers and in-memory rate limits (default:
    the event loop's; tests pass `gateway.testing.FakeClock`).
    """
    env = os.environ if environ is None else environ
    tel = telemetry if telemetry is not None else setup_telemetry(env)
    provider_map: dict[str, Provider] = dict(providers or {})
    loop_clock: LoopClock | None = None
    if clock is None:  # bound when the app starts
        clock = loop_clock = LoopClock()
    scrubber = build_scrubber(config, env)
    runner = AttemptRunner(config, provider_map, tel, clock, scrubber)
    if spend is None and authenticator is None and not hooks:
        spend = build_spend(config, tel, environ=env)  # keys, budgets, ledger, runaway guard
    if spend is not None:
        authenticator = authenticator or spend.authenticator
        hooks = [*hooks, *spend.hooks]  # last: others refuse before a budget reservation
    admin_keys = _admin_keys(env)
    call_log = CallLog(_recent_size(env))
    # The ring and traffic buckets are read only through the admin API: fed when it is
    # on; the tags and end user are read either way.
    tags: list[CallHook] = [TagReader(), call_log] if admin_keys.enabled else [TagReader()]
    hooks = [*tags, *hooks]  # before spend: the ledger records the call's tags and user
    rate_limits = build_rate_limit_hook(config, tel.instruments, clock)
    if rate_limits is not None:  # first: refusing a flood should cost as little as possible
        hooks = [rate_limits, *hooks]
    owner_store = make_store(config.storage)
    owners = ResponseOwners(config, owner_store, writer=_owner_writer(spend, owner_store))
    served = Dialects(default_dialects(config.limits, owners.remember) if dialects is None
                      else dialects)
    chain = Chain(runner, router or FallbackRouter(config), hooks)
    auth = authenticator or OpenAccess()
    lifecycle = Lifecycle(config, tel, auth, hooks)
    inflight = InFlight()
    server = config.server
    limits = BodyLimits(server.max_body_bytes, server.max_inflated_body_bytes,
                        server.body_timeout_s)
    proxy = Proxy(lifecycle, chain, limits, inflight)
    app = web.Application(client_max_size=config.server.max_body_bytes + 1)
    state = GatewayState(config=config, telemetry=tel, authenticator=auth, inflight=inflight)
    app[GATEWAY] = state

    fast = select(env)  # the transport switches (telemetry's were chosen by setup_telemetry)
    routes = {} if provider_map else upstream_routes(config.providers, env,
                                                      own_client=fast.http_client)

    async def upstream_session(app: web.Application) -> AsyncIterator[None]:
        use_coarse_timers(fast.coarse_timers)
        if loop_clock is not None:  # after the timers' switch: the clock arms the chosen ones
            loop_clock.bind(asyncio.get_running_loop())
        wants_aiohttp = any(route.aiohttp for route in routes.values())
        session = _client_session(env, tel) if wants_aiohttp else None
        http_client = HttpClient() if not all(r.aiohttp for r in routes.values()) else None
        if not provider_map:
            provider_map.update(build_providers(config, routes, http_client, session,
                                                provider_dialects or {}))
        yield
        for transport in (http_client, session):
            if transport is not None:
                await transport.close()
        use_coarse_timers(True)

    async def scrub_logs(app: web.Application) -> AsyncIterator[None]:
        with scrubbed_logs(scrubber):
            yield

    app.cleanup_ctx.append(scrub_logs)
    app.cleanup_ctx.append(upstream_session)
    stored: StoredResponses | None = None
    if any(dialect.name == RESPONSES for dialect in served):
        app.cleanup_ctx.append(owners.lifecycle)
        app[RESPONSE_OWNERS] = owners
        stored = StoredResponses(config, owners, provider_map, lifecycle, rate_limits, scrubber)
    if spend is not None:
        app.cleanup_ctx.append(spend.lifecycle)
    if rate_limits is not None:
        async def close_rate_limits(app: web.Application) -> None:
            await rate_limits.close()

        app.on_cleanup.append(close_rate_limits)
    if telemetry is None:
        async def flush_telemetry(app: web.Application) -> None:
            tel.shutdown(timeout_s=5.0)

        app.on_cleanup.append(flush_telemetry)

    admin = AdminApi(AdminService(config, spend, call_log, env.get(ENV_TRACE_URL, ""),
                                  chain.breakers), admin_keys)
    # /metrics on the API port unless it has a port of its own (gateway/edge/metrics.py)
    metrics_path = config.server.metrics_path if config.server.metrics_port is None else None
    add_routes(app, proxy, served, metrics_path, admin, stored)
    return app


def _owner_writer(spend: SpendControl | None, store: OwnerStore) -> OwnerWriter | None:
    """The spend ledger's writer process, to write the stored-response owners too, when
    both are SQLite files (the owners' beside the ledger's): the gateway process then
    does no SQLite work for them. None: `ResponseOwners` writes them itself."""
    if spend is None or not isinstance(store, SqliteOwners):
        return None
    backend = spend.backend
    if not isinstance(backend, LocalBackend):
        return None
    return backend.store.carry_owners(store.path)


def _recent_size(environ: Mapping[str, str]) -> int:
    raw = environ.get(ENV_RECENT_CALLS, "").strip()
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    if raw:
        _log.warning("%s=%r is not a positive integer; the ring of recent calls keeps %d",
                     ENV_RECENT_CALLS, raw, DEFAULT_SIZE)
    return DEFAULT_SIZE


def _admin_keys(environ: Mapping[str, str]) -> AdminKeys:
    try:
        keys = AdminKeys.from_environ(environ)
    except ValueError as exc:
        _log.error("%s; the admin API and console stay off", exc)
        return AdminKeys([])
    if keys.enabled:
        _log.info("admin API and console: on (%d admin key%s), at /admin/ and /console",
                  len(keys), "" if len(keys) == 1 else "s")
    else:
        _log.info(OFF_MESSAGE)
    return keys

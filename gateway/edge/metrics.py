"""`/metrics`: the Prometheus exposition, and who may read it.

It lists key aliases, teams and spend, so it is not for every client of the
API port. The rule, in order:

- `server.metrics_token` set: a scrape must send `Authorization: Bearer <token>`
  (on whichever port serves it);
- `server.metrics_port` set: it is served only there (a port for the
  monitoring network), and no longer on the API port;
- neither: on the API port it is readable while the gateway runs open (no
  virtual key exists, so anyone may spend through it anyway, and every series
  says `anonymous`), and refused with 403 once a key exists.
"""

from __future__ import annotations

import hmac

from aiohttp import web

from gateway import errors
from gateway.edge.responses import error_response
from gateway.hooks import Authenticator, OpenAccess
from gateway.state import GATEWAY, GatewayState

_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
NEEDS_SETUP = ("/metrics lists key aliases, teams and spend, so once virtual keys exist it needs "
               "server.metrics_token (sent as 'Authorization: Bearer <token>') or its own "
               "server.metrics_port; see docs/security.md.")


class MetricsForbidden(errors.PermissionDenied):
    code = "metrics_forbidden"


def gateway_is_open(authenticator: Authenticator) -> bool:
    """True while no virtual key exists (the spend authenticator says so, or there is none)."""
    return isinstance(authenticator, OpenAccess) or getattr(authenticator, "open", False) is True


def _token_ok(request: web.Request, token: str) -> bool:
    sent = request.headers.get("authorization", "")
    scheme, _, value = sent.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(),
                                                             token.encode())


def refusal(state: GatewayState, request: web.Request, *, own_port: bool) -> errors.GatewayError | None:
    """Why this request may not read the metrics, or None."""
    token = state.config.server.metrics_token
    if token is not None:
        if _token_ok(request, token.value):
            return None
        return errors.AuthenticationFailed(
            "/metrics needs the metrics token: send 'Authorization: Bearer <token>'.",
            headers={"www-authenticate": "Bearer"})
    if own_port or gateway_is_open(state.authenticator):
        return None
    return MetricsForbidden(NEEDS_SETUP)


async def _serve(request: web.Request, own_port: bool) -> web.Response:
    state = request.app[GATEWAY]
    refused = refusal(state, request, own_port=own_port)
    if refused is not None:
        return error_response(refused, {})
    return web.Response(body=state.telemetry.metrics_text(), headers={"content-type": _CONTENT_TYPE})


async def metrics(request: web.Request) -> web.Response:
    """/metrics on the API port."""
    return await _serve(request, own_port=False)


async def metrics_on_own_port(request: web.Request) -> web.Response:
    return await _serve(request, own_port=True)


def metrics_app(state: GatewayState) -> web.Application:
    """The app behind `server.metrics_port`: the metrics and nothing else."""
    app = web.Application()
    app[GATEWAY] = state
    app.router.add_get(state.config.server.metrics_path or "/metrics", metrics_on_own_port)
    return app

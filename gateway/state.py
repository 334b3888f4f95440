"""Typed app state: the one object handlers reach the gateway through."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway.config import GatewayConfig
from gateway.hooks import Authenticator
from gateway.resilience.drain import InFlight
from gateway.telemetry.setup import Telemetry


@dataclass
class GatewayState:
    config: GatewayConfig
    telemetry: Telemetry
    authenticator: Authenticator
    inflight: InFlight  # the proxied requests a graceful shutdown waits for
    draining: bool = False
    extras: dict[str, Any] = field(default_factory=dict)


GATEWAY: web.AppKey[GatewayState] = web.AppKey("gateway", GatewayState)

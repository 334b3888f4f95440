"""A gateway with a fallback chain in front of the fake upstream, the official SDK
pointed at it, and leak checks (tasks, upstream connections, file descriptors)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from openai import AsyncOpenAI
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from gateway.config import GatewayConfig, load
from tests.conftest import UPSTREAM_KEY
from tests.fakes.openai_upstream import RunningUpstream
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.telemetry import TestTelemetry
from tests.support.waiting import eventually

MESSAGES: list[Any] = [{"role": "user", "content": "Say hello to the gateway"}]
PRICE = {"input": 1, "output": 2}
# Gateway model -> the fake upstream's model id (faults are injected per upstream model).
UPSTREAM_IDS = {"primary": "gpt-4.1", "backup": "gpt-4.1-mini", "last": "gpt-4.1-nano",
                "solo": "gpt-4o"}


def chain_config(base_url: str, *, models: Mapping[str, Mapping[str, Any]] | None = None,
                 resilience: Mapping[str, Any] | None = None,
                 extra: Mapping[str, Any] | None = None) -> str:
    """primary -> backup by default, `solo` without fallbacks; no retries unless asked."""
    tree: dict[str, Any] = {
        "providers": {"up": {"kind": "openai", "base_url": base_url,
                             "api_key": "${UPSTREAM_KEY}", "provider_name": "openai",
                             "timeout_s": 10}},
        "models": {name: {"provider": "up", "upstream_model": upstream, "price_per_mtok": PRICE}
                   for name, upstream in UPSTREAM_IDS.items()},
        "resilience": {"retry": {"max_attempts": 1}, **(resilience or {})},
    }
    tree["models"]["primary"]["fallbacks"] = ["backup"]
    for name, settings in (models or {}).items():
        tree["models"][name].update(settings)
    tree.update(extra or {})
    return yaml.safe_dump(tree)


def load_chain(base_url: str, **kwargs: Any) -> GatewayConfig:
    return load(chain_config(base_url, **kwargs), {"UPSTREAM_KEY": UPSTREAM_KEY})


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _other_tasks() -> set[asyncio.Task[Any]]:
    current = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t is not current and not t.done()}


async def _eventually(check: Any, timeout: float = 3.0) -> bool:
    return await eventually(check, timeout, poll=0.02)


@dataclass
class Rig:
    gw: RunningGateway
    up: RunningUpstream
    sdk: AsyncOpenAI
    max_idle: int = 1  # idle keep-alive connections the gateway may pool (concurrent tests: more)

    @property
    def tt(self) -> TestTelemetry:
        return self.gw.telemetry

    async def handled(self, count: int = 1) -> None:
        """Wait until `count` requests finished on the gateway side (their SERVER span ended:
        a stream's client can see [DONE] a moment before that)."""
        assert await _eventually(lambda: len(self._server_spans()) >= count), self._server_spans()

    def _server_spans(self) -> list[ReadableSpan]:
        return [s for s in self.tt.finished_spans() if s.kind is SpanKind.SERVER]

    async def client_spans(self) -> list[ReadableSpan]:
        """The CLIENT spans in start order, once the request finished."""
        await self.handled()
        spans = [s for s in self.tt.finished_spans() if s.kind is SpanKind.CLIENT]
        return sorted(spans, key=lambda s: s.start_time or 0)

    async def server_span(self) -> ReadableSpan:
        await self.handled()
        spans = self._server_spans()
        assert len(spans) == 1, spans
        return spans[0]

    def counter(self, name: str, **labels: Any) -> float:
        """Sum of the points of `name` whose attributes include `labels`."""
        total = 0.0
        for point in self.tt.points(name):
            attrs = dict(point.attributes)
            if all(attrs.get(k) == v for k, v in labels.items()):
                total += point.value
        return total

    def gauge(self, name: str, **labels: Any) -> float | None:
        for point in self.tt.points(name):
            attrs = dict(point.attributes)
            if all(attrs.get(k) == v for k, v in labels.items()):
                return float(point.value)
        return None

    def upstream_models(self) -> list[str]:
        """The upstream model id of every chat request the fake received, in order."""
        return [body["model"] for body in self.up.state.bodies()]

    async def upstream_settled(self) -> None:
        """No request still running at the fake, only idle keep-alive connections left."""
        settled = await _eventually(
            lambda: self.up.state.in_flight == 0 and self.up.open_connections <= self.max_idle)
        assert settled, (self.up.state.in_flight, self.up.open_connections)


@contextlib.asynccontextmanager
async def rig(up: RunningUpstream, config: GatewayConfig | None = None,
              **gateway_kwargs: Any) -> AsyncIterator[Rig]:
    """Run the gateway and an SDK client; afterwards assert nothing was left open."""
    fds_before = open_fds()
    tasks_before = _other_tasks()
    cfg = config or load_chain(up.base_url)
    async with running_gateway(cfg, environ={"UPSTREAM_KEY": UPSTREAM_KEY}, **gateway_kwargs) as gw:
        async with AsyncOpenAI(base_url=gw.base_url, api_key="sk-client", max_retries=0,
                               timeout=30) as sdk:
            the_rig = Rig(gw, up, sdk)
            yield the_rig
        await the_rig.upstream_settled()
    assert await _eventually(lambda: _other_tasks() <= tasks_before), _other_tasks()
    assert await _eventually(lambda: up.open_connections == 0), up.open_connections
    assert await _eventually(lambda: open_fds() <= fds_before), (open_fds(), fds_before)

"""Runs the gateway app on a real loopback port for the official `openai` SDK."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.app import create_app
from gateway.config import GatewayConfig, StorageConfig, load
from gateway.edge.listener import BoundSite, bind
from gateway.server import HANDLER_CANCELLATION
from tests.support.telemetry import TestTelemetry, make_test_telemetry


@dataclass
class RunningGateway:
    base_url: str  # ".../v1", for the openai SDK
    root: str  # "http://127.0.0.1:PORT"
    config: GatewayConfig
    telemetry: TestTelemetry
    app: web.Application


def upstream_config(base_url: str, *, extra: str = "", api_key_var: str = "UPSTREAM_KEY",
                    models: str = "") -> str:
    """A config with the usual models served by one OpenAI-compatible upstream (and
    `models`: more entries of the `models:` mapping, indented as they are)."""
    return f"""
providers:
  up:
    kind: openai
    base_url: "{base_url}"
    api_key: "${{{api_key_var}}}"
    provider_name: openai
    timeout_s: 5
models:
  gpt-4.1:
    provider: up
    upstream_model: gpt-4.1
    price_per_mtok: {{input: 2.5, output: 8, cached_input: 0.625}}
  cheap:
    provider: up
    upstream_model: gpt-4.1-mini
    price_per_mtok: {{input: 0.4, output: 1.6}}
  text-embedding-3-small:
    provider: up
    upstream_model: text-embedding-3-small
    price_per_mtok: {{input: 0.02, output: 0}}
{models}
{extra}
"""


@contextlib.asynccontextmanager
async def running_gateway(
    config: GatewayConfig | str,
    *,
    environ: Mapping[str, str] | None = None,
    telemetry: TestTelemetry | None = None,
    **create_kwargs: Any,
) -> AsyncIterator[RunningGateway]:
    env = dict(environ or {})
    cfg = load(config, env) if isinstance(config, str) else config
    scratch: str | None = None
    if cfg.storage.backend == "sqlite" and cfg.storage.sqlite_path == StorageConfig.sqlite_path:
        # Each test gets its own ledger instead of ./data/gateway.sqlite3.
        scratch = tempfile.mkdtemp(prefix="gw-test-")
        ledger = Path(scratch, "gateway.sqlite3")
        cfg = replace(cfg, storage=replace(cfg.storage, sqlite_path=str(ledger)))
    tt = telemetry or make_test_telemetry()
    app = create_app(cfg, tt.telemetry, environ=env, **create_kwargs)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5,
                           handler_cancellation=HANDLER_CANCELLATION)
    await runner.setup()
    site = BoundSite(runner, bind("127.0.0.1", 0), cfg.server)  # as `serve` listens
    await site.start()
    port = site.port
    root = f"http://127.0.0.1:{port}"
    try:
        yield RunningGateway(f"{root}/v1", root, cfg, tt, app)
    finally:
        await runner.cleanup()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)

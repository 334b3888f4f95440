"""A gateway with the admin API on, in front of the fake upstream, and a small client of
its admin API speaking plain HTTP."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from gateway.spend.control import SpendControl
from tests.spend.helpers import spend_config, spend_gateway
from tests.support.gateway import RunningGateway

ADMIN_KEY = "admin-test-key-0123456789abcdef"


class Admin:
    """Calls `/admin/...` with the admin key (or `key`) and returns (status, JSON body)."""

    def __init__(self, root: str, session: aiohttp.ClientSession, key: str | None = ADMIN_KEY):
        self.root = root
        self.session = session
        self.key = key

    async def call(self, method: str, path: str, json: Any = None,
                   key: str | None = ...) -> tuple[int, Any]:  # type: ignore[assignment]
        chosen = self.key if key is ... else key
        headers = {} if chosen is None else {"Authorization": f"Bearer {chosen}"}
        async with self.session.request(method, self.root + path, json=json,
                                        headers=headers) as response:
            return response.status, await response.json()

    async def ok(self, method: str, path: str, json: Any = None) -> Any:
        status, body = await self.call(method, path, json)
        assert status in (200, 201), (status, body)
        return body


@contextlib.asynccontextmanager
async def admin_gateway(upstream_url: str, tmp_path: Path, extra: str = "",
                        environ: dict[str, str] | None = None, models: str = ""
                        ) -> AsyncIterator[tuple[RunningGateway, SpendControl, Admin]]:
    config = spend_config(upstream_url, tmp_path / "ledger.db", extra, models)
    env = {"GATEWAY_ADMIN_KEYS": f"another-admin-key-000000,{ADMIN_KEY}", **(environ or {})}
    async with spend_gateway(config, environ=env) as (gw, spend):
        async with aiohttp.ClientSession() as session:
            yield gw, spend, Admin(gw.root, session)

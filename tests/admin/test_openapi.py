"""The OpenAPI file matches the running admin API: the same routes and methods both ways,
and every answer (successes and errors) validates against the file's schema for its
status."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import pytest
import yaml
from aiohttp import web
from openai import AsyncOpenAI

from tests.admin.helpers import Admin, admin_gateway
from tests.fakes.openai_upstream import RunningUpstream
from tests.spend.helpers import spend_config, spend_gateway

pytestmark = pytest.mark.integration  # sockets: the gateway and the fake upstream on ports

SPEC: dict[str, Any] = yaml.safe_load(
    resources.files("gateway.admin").joinpath("openapi.yaml").read_text("utf-8"))


def _app_routes(app: web.Application) -> set[tuple[str, str]]:
    found = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if path.startswith("/admin/") and route.method not in ("HEAD", "*"):  # "*": the 405
            found.add((route.method.lower(), path))
    return found


def _spec_routes() -> set[tuple[str, str]]:
    return {(method, path) for path, item in SPEC["paths"].items() for method in item}


def _schema_for(method: str, path: str, status: int) -> dict[str, Any]:
    responses = SPEC["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method} {path} answered {status}, not in the spec"
    answer = responses[str(status)]
    if "$ref" in answer:
        answer = SPEC["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
    schema = answer["content"]["application/json"]["schema"]
    return {**schema, "components": SPEC["components"]}


class CheckedAdmin(Admin):
    """Validates every answer against the spec (path template given per call)."""

    seen: set[tuple[str, str, int]]

    async def checked(self, method: str, template: str, path: str, json: Any = None,
                      key: Any = ...) -> tuple[int, Any]:
        status, body = await self.call(method, path, json, key=key)
        jsonschema.validate(body, _schema_for(method.lower(), template, status),
                            cls=jsonschema.Draft202012Validator)
        self.seen.add((method.lower(), template, status))
        return status, body


async def test_routes_under_admin_equal_the_spec(upstream: RunningUpstream,
                                                 tmp_path: Path) -> None:
    """Every /admin/ route of the app is in the OpenAPI file and every path there is served;
    with the admin API off, each answers the spec's 403."""
    config = spend_config(upstream.base_url, tmp_path / "l.db")
    async with spend_gateway(config) as (gw, _), aiohttp.ClientSession() as session:
        assert _app_routes(gw.app) == _spec_routes()
        for method, path in _spec_routes():
            url = gw.root + path.replace("{alias}", "web")
            async with session.request(method, url) as response:
                jsonschema.validate(await response.json(), _schema_for(method, path, 403),
                                    cls=jsonschema.Draft202012Validator)
                assert response.status == 403


def test_spec_is_valid_json_schema() -> None:
    """Every component schema is a valid JSON Schema (2020-12, as OpenAPI 3.1 uses)."""
    assert SPEC["openapi"].startswith("3.1")
    for schema in SPEC["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)


async def test_every_answer_validates(upstream: RunningUpstream, tmp_path: Path) -> None:
    """A tour of every operation, with its errors, validates against the spec."""
    async with admin_gateway(upstream.base_url, tmp_path,
                             environ={"GATEWAY_TRACE_URL": "http://t/{trace_id}"}) as (gw, _, a):
        admin = CheckedAdmin(a.root, a.session)
        admin.seen = set()
        c = admin.checked
        await c("GET", "/admin/status", "/admin/status")
        await c("GET", "/admin/keys", "/admin/keys", key=None)
        await c("GET", "/admin/keys", "/admin/keys")
        status, created = await c("POST", "/admin/keys", "/admin/keys",
                                  {"alias": "web", "team": "t", "budget_usd_per_day": 1,
                                   "allowed_models": ["gpt-4.1"], "expires_in_s": 60})
        assert status == 201
        await c("POST", "/admin/keys", "/admin/keys", {"alias": "web"})  # 409
        await c("POST", "/admin/keys", "/admin/keys", {"alias": ""})  # 400
        async with AsyncOpenAI(base_url=gw.base_url, api_key=created["key"], max_retries=0) as sdk:
            await sdk.chat.completions.create(model="gpt-4.1", max_tokens=5, stream=True,
                                              messages=[{"role": "user", "content": "hi"}],
                                              extra_headers={"x-gateway-tags": "p=a"})
        await c("GET", "/admin/keys", "/admin/keys")
        await c("POST", "/admin/keys/{alias}/rotate", "/admin/keys/web/rotate")
        await c("POST", "/admin/keys/{alias}/rotate", "/admin/keys/nobody/rotate")
        await c("POST", "/admin/keys/{alias}/revoke", "/admin/keys/web/revoke")
        await c("POST", "/admin/keys/{alias}/revoke", "/admin/keys/web/revoke")
        for query in ("", "?by=tag:p", "?by=user&window=month", "?since=2026-01-01",
                      "?by=nope"):
            await c("GET", "/admin/spend", "/admin/spend" + query)
        await c("GET", "/admin/budgets", "/admin/budgets")
        _, calls = await c("GET", "/admin/calls", "/admin/calls")
        assert calls["calls"][0]["time_to_first_chunk_s"] is not None
        await c("GET", "/admin/calls", "/admin/calls?limit=0")
        await c("GET", "/admin/traffic", "/admin/traffic?range=day")
        await c("GET", "/admin/traffic", "/admin/traffic?range=x")
        await c("GET", "/admin/config", "/admin/config")
        await c("GET", "/admin/resilience", "/admin/resilience")
        assert {(m, p) for m, p, _ in admin.seen} == _spec_routes()

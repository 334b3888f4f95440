"""Tags become metric labels only when the operator allow-lists their names
(`attribution.metric_tags`), on the gateway's own per-request series, each tag's values
bounded; otherwise no tag (and never the end user) is a label anywhere."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from openai import AsyncOpenAI

from gateway.telemetry import names as n
from tests.conftest import UPSTREAM_KEY
from tests.fakes.openai_upstream import RunningUpstream
from tests.support.gateway import RunningGateway, running_gateway, upstream_config

pytestmark = pytest.mark.integration  # sockets: the gateway and the fake upstream

ALLOW = "attribution: {metric_tags: [project], metric_tag_values: 2}\n"
MESSAGES = [{"role": "user", "content": "hello"}]


async def _traffic(gw: RunningGateway) -> None:
    async with AsyncOpenAI(base_url=gw.base_url, api_key="x", max_retries=0) as sdk:
        for project in ("alpha", "beta", "gamma", "alpha"):
            await sdk.chat.completions.create(
                model="gpt-4.1", messages=MESSAGES, user=f"user-{project}",
                extra_headers={"x-gateway-tags": f"project={project},feature=f-{project}"})
        await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    requests = gw.telemetry.telemetry.instruments.tallies.requests
    for _ in range(200):  # the handler may count the last call after the client has it
        if sum(requests._sums.values()) >= 5:
            break
        await asyncio.sleep(0.01)


def _by_project(gw: RunningGateway, metric: str) -> dict[str | None, float]:
    sums: dict[str | None, float] = {}
    for point in gw.telemetry.points(metric):
        project = dict(point.attributes).get("gateway.tags.project")
        sums[project] = sums.get(project, 0) + point.value
    return sums


async def test_allow_listed_tag_is_a_bounded_label(upstream: RunningUpstream) -> None:
    """With `project` allow-listed and two values per tag, requests, cost and tokens carry
    `gateway.tags.project` (alpha, beta, then `_OTHER`; none on an untagged call); the
    other tag and the end user are labels nowhere, on /metrics either."""
    config = upstream_config(upstream.base_url, extra=ALLOW)
    async with running_gateway(config, environ={"UPSTREAM_KEY": UPSTREAM_KEY}) as gw:
        await _traffic(gw)
        assert _by_project(gw, n.M_REQUESTS) == {"alpha": 2, "beta": 1, "_OTHER": 1, None: 1}
        cost = _by_project(gw, n.M_COST)
        assert set(cost) == {"alpha", "beta", "_OTHER", None} and cost["alpha"] > cost["beta"] > 0
        assert set(_by_project(gw, n.M_TOKENS)) == {"alpha", "beta", "_OTHER", None}
        for metric in gw.telemetry.metrics().values():
            for point in metric.data.data_points:
                keys = set(dict(point.attributes))
                assert not keys & {"gateway.tags.feature", n.USER_ID}, metric.name
                if not metric.name.startswith("gateway."):
                    assert "gateway.tags.project" not in keys, metric.name
        async with aiohttp.ClientSession() as http, http.get(gw.root + "/metrics") as resp:
            text = await resp.text()
    assert 'gateway_tags_project="alpha"' in text and 'gateway_tags_project="gamma"' not in text
    assert "gateway_tags_feature" not in text and "user-alpha" not in text


async def test_without_an_allow_list_no_tag_is_a_label(upstream: RunningUpstream) -> None:
    """By default tags are recorded on spans and in the ledger, never as metric labels."""
    config = upstream_config(upstream.base_url)
    async with running_gateway(config, environ={"UPSTREAM_KEY": UPSTREAM_KEY}) as gw:
        await _traffic(gw)
        for metric in gw.telemetry.metrics().values():
            for point in metric.data.data_points:
                assert not any(k.startswith("gateway.tags.") for k in dict(point.attributes))
        server = [s for s in gw.telemetry.finished_spans() if s.name.startswith("POST")]
        assert any(dict(s.attributes or {}).get("gateway.tags.project") == "gamma"
                   for s in server)

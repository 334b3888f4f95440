"""`serve --workers 2`: metrics stay correct across workers, on /metrics and over OTLP."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.workers import label_exposition, merge_expositions
from tests.fakes.openai_upstream import running_upstream
from tests.support.gateway import upstream_config
from tests.support.otlp_receiver import Received, http_receiver
from tests.support.process import free_port, gateway_process, wait_healthy

PROVIDER_KEY = "sk-provider-workers-1234"
REQUESTS = 40
BODY = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hello"}]}


async def _send(base_url: str, count: int) -> None:
    """`count` requests, each on a new connection so the kernel spreads them over workers."""
    for _ in range(count):
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            async with http.post(f"{base_url}/chat/completions", json=BODY) as resp:
                assert resp.status == 200, await resp.text()


def _requests_by_worker(text: str) -> dict[str, float]:
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "gateway_requests":
            for sample in family.samples:
                if sample.name == "gateway_requests_total":
                    worker = sample.labels["worker"]
                    totals[worker] = totals.get(worker, 0) + sample.value
    return totals


async def _scrape_until_total(root: str, expected: int) -> dict[str, float]:
    """/metrics until the workers' sum reaches `expected` (others' files lag up to ~1 s)."""
    totals: dict[str, float] = {}
    async with aiohttp.ClientSession() as http:
        for _ in range(100):
            async with http.get(f"{root}/metrics") as resp:
                totals = _requests_by_worker(await resp.text())
            if sum(totals.values()) >= expected:
                break
            await asyncio.sleep(0.1)
    return totals


def _otlp_requests_by_instance(received: Received) -> dict[str, float]:
    """The latest cumulative gateway.requests value of every series, summed per instance."""
    latest: dict[tuple[str, Any], tuple[int, float]] = {}
    for request in received.metrics:
        for rm in request.resource_metrics:
            instance = next(kv.value.string_value for kv in rm.resource.attributes
                            if kv.key == "service.instance.id")
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name != "gateway.requests":
                        continue
                    for point in metric.sum.data_points:
                        key = (instance, tuple(sorted(str(kv) for kv in point.attributes)))
                        if key not in latest or point.time_unix_nano >= latest[key][0]:
                            latest[key] = (point.time_unix_nano, point.as_double or point.as_int)
    by_instance: dict[str, float] = {}
    for (instance, _), (_, value) in latest.items():
        by_instance[instance] = by_instance.get(instance, 0) + value
    return by_instance


@pytest.mark.integration
async def test_two_workers_count_every_request_once() -> None:
    """The sum of gateway_requests_total over both workers equals the requests sent,
    on /metrics (from either worker) and over OTLP (one service.instance.id each)."""
    async with running_upstream(api_key=PROVIDER_KEY) as up, http_receiver() as (endpoint, got):
        env = {"UPSTREAM_KEY": PROVIDER_KEY, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
               "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_METRIC_EXPORT_INTERVAL": "500"}
        async with gateway_process(upstream_config(up.base_url), env, ("--workers", "2")) as proc:
            await _send(proc.base_url, REQUESTS)
            sent = REQUESTS
            totals = await _scrape_until_total(proc.root, sent)
            while len(totals) < 2 and sent < 10 * REQUESTS:  # the second worker came up late
                await _send(proc.base_url, 5)
                sent += 5
                totals = await _scrape_until_total(proc.root, sent)
            assert sum(totals.values()) == sent, totals
            assert set(totals) == {"0", "1"}, f"one worker served everything: {totals}\n{proc.log()}"
            proc.proc.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(proc.proc.wait, 30) == 0, proc.log()
        by_instance = _otlp_requests_by_instance(got)
        assert len(by_instance) == 2 and all(i.endswith(("-w0", "-w1")) for i in by_instance)
        assert sum(by_instance.values()) == sent, by_instance


@pytest.mark.integration
async def test_workers_stop_when_the_parent_is_killed(tmp_path: Any) -> None:
    """A SIGKILLed parent cannot forward signals: its workers notice and shut down."""
    async with running_upstream(api_key=PROVIDER_KEY) as up:
        config = tmp_path / "gateway.yaml"
        config.write_text(upstream_config(up.base_url))
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "GATEWAY_"))}
        env.update({"UPSTREAM_KEY": PROVIDER_KEY, "GATEWAY_SQLITE_PATH": str(tmp_path / "db")})
        parent = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--workers", "2", "--port", str(port),
             "--config", str(config)], env=env, cwd=tmp_path,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            await wait_healthy(f"http://127.0.0.1:{port}", parent)
            workers = _children(parent.pid)
            assert len(workers) == 2
            parent.kill()
            parent.wait()
            for _ in range(100):
                if not any(_alive(pid) for pid in workers):
                    break
                await asyncio.sleep(0.1)
            assert not any(_alive(pid) for pid in workers)
        finally:
            if parent.poll() is None:
                parent.kill()
                parent.wait()


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _lines(text: str) -> Iterator[str]:
    yield from (line for line in text.splitlines() if line)


def test_merged_exposition_has_each_family_once_and_every_sample() -> None:
    """Merging two workers' texts keeps one HELP/TYPE per family and all labelled samples."""
    a = label_exposition("# HELP c_total C.\n# TYPE c_total counter\nc_total{x=\"1\"} 2.0\n", "0")
    b = label_exposition("# HELP c_total C.\n# TYPE c_total counter\nc_total{x=\"1\"} 3.0\n", "1")
    merged = list(_lines(merge_expositions([a, b])))
    assert merged == ['# HELP c_total C.', '# TYPE c_total counter', 'c_total{worker="0",x="1"} 2.0',
                      'c_total{worker="1",x="1"} 3.0']
    assert label_exposition("up 1\n", "3") == 'up{worker="3"} 1\n'

"""Every dashboard and alert query, evaluated by a real Prometheus against a real gateway.

The module starts the gateway (`python -m gateway serve`, the embedded default
config plus a fallback chain and a circuit breaker, simulated provider) and
Debian's `prometheus` binary scraping the gateway's /metrics every second as
job "llm-gateway" with the shipped alert rules loaded. It drives traffic with
the official `openai` SDK (plain and streamed chat on every model,
embeddings, forced upstream errors that cause retries, a fallback and an open
circuit, an unknown model, a malformed body, a slow call), waits for the
scrapes, then asks Prometheus's HTTP API to evaluate every PromQL expression
of every dashboard panel and every alert rule, with Grafana's template
variables substituted.
A misspelled metric or label therefore fails here instead of showing an empty
panel in production.

All of it runs once per OTEL_SEMCONV_STABILITY_OPT_IN mode (v1.41, the next
generation, both), so the queries covering both generations are proven in each.

The gateway also exports OTLP metrics to a small in-test OTLP/HTTP receiver,
standing in for the collector: the names that path yields (after the
collector's Prometheus translation) must equal the direct /metrics names, and
its points must carry trace_id exemplars.

Skipped only when the `prometheus` binary is absent.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import openai
import pytest
import yaml
from openai.types.chat import ChatCompletionMessageParam
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from prometheus_client.parser import text_string_to_metric_families

from tests.stack.stackfiles import (
    DASHBOARDS,
    ROOT,
    RULE_FILES,
    alert_rules,
    documented_series,
    grouping_labels,
    iter_panels,
    load_json,
    matcher_labels,
    metric_names,
    promql_exprs,
    split_threshold,
)

PROMETHEUS = shutil.which("prometheus")
pytestmark = [
    pytest.mark.integration,  # a Prometheus server, sockets and processes: the slow tier
    pytest.mark.skipif(PROMETHEUS is None,
                       reason="the `prometheus` binary is not installed (apt-get install prometheus)"),
]

JOB = "llm-gateway"
MODELS = ("gpt-4.1", "claude-sonnet-4.5", "gemini-2.5-flash", "deepseek-v3.2")
# Grafana's template variables as a user with everything selected sees them.
SUBSTITUTIONS = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
    "$currency_rate": "1",
    "$currency": "USD",
    "$job": JOB,
    "$model": ".*",
    "$provider": ".*",
    "$key": ".*",
    "$team": ".*",
}
# The only series allowed to be absent under this traffic, and why. An
# expression may come back empty only if it reads one of these; every other
# metric it reads must be on /metrics, and every name and label it uses must
# be in docs/metrics.md.
NOT_PRODUCED_HERE = {
    "gateway_budget_spend_usd": "no budgets: spend control is not configured in this test",
    "gateway_budget_limit_usd": "no budgets: spend control is not configured in this test",
    "gateway_budget_rejections_total": "no budget to refuse a request",
    "gateway_rate_limited_total": "no rate limit is hit (it would refuse the test's own traffic)",
    "gateway_runaway_events_total": "the runaway guard does not trigger under this traffic",
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_json(url: str, timeout: float = 10.0) -> Any:
    """GET a URL and decode its JSON body (also for 4xx answers with a JSON body)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return json.loads(exc.read())


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    """Poll `predicate` until it is truthy, else fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


@dataclass
class Process:
    """A child process with its log file; stopped (and waited for) exactly once."""

    popen: subprocess.Popen[bytes]
    log: IO[bytes]
    log_path: Path

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        self.log.close()

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def start(args: list[str], log_path: Path, env: dict[str, str], cwd: Path) -> Process:
    """Start a child process with stdout and stderr in `log_path`."""
    log = log_path.open("wb")
    popen = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    return Process(popen, log, log_path)


@dataclass
class OtlpSink:
    """A minimal OTLP/HTTP metrics receiver standing in for the collector."""

    requests: list[ExportMetricsServiceRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if self.path == "/v1/metrics":
                    request = ExportMetricsServiceRequest()
                    request.ParseFromString(body)
                    with sink.lock:
                        sink.requests.append(request)
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler

    def exemplars(self, name: str) -> list[Any]:
        """Every exemplar exported for `name` (the SDK reports each only in the export after it)."""
        found: list[Any] = []
        with self.lock:
            for request in self.requests:
                for resource_metrics in request.resource_metrics:
                    for scope_metrics in resource_metrics.scope_metrics:
                        for metric in scope_metrics.metrics:
                            if metric.name == name:
                                data = getattr(metric, metric.WhichOneof("data"))
                                found.extend(e for p in data.data_points for e in p.exemplars)
        return found

    def latest_metrics(self) -> dict[str, Any]:
        """The most recent export of each metric (cumulative, so the latest is complete)."""
        found: dict[str, Any] = {}
        with self.lock:
            for request in self.requests:
                for resource_metrics in request.resource_metrics:
                    for scope_metrics in resource_metrics.scope_metrics:
                        for metric in scope_metrics.metrics:
                            found[metric.name] = metric
        return found


@dataclass
class Stack:
    """The running gateway and Prometheus, and what the traffic did."""

    gateway_url: str
    prometheus_url: str
    otlp: OtlpSink
    metrics_text: str
    requests_sent: int

    def query(self, expr: str) -> dict[str, Any]:
        url = f"{self.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        return dict(http_json(url))

    def label_values(self, label: str, match: str) -> list[str]:
        query = urllib.parse.urlencode({"match[]": match})
        return list(http_json(f"{self.prometheus_url}/api/v1/label/{label}/values?{query}")["data"])


def gateway_config() -> dict[str, Any]:
    """The embedded default config plus resilience settings that make every panel's series
    appear, and a model with no price.

    gemini-2.5-flash falls back to gpt-4.1 (so a forced 500 yields retries and
    a fallback), and the embeddings model's circuit opens on its first failure
    (so the circuit-state gauge reaches "open" without disturbing chat traffic).
    """
    config = yaml.safe_load((ROOT / "gateway" / "default_config.yaml").read_text(encoding="utf-8"))
    models = config["models"]
    models["gemini-2.5-flash"]["fallbacks"] = ["gpt-4.1"]
    models["text-embedding-3-small"]["circuit_breaker"] = {"failure_threshold": 1, "cooldown_s": 600}
    models["text-embedding-3-small"]["retry"] = {"max_attempts": 1}
    # A model with no price anywhere (not in the catalog, none set): the unpriced panel's.
    models["in-house-llm"] = {"provider": "sim"}
    return dict(config)


def prometheus_config(gateway_port: int) -> dict[str, Any]:
    """The generated Prometheus config: scrape the gateway each second, load the shipped rules."""
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in RULE_FILES],
        "scrape_configs": [
            {
                "job_name": JOB,
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [f"127.0.0.1:{gateway_port}"]}],
            }
        ],
    }


async def drive_traffic(base_url: str, round_no: int) -> int:
    """One round of mixed traffic through the official SDK; returns requests sent."""
    sent = 0
    async with openai.AsyncOpenAI(base_url=base_url + "/v1", api_key="sk-live-test", max_retries=0) as client:
        calls: list[Awaitable[object]] = []
        for model in MODELS:
            messages: list[ChatCompletionMessageParam] = [
                {"role": "user", "content": f"round {round_no}: say hello to {model} " * 20}
            ]
            calls.append(client.chat.completions.create(model=model, messages=messages, max_tokens=12))
            calls.append(_stream(client, model, messages))
        calls.append(
            client.chat.completions.create(
                model="claude-sonnet-4.5",
                messages=[{"role": "user", "content": "take your time"}],
                max_tokens=8,
                extra_headers={"x-mock-latency-ms": "400"},
            )
        )
        calls.append(client.embeddings.create(model="text-embedding-3-small", input=["a", "b c"]))
        calls.append(client.chat.completions.create(
            model="in-house-llm", messages=[{"role": "user", "content": "no price"}], max_tokens=8))
        # A long prompt (>= 1024 tokens): the simulated provider reports cached input tokens.
        long_prompt = " ".join(f"line {i} of the incident log" for i in range(400))
        calls.append(
            client.chat.completions.create(
                model="gpt-4.1", messages=[{"role": "user", "content": long_prompt}], max_tokens=8
            )
        )
        errors = [
            ("gemini-2.5-flash", "500", openai.InternalServerError),
            ("deepseek-v3.2", "429", openai.RateLimitError),
            ("gpt-4.1", "503", openai.InternalServerError),
        ]
        for model, status, _ in errors:
            calls.append(
                client.chat.completions.create(
                    model=model,
                    messages=[{"role": "user", "content": "fail please"}],
                    extra_headers={"x-mock-error": status},
                )
            )
        calls.append(
            client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
        )
        results = await asyncio.gather(*calls, return_exceptions=True)
        sent += len(calls)
        expected_errors = (openai.InternalServerError, openai.RateLimitError, openai.NotFoundError)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, expected_errors):
                raise result
        assert sum(isinstance(r, expected_errors) for r in results) == len(errors) + 1
    sent += await asyncio.to_thread(_malformed, base_url)
    return sent


async def trip_circuit(base_url: str) -> int:
    """One failing embeddings call: the model's breaker (threshold 1) opens."""
    async with openai.AsyncOpenAI(base_url=base_url + "/v1", api_key="sk-live-test", max_retries=0) as client:
        with pytest.raises(openai.InternalServerError):
            await client.embeddings.create(
                model="text-embedding-3-small", input=["x"], extra_headers={"x-mock-error": "503"}
            )
    return 1


async def _stream(client: openai.AsyncOpenAI, model: str, messages: list[ChatCompletionMessageParam]) -> int:
    stream = await client.chat.completions.create(
        model=model,
        messages=messages,
        max_tokens=12,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = 0
    usage_seen = False
    async for chunk in stream:
        chunks += 1
        usage_seen = usage_seen or chunk.usage is not None
    assert usage_seen, f"{model}: streamed answer carried no usage"
    return chunks


def _malformed(base_url: str) -> int:
    request = urllib.request.Request(
        base_url + "/v1/chat/completions",
        data=b'{"model": "gpt-4.1", "messages": [',
        headers={"content-type": "application/json", "authorization": "Bearer sk-live-test"},
        method="POST",
    )
    try:
        urllib.request.urlopen(request, timeout=10).close()
    except urllib.error.HTTPError as exc:
        with exc:
            assert exc.code == 400
    else:
        pytest.fail("a malformed body was accepted")
    return 1


# OTEL_SEMCONV_STABILITY_OPT_IN values: the dashboards and alerts must work in each.
SEMCONV_MODES = ("", "gen_ai_latest_experimental", "gen_ai_latest_experimental/dup")


@pytest.fixture(scope="module", params=SEMCONV_MODES, ids=["v1.41", "latest", "dup"])
def stack(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Gateway + Prometheus + OTLP sink, with two rounds of traffic already scraped, the
    gateway emitting the GenAI conventions' generation(s) of the mode."""
    assert PROMETHEUS is not None
    work = tmp_path_factory.mktemp("stack")
    sink = OtlpSink()
    otlp_server = ThreadingHTTPServer(("127.0.0.1", 0), sink.handler())
    otlp_thread = threading.Thread(target=otlp_server.serve_forever, daemon=True)
    otlp_thread.start()
    gateway_port, prometheus_port = free_port(), free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "GATEWAY_"))
        and not k.endswith(("_API_KEY", "_BASE_URL"))
        and k != "REDIS_URL"
    }
    env.update(
        PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        OTEL_SERVICE_NAME=JOB,
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=f"http://127.0.0.1:{otlp_server.server_port}/v1/metrics",
        OTEL_EXPORTER_OTLP_METRICS_PROTOCOL="http/protobuf",
        OTEL_METRIC_EXPORT_INTERVAL="1000",
    )
    if request.param:
        env["OTEL_SEMCONV_STABILITY_OPT_IN"] = request.param
    processes: list[Process] = []
    try:
        gateway_yaml = work / "gateway.yaml"
        gateway_yaml.write_text(yaml.safe_dump(gateway_config()))
        gateway = start(
            [
                sys.executable,
                "-m",
                "gateway",
                "serve",
                "--config",
                str(gateway_yaml),
                "--host",
                "127.0.0.1",
                "--port",
                str(gateway_port),
            ],
            work / "gateway.log",
            env,
            work,
        )
        processes.append(gateway)
        gateway_url = f"http://127.0.0.1:{gateway_port}"
        wait_for(lambda: http_json(gateway_url + "/health")["status"] == "ok", 30, "the gateway")

        config = work / "prometheus.yml"
        config.write_text(yaml.safe_dump(prometheus_config(gateway_port)))
        prometheus = start(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={work / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
            ],
            work / "prometheus.log",
            env,
            work,
        )
        processes.append(prometheus)
        prometheus_url = f"http://127.0.0.1:{prometheus_port}"
        wait_for(
            lambda: urllib.request.urlopen(prometheus_url + "/-/ready", timeout=2).status == 200,
            60,
            "Prometheus to be ready",
        )
        stack = Stack(gateway_url, prometheus_url, sink, "", 0)
        wait_for(lambda: stack.query(f'up{{job="{JOB}"}}')["data"]["result"], 30, "a first scrape")

        # Two rounds a few scrapes apart, so every counter has a rate.
        sent = asyncio.run(drive_traffic(gateway_url, 1))
        time.sleep(3)
        sent += asyncio.run(drive_traffic(gateway_url, 2))
        sent += asyncio.run(trip_circuit(gateway_url))
        total = f'sum(gateway_requests_total{{job="{JOB}"}})'

        def all_scraped() -> bool:
            result = stack.query(total)["data"]["result"]
            return bool(result) and float(result[0]["value"][1]) >= sent

        wait_for(all_scraped, 30, f"Prometheus to see all {sent} requests")
        time.sleep(3)  # a few more scrapes and rule evaluations
        with urllib.request.urlopen(gateway_url + "/metrics", timeout=10) as response:
            stack.metrics_text = response.read().decode()
        stack.requests_sent = sent
        yield stack
    except BaseException:
        for process in processes:
            sys.stderr.write(f"--- {process.log_path.name} ---\n{process.tail()}\n")
        raise
    finally:
        for process in reversed(processes):
            process.stop()
        otlp_server.shutdown()
        otlp_server.server_close()
        otlp_thread.join(timeout=10)


def substitute(expr: str) -> str:
    """Replace Grafana template variables, longest names first."""
    for name in sorted(SUBSTITUTIONS, key=len, reverse=True):
        expr = expr.replace(name, SUBSTITUTIONS[name])
    assert "$" not in expr, f"unsubstituted variable in {expr}"
    return expr


def direct_names(metrics_text: str) -> dict[str, set[str]]:
    """Sample names on /metrics with the label names they carry with a non-empty value."""
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            labels = {k for k, v in sample.labels.items() if v != "" and not k.startswith("otel_scope_")}
            names.setdefault(sample.name, set()).update(labels)
    return names


def check_empty_result(where: str, expr: str, direct: dict[str, set[str]]) -> None:
    """An empty answer is only fine for an expression reading a series this traffic cannot produce."""
    documented = documented_series()
    names = metric_names(expr) - {"up"}
    absent_ok = names & set(NOT_PRODUCED_HERE)
    assert absent_ok, f"{where}: no data for {expr}"
    for name in names:
        assert name in documented, f"{where}: {name} is not in docs/metrics.md"
        if name not in NOT_PRODUCED_HERE:
            assert name in direct, f"{where}: {name} is not on the gateway's /metrics"
    rows = " ".join(documented[name] for name in names)
    for name, labels in matcher_labels(expr).items():
        for label in labels - {"job", "instance", "le"}:
            assert f"`{label}`" in documented[name] or label in direct.get(name, set()), (
                f"{where}: label {label} of {name} is not documented"
            )
    for label in grouping_labels(expr) - {"job", "instance", "le"}:
        assert f"`{label}`" in rows, f"{where}: grouping label {label} is not documented for {names}"


def assert_evaluates(stack: Stack, where: str, expr: str) -> None:
    """Prometheus parses `expr`; it returns data unless it reads a series this traffic lacks."""
    answer = stack.query(expr)
    assert answer["status"] == "success", f"{where}: {answer.get('error')} in {expr}"
    result = answer["data"]["result"]
    if answer["data"]["resultType"] == "scalar":
        result = [result]
    if result:
        values = [float(item["value"][1]) if isinstance(item, dict) else float(item[1]) for item in result]
        assert any(not math.isnan(v) for v in values), f"{where}: only NaN for {expr}"
        return
    check_empty_result(where, expr, direct_names(stack.metrics_text))


def test_traffic_reached_prometheus(stack: Stack) -> None:
    """Every request sent was counted and scraped, with fallbacks taken and a circuit open."""
    answer = stack.query(f'sum(gateway_requests_total{{job="{JOB}"}})')
    assert float(answer["data"]["result"][0]["value"][1]) == stack.requests_sent
    statuses = set(stack.label_values("http_response_status_code", f'gateway_requests_total{{job="{JOB}"}}'))
    assert {"200", "400", "404", "429", "500", "503"} <= statuses
    fallbacks = stack.query(f'sum(gateway_fallbacks_total{{job="{JOB}", from_model="gemini-2.5-flash"}})')
    assert float(fallbacks["data"]["result"][0]["value"][1]) >= 2
    circuit = next(r for r in alert_rules() if r["alert"] == "LLMCircuitBreakerOpen")
    (open_circuit,) = stack.query(circuit["expr"])["data"]["result"]
    assert open_circuit["metric"]["gen_ai_request_model"] == "text-embedding-3-small"


def test_every_dashboard_expression_evaluates(stack: Stack) -> None:
    """Each PromQL target of every dashboard parses and returns data (or is an explicit exception)."""
    exprs = list(promql_exprs())
    assert len(exprs) > 20
    for where, expr in exprs:
        assert_evaluates(stack, where, substitute(expr))


def test_every_dashboard_variable_has_values(stack: Stack) -> None:
    """The job, model, provider, key and team variables list values from the scraped series."""
    for path in DASHBOARDS:
        for variable in load_json(path)["templating"]["list"]:
            if variable["type"] != "query":
                continue
            match = re.fullmatch(
                r"label_values\((?:(?P<selector>.+),\s*)?(?P<label>\w+)\)", variable["definition"]
            )
            assert match, variable["definition"]
            selector = substitute(match["selector"] or "{__name__=~'.+'}")
            values = stack.label_values(match["label"], selector)
            assert values, f"{variable['name']}: no values for {variable['definition']}"
            if variable["name"] == "model":
                assert set(MODELS) <= set(values)
            if variable["name"] == "job":
                assert values == [JOB]


def test_every_alert_expression_evaluates(stack: Stack) -> None:
    """Each alert parses, and the query under its threshold returns data (or is an explicit exception)."""
    rules = list(alert_rules())
    assert rules
    for rule in rules:
        answer = stack.query(rule["expr"])
        assert answer["status"] == "success", f"{rule['alert']}: {answer.get('error')}"
        parts = split_threshold(rule["expr"])
        assert parts is not None, rule["alert"]
        assert_evaluates(stack, rule["alert"], parts[0])


def test_prometheus_loaded_and_evaluated_every_rule(stack: Stack) -> None:
    """Prometheus loaded every shipped alert and evaluates each without error."""
    names = {r["alert"] for r in alert_rules()}

    def evaluated() -> bool:
        groups = http_json(stack.prometheus_url + "/api/v1/rules")["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return {r["name"] for r in rules} == names and all(
            r["health"] == "ok" and r.get("lastEvaluation", "").startswith("2") for r in rules
        )

    wait_for(evaluated, 20, "every rule to be evaluated with health ok")


def test_exceptions_are_few_and_documented() -> None:
    """The list of series allowed to be absent is short and every entry is in docs/metrics.md."""
    assert len(NOT_PRODUCED_HERE) <= 5
    assert set(NOT_PRODUCED_HERE) <= set(documented_series())


# --- the collector path ------------------------------------------------------

_UNIT_SUFFIXES = {"s": "seconds", "ms": "milliseconds", "By": "bytes", "%": "percent"}


def prometheus_name(name: str, unit: str, kind: str) -> str:
    """The collector's Prometheus translation (UnderscoreEscapingWithSuffixes) of an OTLP metric."""
    tokens = [t for t in re.split(r"[^a-zA-Z0-9]+", name) if t]
    suffix = "" if unit.startswith("{") or unit in {"", "1"} else _UNIT_SUFFIXES.get(unit, unit)
    if suffix and suffix not in tokens:
        tokens.append(suffix)
    if kind == "counter" and tokens[-1] != "total":
        tokens.append("total")
    return "_".join(tokens)


def collector_names(metrics: dict[str, Any]) -> dict[str, set[str]]:
    """Sample names and attribute label names the collector's exporter would expose."""
    names: dict[str, set[str]] = {}
    for metric in metrics.values():
        kind = metric.WhichOneof("data")
        if kind == "histogram":
            base = prometheus_name(metric.name, metric.unit, "histogram")
            points = list(metric.histogram.data_points)
            samples = [base + "_bucket", base + "_sum", base + "_count"]
        elif kind == "sum":
            monotonic = metric.sum.is_monotonic
            samples = [prometheus_name(metric.name, metric.unit, "counter" if monotonic else "gauge")]
            points = list(metric.sum.data_points)
        else:
            samples = [prometheus_name(metric.name, metric.unit, "gauge")]
            points = list(getattr(metric, kind).data_points)
        labels = {re.sub(r"[^a-zA-Z0-9_]", "_", a.key) for p in points for a in p.attributes}
        for sample in samples:
            names.setdefault(sample, set()).update(labels | ({"le"} if sample.endswith("_bucket") else set()))
    return names


def test_direct_scrape_and_collector_path_give_the_same_series(stack: Stack) -> None:
    """The OTLP path, translated as the collector does, yields the /metrics names and labels."""
    wait_for(lambda: "gateway.cost.usd" in stack.otlp.latest_metrics(), 15, "an OTLP export")
    via_collector = collector_names(stack.otlp.latest_metrics())
    direct = {k: v for k, v in direct_names(stack.metrics_text).items() if k != "target_info"}
    assert set(via_collector) == set(direct)
    for name, labels in direct.items():
        assert labels == via_collector[name], name
    documented = documented_series()
    assert set(direct) <= set(documented), "on /metrics but not in docs/metrics.md"


def test_dashboards_read_only_series_the_gateway_emits(stack: Stack) -> None:
    """Every metric a dashboard or alert reads is emitted by the gateway (or is an explicit exception)."""
    direct = set(direct_names(stack.metrics_text))
    exprs = list(promql_exprs()) + [(r["alert"], r["expr"]) for r in alert_rules()]
    used = set().union(*(metric_names(expr) for _, expr in exprs)) - {"up"}
    # A query reads both GenAI generations (`new or old`): one of them is emitted per mode.
    missing = {name for name in used - direct - set(NOT_PRODUCED_HERE)
               if not name.startswith("gen_ai_client_")}
    assert not missing, f"dashboards or alerts read series the gateway does not emit: {missing}"
    for where, expr in exprs:
        generations = {name for name in metric_names(expr) if name.startswith("gen_ai_client_")}
        assert not generations or generations & direct, f"{where} reads no emitted gen_ai series"
    panels_without_query = [
        p["title"]
        for path in DASHBOARDS
        for p in iter_panels(load_json(path)["panels"])
        if p["type"] != "row" and not p.get("targets")
    ]
    assert not panels_without_query


def test_otlp_points_carry_trace_exemplars(stack: Stack) -> None:
    """Latency histograms and the cost counter carry trace_id exemplars on the OTLP path."""
    for name in ("gen_ai.client.operation.duration", "gateway.cost.usd"):
        exemplars = stack.otlp.exemplars(name)
        assert exemplars, f"{name}: no exemplars"
        assert all(len(e.trace_id) == 16 and any(e.trace_id) for e in exemplars), name

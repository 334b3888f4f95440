"""Structural checks of the observability stack's files.

No Docker engine runs in CI, so the compose stack, the collector, Tempo and
Grafana cannot be started there. These tests check by structure what would
otherwise only fail at `docker compose up`: every file parses, every uid and
component a file refers to is defined, every file compose mounts exists, and
every dashboard and alert query follows the rules the dashboards depend on
(filter by `$job`, counters only through rate()/increase()).
The queries themselves are evaluated against a real Prometheus in
test_prometheus_live.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.stack.stackfiles import (
    DASHBOARDS,
    ROOT,
    RULE_FILES,
    RULE_TEST_FILES,
    SELECTOR,
    YAML_FILES,
    alert_rules,
    bare_metric_names,
    dashboard_targets,
    iter_panels,
    load_json,
    load_yaml,
    promql_exprs,
    provisioned_datasources,
    raw_counter_uses,
    split_threshold,
    target_uid,
)


def test_every_yaml_file_parses() -> None:
    """Every YAML file of the stack exists and parses to a mapping."""
    for path in YAML_FILES:
        assert path.is_file(), path
        assert isinstance(load_yaml(path), dict), path


def test_every_dashboard_is_valid_json_with_unique_panel_ids() -> None:
    """Every dashboard is valid JSON with a uid, a title and unique panel ids."""
    assert DASHBOARDS, "no dashboards under grafana/dashboards"
    for path in DASHBOARDS:
        dashboard = load_json(path)
        assert dashboard["uid"] and dashboard["title"], path
        ids = [panel["id"] for panel in iter_panels(dashboard["panels"])]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"


def test_main_dashboard_has_the_issue_panels_and_variables() -> None:
    """The "LLM Gateway" dashboard has the variables and panel kinds the issue lists."""
    dashboard = load_json(ROOT / "grafana" / "dashboards" / "llm-gateway.json")
    assert dashboard["title"] == "LLM Gateway"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert {"job", "model", "provider", "key", "team", "currency_rate"} <= set(variables)
    assert "gen_ai_request_model" in variables["model"]["definition"]
    assert "gen_ai_provider_name" in variables["provider"]["definition"]
    assert "gateway_key_alias" in variables["key"]["definition"]
    assert "gateway_team" in variables["team"]["definition"]
    assert variables["currency_rate"]["type"] in {"textbox", "constant"}
    assert variables["currency_rate"]["query"] == "1"
    titles = " | ".join(p.get("title", "") for p in iter_panels(dashboard["panels"])).lower()
    for needle in (
        "request rate by model",
        "error ratio",
        "latency p50 / p95 / p99",
        "time to first chunk",
        "tokens / s by model and type",
        "heatmap",
        "cost today",
        "cost this month",
        "cost by model",
        "cost by key",
        "cost by team",
        "budget burn",
        "fallbacks",
        "circuit breaker",
        "gateway overhead",
        "slowest",
        "most expensive",
    ):
        assert needle in titles, needle
    kinds = {p["type"] for p in iter_panels(dashboard["panels"])}
    assert {"timeseries", "heatmap", "stat", "bargauge", "state-timeline", "table"} <= kinds


def test_latency_panel_thresholds_and_exemplars() -> None:
    """Latency has 2 s / 5 s thresholds, and latency and cost panels request exemplars."""
    dashboard = load_json(ROOT / "grafana" / "dashboards" / "llm-gateway.json")
    panels = {p.get("title", ""): p for p in iter_panels(dashboard["panels"])}
    latency = next(p for t, p in panels.items() if t.startswith("Upstream latency p50"))
    steps = latency["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps[1:]] == [2, 5]
    assert all(t["exemplar"] for t in latency["targets"])
    cost = next(p for t, p in panels.items() if t.startswith("Cost rate by model"))
    assert all(t["exemplar"] for t in cost["targets"])


def test_every_panel_datasource_uid_is_provisioned() -> None:
    """Every panel, target and variable points at a provisioned datasource uid."""
    uids = set(provisioned_datasources())
    for path in DASHBOARDS:
        dashboard = load_json(path)
        for panel in iter_panels(dashboard["panels"]):
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] in uids, (path.name, panel["title"])
            for target in panel.get("targets", []):
                assert target_uid(panel, target) in uids, (path.name, panel["title"])
        for variable in dashboard["templating"]["list"]:
            if "datasource" in variable:
                assert variable["datasource"]["uid"] in uids, variable["name"]


def test_exemplar_and_trace_links_point_at_existing_uids() -> None:
    """Exemplar destinations (trace_id, traceID) and Tempo's metric links resolve to datasources."""
    datasources = provisioned_datasources()
    prometheus = datasources["prometheus"]
    tempo = datasources["tempo"]
    destinations = prometheus["jsonData"]["exemplarTraceIdDestinations"]
    assert {d["name"] for d in destinations} >= {"trace_id", "traceID"}
    for destination in destinations:
        assert datasources[destination["datasourceUid"]]["type"] == "tempo"
    tempo_json = tempo["jsonData"]
    assert datasources[tempo_json["tracesToMetrics"]["datasourceUid"]]["type"] == "prometheus"
    assert datasources[tempo_json["serviceMap"]["datasourceUid"]]["type"] == "prometheus"
    assert tempo_json["nodeGraph"]["enabled"] is True
    for query in tempo_json["tracesToMetrics"]["queries"]:
        # Grafana expands ${VAR} in provisioning files: a literal $ is written $$.
        assert re.search(r"(?<!\$)\$(?!\$)", query["query"]) is None, query["query"]


def test_dashboard_provider_points_at_the_mounted_dashboards() -> None:
    """The dashboard provider reads the directory compose mounts the dashboards into."""
    provider = load_yaml(ROOT / "grafana" / "provisioning" / "dashboards" / "dashboards.yaml")
    path = provider["providers"][0]["options"]["path"]
    grafana = load_yaml(ROOT / "docker-compose.yml")["services"]["grafana"]
    assert f"./grafana/dashboards:{path}:ro" in grafana["volumes"]


def test_collector_pipelines_reference_only_defined_components() -> None:
    """Every pipeline's receivers, processors, exporters and every extension are defined."""
    config = load_yaml(ROOT / "otel-collector.yaml")
    service = config["service"]
    for extension in service.get("extensions", []):
        assert extension in config.get("extensions", {}), extension
    used: set[str] = set()
    for name, pipeline in service["pipelines"].items():
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                assert component in config.get(kind, {}), f"{name}: {kind} {component}"
                used.add(component)
        assert pipeline["processors"][0] == "memory_limiter", f"{name}: memory_limiter first"
    defined = {c for kind in ("receivers", "processors", "exporters") for c in config[kind]}
    assert defined == used, f"defined but unused: {defined - used}"


def test_collector_config_matches_the_pinned_release() -> None:
    """The collector binds 0.0.0.0, uses 0.159's snake_case names and exposes exemplars."""
    config = load_yaml(ROOT / "otel-collector.yaml")
    image = load_yaml(ROOT / "docker-compose.yml")["services"]["otel-collector"]["image"]
    assert image == "otel/opentelemetry-collector-contrib:0.159.0"
    exporters = config["exporters"]
    # Deprecated aliases since v0.144: otlp -> otlp_grpc, otlphttp -> otlp_http.
    assert not [e for e in exporters if e.split("/")[0] in {"otlp", "otlphttp"}]
    assert exporters["otlp_grpc/tempo"]["endpoint"] == "tempo:4317"
    assert exporters["otlp_grpc/tempo"]["tls"]["insecure"] is True
    prometheus = exporters["prometheus"]
    assert prometheus["endpoint"] == "0.0.0.0:8889"
    assert prometheus["enable_open_metrics"] is True
    assert prometheus["resource_to_telemetry_conversion"]["enabled"] is True
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"
    assert config["extensions"]["health_check"]["endpoint"] == "0.0.0.0:13133"


def test_tempo_config_has_no_removed_2x_sections() -> None:
    """Tempo 3.x rejects the ingester/compactor blocks; span metrics go to Prometheus."""
    config = load_yaml(ROOT / "tempo.yaml")
    assert not {"ingester", "compactor", "ingester_client", "metrics_generator_client"} & set(config)
    generator = config["metrics_generator"]
    (remote_write,) = generator["storage"]["remote_write"]
    assert remote_write["url"] == "http://prometheus:9090/api/v1/write"
    assert remote_write["send_exemplars"] is True
    processors = config["overrides"]["defaults"]["metrics_generator"]["processors"]
    assert set(processors) == {"span-metrics", "service-graphs"}
    assert config["storage"]["trace"]["backend"] == "local"


def test_compose_services_reference_existing_files() -> None:
    """Bind mounts, build contexts and required env files of every service exist."""
    compose = load_yaml(ROOT / "docker-compose.yml")
    named_volumes = set(compose.get("volumes", {}))
    for name, service in compose["services"].items():
        build = service.get("build")
        if build is not None:
            context = build if isinstance(build, str) else build.get("context", ".")
            assert (ROOT / context / "Dockerfile").is_file(), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {source}"
            else:
                assert source in named_volumes, f"{name}: undeclared volume {source}"
        for env_file in service.get("env_file", []):
            entry = {"path": env_file} if isinstance(env_file, str) else env_file
            if entry.get("required", True):
                assert (ROOT / entry["path"]).is_file(), f"{name}: {entry['path']}"
            else:
                # Optional .env: the documented template must exist instead.
                assert (ROOT / f"{entry['path']}.example").is_file(), name


def test_compose_images_are_pinned_and_wired() -> None:
    """Images are pinned, Prometheus gets its feature flags and the gateway its OTel env."""
    services = load_yaml(ROOT / "docker-compose.yml")["services"]
    for name, service in services.items():
        if "build" in service:
            continue
        image = service["image"]
        tag = image.rsplit(":", 1)[-1] if ":" in image else ""
        assert tag and tag != "latest", f"{name}: unpinned image {image}"
    flags = services["prometheus"]["command"]
    assert "--enable-feature=exemplar-storage" in flags
    assert "--web.enable-remote-write-receiver" in flags
    assert services["prometheus"]["image"].startswith("prom/prometheus:v3.")
    assert services["grafana"]["image"].startswith("grafana/grafana:13.")
    assert services["tempo"]["image"].startswith("grafana/tempo:3.")
    env = services["gateway"]["environment"]
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4317"
    assert env["OTEL_SERVICE_NAME"] == "llm-gateway"
    assert env["OTEL_METRIC_EXPORT_INTERVAL"] == "5000"
    assert "/demo/loadgen.py" in services["loadgen"]["command"]
    assert "./demo:/demo:ro" in services["loadgen"]["volumes"]


def test_env_example_lists_provider_keys_commented() -> None:
    """.env.example names each provider key, commented out, with no real value."""
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "DEEPSEEK_API_KEY"):
        assert re.search(rf"^# {key}=", text, re.MULTILINE), key
    assert not re.search(r"^[A-Z_]+=", text, re.MULTILINE), "no uncommented assignments"


def test_dockerfile_runs_as_non_root_with_healthcheck() -> None:
    """The image is python:3.11-slim, non-root, health-checked and serves on 8080."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "FROM python:3.11-slim" in text
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users and not users[-1].startswith(("root", "0")), users
    assert re.search(r"^HEALTHCHECK .*urllib.*?/health", text, re.MULTILINE | re.DOTALL)
    assert re.search(r"^EXPOSE 8080$", text, re.MULTILINE)
    assert '"llm-gateway", "serve", "--host", "0.0.0.0", "--port", "8080"' in text
    for line in re.findall(r"^COPY (?!--from)(.+)$", text, re.MULTILINE):
        *sources, _ = line.split()
        for source in sources:
            assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for needed in ("pyproject.toml", "setup.py", "MANIFEST.in", "build_support", "README.md", "gateway"):
        assert needed not in ignored, f".dockerignore drops {needed}"


def test_prometheus_configs_scrape_without_double_counting() -> None:
    """The main config stores gateway data only via the collector; the direct one scrapes it."""
    main = load_yaml(ROOT / "prometheus.yml")
    jobs = {job["job_name"]: job for job in main["scrape_configs"]}
    assert jobs["otel-collector-exporter"]["honor_labels"] is True
    for job in jobs.values():
        targets = [t for sc in job.get("static_configs", []) for t in sc["targets"]]
        if any(t.startswith("gateway:") for t in targets):
            # Liveness only: every scraped sample is dropped.
            assert job["metric_relabel_configs"] == [
                {"source_labels": ["__name__"], "regex": ".+", "action": "drop"}
            ]
    direct = load_yaml(ROOT / "prometheus-direct.yml")
    direct_jobs = {job["job_name"]: job for job in direct["scrape_configs"]}
    assert direct_jobs["llm-gateway"]["static_configs"][0]["targets"] == ["gateway:9464"]
    assert "metric_relabel_configs" not in direct_jobs["llm-gateway"]
    for config in (main, direct):
        assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
        matched = [p for pattern in config["rule_files"] for p in ROOT.glob(pattern)]
        assert sorted(matched) == RULE_FILES


def test_prometheus_scrapes_the_gateways_metrics_port_from_compose() -> None:
    """Both Prometheus configs scrape the metrics port docker-compose.yml gives the gateway
    (so liveness holds once virtual keys close /metrics on the API port)."""
    compose = load_yaml(ROOT / "docker-compose.yml")
    env = compose["services"]["gateway"]["environment"]
    target = f"gateway:{env['GATEWAY_METRICS_PORT']}"
    assert env["GATEWAY_METRICS_HOST"] == "0.0.0.0"
    assert f"{env['GATEWAY_METRICS_PORT']}:" not in str(compose["services"]["gateway"]["ports"])
    for name in ("prometheus.yml", "prometheus-direct.yml"):
        targets = [t for job in load_yaml(ROOT / name)["scrape_configs"]
                   for sc in job.get("static_configs", []) for t in sc["targets"]
                   if t.startswith("gateway:")]
        assert targets == [target], name


def test_every_dashboard_query_filters_by_job() -> None:
    """Every metric selector of every dashboard query carries job=~"$job"."""
    for where, expr in promql_exprs():
        selectors = list(SELECTOR.finditer(expr))
        assert selectors, where
        for match in selectors:
            assert 'job=~"$job"' in match.group("matchers"), f"{where}: {match.group(0)}"
        assert not bare_metric_names(expr), f"{where}: {bare_metric_names(expr)} without matchers"
    for path in DASHBOARDS:
        dashboard = load_json(path)
        for title, target in dashboard_targets(dashboard):
            if "query" in target and target.get("queryType") == "traceql":
                assert "$job" in target["query"], title
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query" and variable["name"] != "job":
                assert '{job=~"$job"}' in variable["definition"], variable["name"]


def test_no_raw_counters_in_dashboards_or_alerts() -> None:
    """Counters (and histogram buckets/sums/counts) are only read through rate()/increase()."""
    exprs = list(promql_exprs()) + [(r["alert"], r["expr"]) for r in alert_rules()]
    assert exprs
    for where, expr in exprs:
        assert not raw_counter_uses(expr), f"{where}: {raw_counter_uses(expr)}"


def test_raw_counter_check_catches_raw_use() -> None:
    """The raw-counter check itself flags a bare counter and accepts rate()."""
    assert raw_counter_uses('sum(gateway_cost_usd_total{job=~"$job"})')
    assert raw_counter_uses('gateway_requests_total{job="x"}[5m]')
    assert not raw_counter_uses('sum(rate(gateway_cost_usd_total{job=~"$job"}[5m]))')
    assert not raw_counter_uses('increase(x_bucket{le="1"}[1h])')


def test_bare_metric_check_catches_selector_without_job() -> None:
    """The job-filter check flags a metric used without matchers and ignores label names."""
    assert bare_metric_names("sum(rate(gateway_requests_total[5m]))") == ["gateway_requests_total"]
    assert not bare_metric_names(
        'sum by (gen_ai_request_model) (rate(gateway_requests_total{job=~"$job"}[5m]))'
    )


def test_alert_rules_have_summaries_naming_subject_and_value() -> None:
    """Every alert has a severity and a summary naming its model (or budget/instance) and value."""
    rules = list(alert_rules())
    names = {r["alert"] for r in rules}
    assert len(names) == len(rules)
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        summary = rule["annotations"]["summary"]
        assert "$value" in summary, rule["alert"]
        assert re.search(r"\$labels\.(gen_ai_request_model|gateway_budget|instance)", summary), rule["alert"]


def test_alert_exprs_end_in_one_threshold_comparison() -> None:
    """Each alert expr is `<query> <op> <number>`, the form the live test evaluates."""
    for rule in alert_rules():
        assert split_threshold(rule["expr"]) is not None, rule["alert"]


def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    """promtool tests cover every alert with at least one firing and one silent case."""
    firing: set[str] = set()
    silent: set[str] = set()
    for path in RULE_TEST_FILES:
        suite = load_yaml(path)
        for rule_file in suite["rule_files"]:
            assert (path.parent / rule_file).resolve() in RULE_FILES
        for test in suite["tests"]:
            for case in test.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else silent).add(case["alertname"])
    names = {r["alert"] for r in alert_rules()}
    assert names == firing, f"never tested firing: {names - firing}"
    assert names == silent, f"never tested silent: {names - silent}"


def uncomment_receiver_examples(text: str) -> str:
    """Turn alertmanager.yml's commented receiver and SMTP examples into live config."""
    out = []
    section = ""
    for line in text.splitlines():
        if re.match(r"^[a-z_]+:", line):
            section = line.split(":")[0]
        example = re.match(r"^(?P<indent>\s+)# (?P<body>(?!---)\S.*)$", line)
        if example is None:
            out.append(line)
            continue
        in_receivers = section == "receivers" and len(example["indent"]) >= 4
        in_global = section == "global" and re.match(r"(smtp_|slack_api_url_file)", example["body"])
        out.append(example["indent"] + example["body"] if in_receivers or in_global else line)
    return "\n".join(out) + "\n"


@pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool (prometheus-alertmanager) not installed")
@pytest.mark.integration
def test_alertmanager_examples_are_valid_once_uncommented(tmp_path: Path) -> None:
    """Both the shipped alertmanager.yml and its examples filled in pass amtool check-config."""
    shipped = ROOT / "alertmanager.yml"
    filled = tmp_path / "alertmanager.yml"
    filled.write_text(uncomment_receiver_examples(shipped.read_text(encoding="utf-8")))
    receivers = {r["name"]: r for r in load_yaml(filled)["receivers"]}
    for name in ("llm-platform", "llm-platform-critical"):
        assert {"slack_configs", "email_configs", "webhook_configs"} <= set(receivers[name])
    for path in (shipped, filled):
        result = subprocess.run(
            ["amtool", "check-config", str(path)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr

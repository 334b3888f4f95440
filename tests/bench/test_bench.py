"""The benchmark's parts do what the numbers assume: a faithful floor proxy, right ratios."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest
import yaml
from aiohttp import web

from bench import bare_proxy, gateway_config, load, report, run, targets
from gateway.config import load as load_gateway_config
from gateway.spend.config import hash_key
from tests.fakes.openai_upstream import Behaviour, RunningUpstream, running_upstream

KEY = "sk-bench"
BODY = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi there"}]}


@pytest.fixture
async def upstream() -> AsyncIterator[RunningUpstream]:
    async with running_upstream(api_key=KEY) as up:
        yield up


@pytest.fixture
async def proxy_url(upstream: RunningUpstream) -> AsyncIterator[str]:
    root = upstream.base_url.removesuffix("/v1")
    runner = web.AppRunner(bare_proxy.create_app(root, KEY), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    finally:
        await runner.cleanup()


@pytest.mark.integration
async def test_bare_proxy_forwards_body_and_swaps_in_its_key(
    upstream: RunningUpstream, proxy_url: str
) -> None:
    """The bare proxy sends the client's body unchanged, with its own upstream key."""
    headers = {"Authorization": "Bearer sk-client"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(proxy_url + "/chat/completions", json=BODY, headers=headers) as resp,
    ):
        payload = await resp.json()
    assert resp.status == 200
    assert payload["object"] == "chat.completion"
    assert upstream.state.last_request.body == BODY
    assert upstream.state.last_request.headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.integration
async def test_bare_proxy_relays_stream_events_as_they_arrive(
    upstream: RunningUpstream, proxy_url: str
) -> None:
    """A trickling stream's first event reaches the client long before the last (the
    upstream sleeps 50 ms between its 7 events; a proxy that buffered would deliver them
    together), however slow the machine."""
    upstream.state.behaviour = Behaviour(completion_tokens=5, chunk_delay_s=0.05)
    body = orjson.dumps({**BODY, "stream": True})
    async with aiohttp.ClientSession() as session:
        async with session.post(proxy_url + "/chat/completions", data=body) as resp:
            await resp.content.readuntil(b"\n\n")
            first_at = time.perf_counter()
            rest = await resp.read()
            last_at = time.perf_counter()
    assert last_at - first_at >= 0.2
    assert rest.endswith(b"data: [DONE]\n\n")


@pytest.mark.integration
async def test_bare_proxy_passes_upstream_errors_through(upstream: RunningUpstream, proxy_url: str) -> None:
    """An upstream error status and body reach the client unchanged."""
    upstream.state.behaviour = Behaviour.error(429, retry_after=1)
    async with (
        aiohttp.ClientSession() as session,
        session.post(proxy_url + "/chat/completions", json=BODY) as resp,
    ):
        payload = await resp.json()
    assert resp.status == 429
    assert payload["error"]["code"] == "rate_limit_exceeded"


def test_gateway_config_deep_merges_extras(tmp_path: Path) -> None:
    """Extra YAML merges into the generated config without dropping the base models."""
    extra = tmp_path / "extra.yaml"
    extra.write_text("models:\n  gpt-4.1: {price_per_mtok: {input: 3}}\nkeys: {k1: {}}\n")
    config = yaml.safe_load(gateway_config.render("http://u", ["gpt-4.1", "b"], extra))
    assert config["models"]["gpt-4.1"]["price_per_mtok"] == {
        "input": 3,
        "output": 8,
        "cached_input": 0.625,
    }
    assert config["models"]["b"]["provider"] == "up"
    assert config["providers"]["up"]["api_key"] == "${BENCH_UPSTREAM_KEY:-sk-bench}"
    assert config["keys"] == {"k1": {}}


def _cell(target: str, rps: float, p50: float) -> report.Cell:
    result = load.WrkResult(
        requests=int(rps * 2), duration_s=2.0, p50_ms=p50, p90_ms=p50, p99_ms=p50, errors=0, bytes=0
    )
    return report.Cell(target, "json", 32, result, 100.0)


def test_report_ratios_are_against_the_bare_proxy() -> None:
    """The table's ratio and added p50 compare each target with the bare proxy's cell."""
    runs = [
        report.TargetRun("bare", "floor", [_cell("bare", 1000, 2.0)]),
        report.TargetRun("gateway", "gw", [_cell("gateway", 700, 2.5)]),
    ]
    table = report.throughput_table(runs)
    assert "| gateway | json | 32 | 700 | 2.50 | 2.50 | 0.70 | +0.50 | 100 | 7 | 0 |" in table
    checks = report.target_checks(runs)
    assert checks == [
        "- [x] json req/s at 32 conns >= 0.50 of bare (baseline target): met",
        "- [x] json req/s at 32 conns >= 0.65 of bare (performance target): met",
    ]


def test_lua_script_carries_body_key_and_summary(tmp_path: Path) -> None:
    """The wrk script posts the JSON body with the key and prints a parseable summary line."""
    script = load.write_lua(tmp_path / "s.lua", BODY, "sk-x").read_text()
    assert '"model":"gpt-4.1"' in script
    assert 'wrk.headers["Authorization"] = "Bearer sk-x"' in script
    assert "BENCH_JSON" in script


def _spec(name: str, client_key: str = targets.CLIENT_KEY) -> targets.TargetSpec:
    return targets.specs((name,), "uvloop", {}, None, client_key)[0]


def test_each_target_is_sent_the_key_it_needs() -> None:
    """direct gets the upstream's key, the gateways and LiteLLM the bench client key."""
    assert _spec("direct").client_key == targets.UPSTREAM_KEY
    for name in ("gateway", "gateway-10pct", "gateway-nospend", "litellm"):
        assert _spec(name).client_key == targets.CLIENT_KEY
    assert _spec("gateway-extra", "sk-mine").client_key == "sk-mine"
    assert _spec("gateway", "sk-mine").client_key == targets.CLIENT_KEY
    assert targets.CLIENT_KEY != targets.UPSTREAM_KEY


@pytest.mark.integration
async def test_direct_and_bare_targets_accept_their_keys(upstream: RunningUpstream, proxy_url: str) -> None:
    """The fake upstream refuses the client key (so direct must not be sent it); the bare proxy takes any."""
    await load.check_answer(upstream.base_url + "/chat/completions", BODY, _spec("direct").client_key)
    with pytest.raises(load.LoadError, match="401"):
        await load.check_answer(upstream.base_url + "/chat/completions", BODY, targets.CLIENT_KEY)
    await load.check_answer(proxy_url + "/chat/completions", BODY, _spec("bare").client_key)
    assert upstream.state.last_request.headers["authorization"] == f"Bearer {KEY}"


def test_gateway_targets_run_with_key_budgets_and_own_ledger(tmp_path: Path) -> None:
    """gateway and gateway-10pct load bench/spend.yaml; every variant has its own ledger in the work dir."""
    ledgers = set()
    for name in ("gateway", "gateway-10pct", "gateway-py", "gateway-nospend", "gateway-extra"):
        text = targets.gateway_config_text(_spec(name), "http://127.0.0.1:9", tmp_path)
        config = load_gateway_config(text, {"BENCH_UPSTREAM_KEY": KEY})
        assert config.storage.backend == "sqlite"
        assert Path(config.storage.sqlite_path).parent == tmp_path
        ledgers.add(config.storage.sqlite_path)
        spend = config.spend
        if name == "gateway-nospend":
            assert spend.keys == () and spend.budgets == ()
            continue
        assert [(k.alias, k.team, k.key_sha256) for k in spend.keys] == [
            ("bench", "perf", hash_key(targets.CLIENT_KEY))
        ]
        assert {(b.scope, b.target) for b in spend.budgets} == {("global", None), ("team", "perf")}
        assert all(b.limit_usd >= 1_000_000 for b in spend.budgets)
    assert len(ledgers) == 5


def test_gateway_py_runs_the_source_and_the_others_the_chosen_build(tmp_path: Path) -> None:
    """With the compiled build chosen, every gateway target imports from its copy except
    gateway-py, which runs this tree's source with the same config as gateway."""
    assert _spec("gateway-py").source and not _spec("gateway").source
    assert _spec("gateway-py").env == _spec("gateway").env
    assert _spec("gateway-py").extra_configs == _spec("gateway").extra_configs
    assert targets.python_env(tmp_path)["PYTHONPATH"] == str(tmp_path)
    assert targets.python_env()["PYTHONPATH"] == str(targets.ROOT)


def test_extra_config_merges_over_spend_config(tmp_path: Path) -> None:
    """gateway-extra is the spend-controlled gateway with --extra-config merged last."""
    extra = tmp_path / "extra.yaml"
    extra.write_text("spend: {default_max_tokens: 64}\n")
    spec = targets.specs(("gateway-extra",), "uvloop", {"A": "1"}, extra)[0]
    assert spec.extra_configs == (targets.SPEND_CONFIG, extra)
    assert spec.env["A"] == "1"
    config = yaml.safe_load(targets.gateway_config_text(spec, "http://u", tmp_path))
    assert config["spend"] == {"default_max_tokens": 64}
    assert config["keys"][0]["alias"] == "bench"


def _fake_python(tmp_path: Path, script: str) -> str:
    path = tmp_path / "python"
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)
    return str(path)


@pytest.mark.integration
def test_litellm_probe(tmp_path: Path) -> None:
    """LiteLLM is available only when the given Python can find it; otherwise the reason says why."""
    missing = targets.probe_litellm(str(tmp_path / "no-such-python"))
    assert not missing.available
    assert "cannot run" in missing.reason
    absent = targets.probe_litellm(_fake_python(tmp_path, "exit 3"))
    assert not absent.available
    assert "not importable" in absent.reason and "--litellm-python" in absent.reason
    present = targets.probe_litellm(_fake_python(tmp_path, "echo 1.2.3"))
    assert present.available and present.version == "1.2.3"


def test_litellm_is_skipped_not_failed_when_unavailable() -> None:
    """Without LiteLLM the target is reported as skipped, and a run with only skips exits 0."""
    specs = targets.specs(targets.DEFAULT, "uvloop", {}, None)
    absent = targets.LitellmProbe("py", None, "litellm is not importable by py")
    portkey = targets.PortkeyProbe(Path("pk"), "1.15.2")
    to_run, skipped = run.select(specs, absent, portkey)
    assert [s.name for s in to_run] == ["direct", "bare", "gateway", "gateway-10pct", "gateway-py",
                                        "portkey"]
    assert [(r.name, r.skipped) for r in skipped] == [("litellm", "litellm is not importable by py")]
    assert run.exit_status(skipped) == 0
    assert run.exit_status([*skipped, report.TargetRun("gateway", "gw", failure="401")]) == 1
    text = report.render(skipped, [])
    assert "## Skipped (not failures)\n\n- litellm: litellm is not importable by py" in text
    assert "| litellm | LiteLLM proxy, 1 worker, defaults (skipped) |" in text
    to_run, skipped = run.select(specs, targets.LitellmProbe("py", "1.2.3"), portkey)
    assert [s.name for s in to_run] == list(targets.DEFAULT) and skipped == []


def test_litellm_runs_offline_on_the_fake_upstream() -> None:
    """Its config points every bench model at the upstream; its env keeps it off the internet."""
    config = targets.litellm_config("http://127.0.0.1:9")
    assert config["model_list"] == [
        {
            "model_name": name,
            "litellm_params": {
                "model": f"openai/{name}",
                "api_base": "http://127.0.0.1:9/v1",
                "api_key": targets.UPSTREAM_KEY,
            },
        }
        for name in (targets.MODEL, targets.TRICKLE_MODEL)
    ]
    env = targets.litellm_env()
    assert env["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    assert env["LITELLM_TELEMETRY_DISABLED"] == "true"
    assert env["LITELLM_MASTER_KEY"] == _spec("litellm").client_key
    assert not any(k.startswith("OTEL_") for k in env)


def test_report_compares_gateway_with_litellm() -> None:
    """The LiteLLM section gives gateway / LiteLLM throughput, and the performance target check uses it."""
    runs = [
        report.TargetRun("bare", "floor", [_cell("bare", 1000, 2.0)]),
        report.TargetRun("gateway", "gw", [_cell("gateway", 700, 2.5)]),
        report.TargetRun("litellm", "lt", [_cell("litellm", 50, 40.0)]),
    ]
    table = report.litellm_table(runs)
    assert "| json | 32 | 700 | 50 | 14.0x | 0.050 | 2.50 | 40.00 | 100 | 100 |" in table
    checks = report.target_checks(runs)
    assert "- [ ] json req/s at 32 conns >= 20x LiteLLM (performance target; 14.0x): NOT met" in checks
    assert "## Gateway vs LiteLLM" in report.render(runs, [])
    assert report.litellm_table(runs[:2]) == ""


def test_a_cell_with_no_completed_request_shows_no_latency() -> None:
    """A target that finished nothing within a cell (LiteLLM at 256 streams) is shown as
    such, not with a zero latency or a negative 'added' latency."""
    runs = [
        report.TargetRun("bare", "floor", [_cell("bare", 1000, 2.0)]),
        report.TargetRun("gateway", "gw", [_cell("gateway", 700, 2.5)]),
        report.TargetRun("litellm", "lt", [_cell("litellm", 0, 0.0)]),
    ]
    table = report.throughput_table(runs)
    row = next(line for line in table.splitlines() if line.startswith("| litellm"))
    assert "none completed" in row and "-0" not in row and "+" not in row
    assert "LiteLLM completed none" in report.litellm_table(runs)


def _dcell(target: str, dialect: str, mode: str, rps: float) -> report.Cell:
    result = load.WrkResult(requests=int(rps * 2), duration_s=2.0, p50_ms=1.0, p90_ms=1.0, p99_ms=1.0,
                            errors=0, bytes=0)
    return report.Cell(target, mode, 32, result, 100.0, dialect)


def test_dialect_rows_compare_each_dialect_with_its_own_bare_cells_and_flag_low_ones() -> None:
    """Each dialect's gateway cell is divided by the bare proxy's cell of the same dialect; below
    0.65 it is flagged in the table and in the checks; skipped dialects are listed with the reason."""
    runs = [
        report.TargetRun("bare", "floor", [_dcell("bare", "chat", "json", 1000),
                                           _dcell("bare", "messages", "json", 1000),
                                           _dcell("bare", "messages", "stream", 500)]),
        report.TargetRun("gateway", "gw", [_dcell("gateway", "chat", "json", 700),
                                           _dcell("gateway", "messages", "json", 800),
                                           _dcell("gateway", "messages", "stream", 300)]),
    ]
    notes = {"gemini": "gateway does not serve it: 404"}
    sections = dict(report.dialect_sections(runs, notes, ("bare", "gateway")))
    table = sections["Dialects (gateway vs the bare pass-through of the same calls)"]
    assert "| chat | json | 32 | 1,000 | 700 | 0.70 |" in table
    assert "| messages | json | 32 | 1,000 | 800 | 0.80 |" in table
    row = next(line for line in table.splitlines() if line.startswith("| messages | stream"))
    assert "| 0.60 |" in row and row.endswith("**NO** |")
    assert sections["Dialects not measured"] == "- gemini: skipped: gateway does not serve it: 404"
    checks = report.target_checks(runs)
    assert "- [ ] messages stream at 32 conns >= 0.65 of bare (0.60): NOT met" in checks
    assert run.exit_status([], notes) == 0
    assert run.exit_status([], {"gemini": "FAILED on gateway: 500"}) == 1


def test_each_gateway_among_the_dialect_targets_gets_its_own_dialect_table() -> None:
    """With `gateway-base` measured on every dialect too, it gets a table of its own against
    the same bare cells, so a before/after comparison covers every dialect."""
    runs = [
        report.TargetRun("bare", "floor", [_dcell("bare", "gemini", "json", 1000)]),
        report.TargetRun("gateway", "gw", [_dcell("gateway", "gemini", "json", 700)]),
        report.TargetRun("gateway-base", "before", [_dcell("gateway-base", "gemini", "json", 500)]),
    ]
    sections = dict(report.dialect_sections(runs, {}, ("bare", "gateway", "gateway-base")))
    title = "Dialects (gateway vs the bare pass-through of the same calls"
    assert "| gemini | json | 32 | 1,000 | 700 | 0.70 |" in sections[title + ")"]
    assert "| gemini | json | 32 | 1,000 | 500 | 0.50 |" in sections[title + ", `gateway-base`)"]


def test_gemini_rows_get_a_provider_only_when_the_gateway_knows_the_kind() -> None:
    """Anthropic and Gemini models sit on providers of their own kind at the upstream's root,
    chat on the OpenAI provider at /v1; a kind the gateway lacks adds nothing."""
    with_gemini = gateway_config.base("http://u", ["gpt-4.1"], ("openai", "anthropic", "gemini"))
    assert with_gemini["providers"]["up"]["base_url"] == "http://u/v1"
    assert with_gemini["providers"]["anth"] == {
        "kind": "anthropic", "base_url": "http://u", "api_key": "${BENCH_UPSTREAM_KEY:-sk-bench}",
        "timeout_s": 30}
    assert with_gemini["providers"]["gem"]["kind"] == "gemini"
    assert with_gemini["models"]["gemini-bench"]["provider"] == "gem"
    assert with_gemini["models"]["claude-bench"]["provider"] == "anth"
    without = gateway_config.base("http://u", ["gpt-4.1"], ("openai", "anthropic", "mock"))
    assert "gem" not in without["providers"] and "gemini-bench" not in without["models"]


def test_portkey_is_found_only_where_it_was_installed(tmp_path: Path) -> None:
    """The probe names the npm command when the package is absent, and finds the version and
    server script where it was installed; Portkey is sent the upstream key and routing headers."""
    absent = targets.probe_portkey(tmp_path)
    assert not absent.available and "npm install @portkey-ai/gateway@" in absent.reason
    package = tmp_path / "node_modules/@portkey-ai/gateway"
    (package / "build").mkdir(parents=True)
    (package / "package.json").write_text('{"version": "1.15.2"}')
    assert not targets.probe_portkey(tmp_path).available  # no server script yet
    (package / "build/start-server.js").write_text("")
    found = targets.probe_portkey(tmp_path)
    if found.reason.startswith("node is not on the PATH"):
        pytest.skip("node is not installed")
    assert found.available and found.version == "1.15.2" and found.server.exists()
    headers = _spec("portkey").headers("http://127.0.0.1:9")
    assert headers["Authorization"] == f"Bearer {targets.UPSTREAM_KEY}"
    assert headers["x-portkey-provider"] == "openai"
    assert headers["x-portkey-custom-host"] == "http://127.0.0.1:9/v1"


def test_report_gives_the_gateways_ratio_to_each_peer() -> None:
    """Beside LiteLLM, Portkey gets its own section of gateway / peer ratios; a mode a peer could
    not serve is listed with the reason."""
    runs = [
        report.TargetRun("bare", "floor", [_cell("bare", 1000, 2.0)]),
        report.TargetRun("gateway", "gw", [_cell("gateway", 700, 2.5)]),
        report.TargetRun("portkey", "pk", [_cell("portkey", 350, 5.0)], notes=["stream not measured: 500"]),
    ]
    assert "| json | 32 | 700 | 350 | 2.0x | 0.350 |" in report.peer_table(runs, "portkey")
    text = report.render(runs, [])
    assert "## Gateway vs Portkey" in text and "- portkey: stream not measured: 500" in text

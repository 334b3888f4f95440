"""`llm-gateway reconcile` against fake OpenAI and Anthropic admin APIs that speak their
JSON and paging: zero difference for a ledger that matches, the exact difference for a
seeded mismatch, clear errors for a wrong or missing admin key (never printed), and the
`gateway_reconcile_difference_usd` gauge in a textfile and over OTLP."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.cli import main
from gateway.spend.ledger import LedgerEntry
from tests.fakes.admin_reports import AdminState, Billed
from tests.fakes.anthropic_admin import running_anthropic_admin
from tests.fakes.openai_admin import running_openai_admin
from tests.reconcile.helpers import SIM, entry, reconcile, seed_sqlite
from tests.support.ledger_seed import seed_redis_async
from tests.support.otlp_receiver import http_receiver
from tests.support.process import free_port

pytestmark = pytest.mark.integration  # sockets: the fake admin APIs on ports

OPENAI_KEY = "sk-admin-openai-secret-0123456789abcdef"
ANTHROPIC_KEY = "sk-ant-admin01-secret-0123456789abcdef"
D = Decimal

# Three days, so two pages of at most two daily buckets each (the fakes' page cap).
GPT41: dict[str, Any] = {"price_input": D(2), "price_cache_read": D("0.5"),
                         "price_output": D(8)}
MINI: dict[str, Any] = {"price_input": D("0.4"), "price_cache_read": D("0.1"),
                        "price_output": D("1.6")}
OPENAI_BILLED = [
    # 100k uncached + 50k cached in, 20k out: 0.2 + 0.025 + 0.16 = $0.385
    Billed("2026-11-01", "gpt-4.1-2025-04-14", input=100_000, cache_read=50_000, output=20_000,
           **GPT41),
    # 1M in, 100k out: 0.4 + 0.16 = $0.56
    Billed("2026-11-02", "gpt-4.1-mini-2025-04-14", input=1_000_000, output=100_000, **MINI),
    # 10k in, 1k out: 0.02 + 0.008 = $0.028
    Billed("2026-11-03", "gpt-4.1-2025-04-14", input=10_000, output=1_000, **GPT41),
]
OPENAI_LEDGER = [
    # the first day's calls in two entries (input counts cache reads, as the ledger does)
    entry("2026-11-01", "gpt-4.1-2025-04-14", "openai", 100_000, 50_000, 15_000, 345_000_000),
    entry("2026-11-01", "gpt-4.1-2025-04-14", "openai", 50_000, 0, 5_000, 40_000_000, hour=20),
    entry("2026-11-02", "gpt-4.1-mini-2025-04-14", "openai", 1_000_000, 0, 100_000, 560_000_000),
    entry("2026-11-03", "gpt-4.1", "openai", 10_000, 0, 1_000, 28_000_000),  # the alias
    entry("2026-11-02", "claude-haiku-4-5", "anthropic", 10, 0, 10, 999),  # another provider
    entry("2026-11-02", "gpt-4.1-2025-04-14", "openai", 10, 0, 10, 7777, status="pending"),
]

SONNET: dict[str, Any] = {"price_input": D(3), "price_cache_read": D("0.3"),
                          "price_cache_write_5m": D("3.75"), "price_cache_write_1h": D(6),
                          "price_output": D(15)}
ANTHROPIC_BILLED = [
    # 0.6 + 0.3 + 0.375 + 0.3 + 0.45 = $2.025
    Billed("2026-11-01", "claude-sonnet-4-5-20250929", input=200_000, cache_read=1_000_000,
           cache_write_5m=100_000, cache_write_1h=50_000, output=30_000, **SONNET),
    # 0.5 + 0.25 = $0.75
    Billed("2026-11-03", "claude-haiku-4-5-20251001", input=500_000, output=50_000,
           price_input=D(1), price_output=D(5)),
]
ANTHROPIC_LEDGER = [
    entry("2026-11-01", "claude-sonnet-4-5-20250929", "anthropic", 1_350_000, 1_000_000, 30_000,
          2_025_000_000),
    entry("2026-11-03", "claude-haiku-4-5", "anthropic", 500_000, 0, 50_000, 750_000_000),
]
WINDOW = ("--since", "2026-11-01", "--until", "2026-11-03")


def _config(tmp_path: Path, ledger: Sequence[LedgerEntry]) -> str:
    path = tmp_path / "ledger.db"
    seed_sqlite(path, ledger)
    return SIM + f'storage: {{sqlite_path: "{path}"}}\n'


def _lines(out: str) -> dict[tuple[str, str], dict[str, object]]:
    report = orjson.loads(out)
    return {(line["day"], line["model"]): line for line in report["lines"]}


async def test_openai_matching_ledger_shows_zero_difference(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A ledger that matches OpenAI's costs and usage reconciles to $0 on every day and model,
    read over two pages of each report with the admin key as a Bearer token."""
    state = AdminState(OPENAI_KEY, OPENAI_BILLED)
    async with running_openai_admin(state) as base:
        code, out, err = await reconcile(
            capsys, _config(tmp_path, OPENAI_LEDGER), {"OPENAI_ADMIN_KEY": OPENAI_KEY},
            "--provider", "openai", *WINDOW, "--base-url", base, "--format", "json")
    assert code == 0, err
    lines = _lines(out)
    assert sorted(lines) == [("2026-11-01", "gpt-4.1"), ("2026-11-02", "gpt-4.1-mini"),
                             ("2026-11-03", "gpt-4.1")]
    first = lines[("2026-11-01", "gpt-4.1")]
    assert first["ledger"] == first["provider"] == {
        "input_tokens": 150_000, "cached_tokens": 50_000, "output_tokens": 20_000,
        "cost_usd": "0.385"}
    assert all(D(str(line["difference_usd"])) == 0 for line in lines.values())
    assert orjson.loads(out)["total"]["provider"]["cost_usd"] == "0.973"
    assert state.pages_of("/v1/organization/costs") == 2
    assert state.pages_of("/v1/organization/usage/completions") == 2
    _, query = state.requests[0]
    assert query["group_by[]"] == ["line_item"] and query["bucket_width"] == ["1d"]
    assert OPENAI_KEY not in out + err


async def test_openai_seeded_mismatch_reports_the_exact_difference(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """OpenAI billing $0.25 more for one day's model than the ledger shows is reported as
    exactly +$0.25 (+30.86%) on that line only, and the command exits 1."""
    billed = [*OPENAI_BILLED[:1], Billed("2026-11-02", "gpt-4.1-mini-2025-04-14",
                                         input=1_000_000, output=100_000, extra_usd=D("0.25"),
                                         **MINI), *OPENAI_BILLED[2:]]
    async with running_openai_admin(AdminState(OPENAI_KEY, billed)) as base:
        code, out, err = await reconcile(
            capsys, _config(tmp_path, OPENAI_LEDGER), {"OPENAI_ADMIN_KEY": OPENAI_KEY},
            "--provider", "openai", *WINDOW, "--base-url", base)
    assert code == 1
    row = next(line for line in out.splitlines() if line.startswith("2026-11-02"))
    assert row.split()[-4:] == ["$0.810000", "$0.250000", "+30.86%", "EXCEEDS"]
    assert [line.split()[-1] for line in out.splitlines() if line.startswith("2026-11-0")
            ].count("EXCEEDS") == 1
    assert "1 line(s) differ from openai's report" in err


async def test_anthropic_matching_ledger_shows_zero_difference(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Anthropic's cost report (cents as decimal strings) and usage report (input split into
    uncached, cache reads and cache writes by TTL) match the ledger to $0 over two pages."""
    state = AdminState(ANTHROPIC_KEY, ANTHROPIC_BILLED)
    async with running_anthropic_admin(state) as base:
        code, out, err = await reconcile(
            capsys, _config(tmp_path, ANTHROPIC_LEDGER),
            {"ANTHROPIC_ADMIN_KEY": ANTHROPIC_KEY, "ANTHROPIC_ADMIN_BASE_URL": base},
            "--provider", "anthropic", *WINDOW, "--format", "json")
    assert code == 0, err
    lines = _lines(out)
    assert sorted(lines) == [("2026-11-01", "claude-sonnet-4-5"),
                             ("2026-11-03", "claude-haiku-4-5")]
    sonnet = lines[("2026-11-01", "claude-sonnet-4-5")]
    assert sonnet["provider"] == {"input_tokens": 1_350_000, "cached_tokens": 1_000_000,
                                  "output_tokens": 30_000, "cost_usd": "2.025"}
    assert D(str(sonnet["difference_usd"])) == 0
    assert state.pages_of("/v1/organizations/cost_report") == 2
    assert state.pages_of("/v1/organizations/usage_report/messages") == 2


async def test_anthropic_cost_without_a_model_is_a_line_of_its_own(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A provider cost the ledger never saw (web search, $0.10) is its own line with the
    exact difference, 100% of what the provider billed for it."""
    billed = [ANTHROPIC_BILLED[0], Billed("2026-11-03", "claude-haiku-4-5-20251001",
                                          input=500_000, output=50_000, price_input=D(1),
                                          price_output=D(5), extra_usd=D("0.1"))]
    async with running_anthropic_admin(AdminState(ANTHROPIC_KEY, billed)) as base:
        code, out, _ = await reconcile(
            capsys, _config(tmp_path, ANTHROPIC_LEDGER), {"ANTHROPIC_ADMIN_KEY": ANTHROPIC_KEY},
            "--provider", "anthropic", *WINDOW, "--base-url", base, "--format", "json")
    assert code == 1
    search = _lines(out)[("2026-11-03", "Web Search")]
    assert D(str(search["difference_usd"])) == D("0.1")
    assert search["difference_pct"] == "100" and search["exceeds"] is True
    assert D(str(_lines(out)[("2026-11-03", "claude-haiku-4-5")]["difference_usd"])) == 0


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_a_wrong_admin_key_is_a_clear_error_that_never_shows_the_key(
        provider: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A key the admin API refuses (OpenAI even echoes it back) exits 3 naming the variable
    and the status; the key is nowhere in the output."""
    wrong = f"sk-{provider}-wrong-key-ABCDEF0123456789"
    running = running_openai_admin if provider == "openai" else running_anthropic_admin
    env_key = "OPENAI_ADMIN_KEY" if provider == "openai" else "ANTHROPIC_ADMIN_KEY"
    async with running(AdminState("sk-the-right-one-000000000000", [])) as base:
        code, out, err = await reconcile(capsys, _config(tmp_path, []), {env_key: wrong},
                                         "--provider", provider, *WINDOW, "--base-url", base)
    assert code == 3
    assert f"refused the key in ${env_key} (HTTP 401)" in err
    assert wrong not in out + err and wrong[8:] not in out + err


def test_a_missing_admin_key_says_which_variable(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Without $ANTHROPIC_ADMIN_KEY the command exits 2 and says where the key goes."""
    monkeypatch.delenv("ANTHROPIC_ADMIN_KEY", raising=False)
    (tmp_path / "g.yaml").write_text(_config(tmp_path, []))
    code = main(["reconcile", "--config", str(tmp_path / "g.yaml"), "--provider", "anthropic",
                 "--since", "2026-11-01"])
    assert code == 2
    assert "needs the organization's admin key in $ANTHROPIC_ADMIN_KEY" in capsys.readouterr().err


async def test_the_difference_gauge_reaches_a_textfile_and_otlp(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The last run's difference per model is written as Prometheus text for node_exporter
    and pushed once over OTLP (http/protobuf) as gateway.reconcile.difference.usd."""
    billed = [*OPENAI_BILLED[:1], Billed("2026-11-02", "gpt-4.1-mini-2025-04-14",
                                         input=1_000_000, output=100_000, extra_usd=D("0.25"),
                                         **MINI), *OPENAI_BILLED[2:]]
    textfile = tmp_path / "reconcile.prom"
    async with running_openai_admin(AdminState(OPENAI_KEY, billed)) as base, \
            http_receiver() as (endpoint, received):
        otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
        for name, value in otel.items():  # the SDK's exporter reads the process environment
            monkeypatch.setenv(name, value)
        code, _, _ = await reconcile(
            capsys, _config(tmp_path, OPENAI_LEDGER), {"OPENAI_ADMIN_KEY": OPENAI_KEY, **otel},
            "--provider", "openai", *WINDOW, "--base-url", base,
            "--metrics-file", str(textfile))
    assert code == 1
    text = textfile.read_text()
    assert ('gateway_reconcile_difference_usd{gen_ai_provider_name="openai",'
            'gen_ai_request_model="gpt-4.1-mini"} 0.25') in text
    assert ('gateway_reconcile_difference_usd{gen_ai_provider_name="openai",'
            'gen_ai_request_model="gpt-4.1"} 0.0') in text
    assert 'gateway_reconcile_exceeded_lines{gen_ai_provider_name="openai"} 1' in text
    pushed = {m.name: m for m in received.metric_list()}
    points = pushed["gateway.reconcile.difference.usd"].gauge.data_points
    values = {next(a.value.string_value for a in p.attributes
                   if a.key == "gen_ai.request.model"): p.as_double for p in points}
    assert values == {"gpt-4.1": 0.0, "gpt-4.1-mini": 0.25}
    assert OPENAI_KEY not in text


async def test_reconcile_reads_a_redis_ledger(capsys: pytest.CaptureFixture[str],
                                              redis_url: str, redis_prefix: str) -> None:
    """With the ledger in Redis the same comparison comes out at $0."""
    await seed_redis_async(redis_url, redis_prefix, ANTHROPIC_LEDGER)
    config = SIM + (f'storage: {{backend: redis, redis_url: "{redis_url}", '
                    f'redis_prefix: "{redis_prefix}"}}\n')
    async with running_anthropic_admin(AdminState(ANTHROPIC_KEY, ANTHROPIC_BILLED)) as base:
        code, out, err = await reconcile(capsys, config, {"ANTHROPIC_ADMIN_KEY": ANTHROPIC_KEY},
                                         "--provider", "anthropic", *WINDOW, "--base-url", base,
                                         "--format", "json")
    assert code == 0, err
    assert orjson.loads(out)["total"]["ledger"]["cost_usd"] == "2.775"
    assert orjson.loads(out)["total"]["difference_usd"] == "0"


async def test_an_unreachable_admin_api_exits_3(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A base URL nobody listens on is one line naming it, exit 3 (not a traceback)."""
    code, _, err = await reconcile(capsys, _config(tmp_path, []), {"OPENAI_ADMIN_KEY": OPENAI_KEY},
                                   "--provider", "openai", *WINDOW, "--base-url",
                                   f"http://127.0.0.1:{free_port()}/v1")
    assert code == 3
    assert err.startswith("error: cannot reach the OpenAI admin API at http://127.0.0.1:")
    assert "Traceback" not in err and OPENAI_KEY not in err


@pytest.mark.parametrize(("argv", "message"), [
    (("--since", "2026-13-01"), "--since '2026-13-01' is not a date"),
    (("--since", "2026-11-05", "--until", "2026-11-01"), "--until must not be before --since"),
    (("--since", "2026-11-01", "--threshold-usd", "-1"), "--threshold-usd must be a number"),
])
async def test_bad_arguments_exit_2(argv: tuple[str, ...], message: str, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A bad date, a reversed range or a negative threshold is a one-line error, exit 2."""
    code, _, err = await reconcile(capsys, _config(tmp_path, []), {"OPENAI_ADMIN_KEY": "k"},
                                   "--provider", "openai", *argv)
    assert code == 2 and message in err


async def test_an_unwritable_metrics_file_is_an_error_not_a_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A --metrics-file in a missing directory still prints the report, then exits 3 saying
    the metrics were not exported."""
    async with running_openai_admin(AdminState(OPENAI_KEY, OPENAI_BILLED)) as base:
        code, out, err = await reconcile(
            capsys, _config(tmp_path, OPENAI_LEDGER), {"OPENAI_ADMIN_KEY": OPENAI_KEY},
            "--provider", "openai", *WINDOW, "--base-url", base,
            "--metrics-file", str(tmp_path / "missing" / "r.prom"))
    assert code == 3
    assert "Reconciliation with openai" in out
    assert err.startswith("error: the reconcile metrics were not exported:")

"""The command line: `keys create/list/revoke` beside a running gateway, `spend` reports
with budget use, and check-config's keys, budgets and open-mode warning."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import openai
import pytest
from openai import AsyncOpenAI

from gateway.spend.config import hash_key
from gateway.spend.windows import ManualClock
from tests.fakes.openai_upstream import Behaviour, RunningUpstream
from tests.spend.helpers import MESSAGES, spend_config, spend_gateway

pytestmark = pytest.mark.integration  # sockets or processes: the slow tier

SIM = """
providers: {sim: {kind: mock, mock: {latency_ms: 0, ms_per_chunk: 0, jitter: 0}}}
models:
  m1: {provider: sim, price_per_mtok: {input: 1, output: 2}}
"""


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "HOME": str(cwd)}
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True,
                          env={**base, **(env or {})}, cwd=cwd, timeout=60, check=False)


def test_check_config_lists_keys_budgets_and_warns_of_open_mode(tmp_path: Path) -> None:
    """With no keys, check-config shows the budgets and says loudly that the gateway is open."""
    (tmp_path / "g.yaml").write_text(SIM + """
budgets:
  - {name: fuse, scope: global, limit_usd: 50}
spend:
  timezone: Asia/Shanghai
  webhooks: [{url: "https://hooks.slack.com/services/T0/B0/secretpart", format: slack}]
""")
    result = cli("check-config", "--config", "g.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "budgets (time zone Asia/Shanghai):" in out
    assert "fuse" in out and "$50/day" in out and "block" in out
    assert "WARNING: OPEN MODE" in out
    assert "slack     https://hooks.slack.com/..." in out and "secretpart" not in out


def test_check_config_catches_a_team_budget_naming_no_team(tmp_path: Path) -> None:
    """A team budget whose team no key has is an error with its key path; keys are shown by
    alias and source, never by value."""
    (tmp_path / "g.yaml").write_text(SIM + f"""
keys:
  - {{alias: web, team: product, key_sha256: "{hash_key('sk-gw-x')}"}}
  - {{alias: cron, team: ops, key_env: CRON_KEY}}
budgets:
  - {{scope: team, team: reserach, limit_usd: 10}}
""")
    result = cli("check-config", "--config", "g.yaml", cwd=tmp_path, env={"CRON_KEY": "sk-gw-c"})
    assert result.returncode == 2
    assert "budgets[0].team: names no team of any key (known teams: ops, product)" in result.stderr
    assert "web" in result.stdout and "key: env $CRON_KEY" in result.stdout
    assert "sk-gw-c" not in result.stdout


def test_check_config_reports_config_mistakes_with_paths(tmp_path: Path) -> None:
    """A negative limit and a duplicate alias fail check-config, each with its path."""
    (tmp_path / "g.yaml").write_text(SIM + """
keys:
  - {alias: a, team: t, key_env: A}
  - {alias: a, team: t, key_env: B}
budgets:
  - {scope: global, limit_usd: -1}
""")
    result = cli("check-config", "--config", "g.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert "keys[1].alias: duplicate alias 'a' (also at keys[0])" in result.stderr
    assert "budgets[0].limit_usd: must be a number >= 0" in result.stderr


async def test_keys_create_list_revoke_beside_a_running_gateway(upstream: RunningUpstream,
                                                                tmp_path: Path) -> None:
    """`keys create` prints a key the running gateway accepts at once; `list` never shows it;
    after `revoke` (and the gateway's refresh) it gets 401."""
    ledger = tmp_path / "l.db"
    config_text = spend_config(upstream.base_url, ledger)
    (tmp_path / "g.yaml").write_text(config_text)
    env = {"UPSTREAM_KEY": "x"}
    clock = ManualClock(time.time())
    async with spend_gateway(config_text, clock=clock) as (gw, spend):
        clock.advance(1.5)  # the last key reload was more than a second ago
        created = await asyncio.to_thread(
            cli, "keys", "create", "--config", "g.yaml", "--alias", "nightly", "--team", "data",
            "--budget-usd-per-day", "2.5", cwd=tmp_path, env=env)
        assert created.returncode == 0, created.stderr
        key = next(line for line in created.stdout.splitlines() if line.startswith("sk-gw-"))
        assert "only time the key is shown" in created.stdout
        async with AsyncOpenAI(base_url=gw.base_url, api_key=key, max_retries=0) as sdk:
            await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
        listing = await asyncio.to_thread(cli, "keys", "list", "--config", "g.yaml",
                                          cwd=tmp_path, env=env)
        assert "nightly" in listing.stdout and "$2.50" in listing.stdout
        assert key not in listing.stdout and key[6:] not in listing.stdout
        assert [b.name for b in spend.budgets.all()] == ["key:nightly:day"]
        duplicate = await asyncio.to_thread(
            cli, "keys", "create", "--config", "g.yaml", "--alias", "nightly", "--team", "data",
            cwd=tmp_path, env=env)
        assert duplicate.returncode == 1 and "exists" in duplicate.stderr
        revoked = await asyncio.to_thread(cli, "keys", "revoke", "--config", "g.yaml", "nightly",
                                          cwd=tmp_path, env=env)
        assert revoked.returncode == 0, revoked.stderr
        await spend.authenticator.refresh()
        async with AsyncOpenAI(base_url=gw.base_url, api_key=key, max_retries=0) as sdk:
            with pytest.raises(openai.AuthenticationError):
                await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES)


def test_keys_on_redis(tmp_path: Path, redis_url: str, redis_prefix: str) -> None:
    """With storage.backend redis, keys are created, listed and revoked in Redis."""
    (tmp_path / "g.yaml").write_text(SIM + f"""
storage: {{backend: redis, redis_url: "{redis_url}", redis_prefix: "{redis_prefix}"}}
""")
    created = cli("keys", "create", "--config", "g.yaml", "--alias", "r1", "--team", "t",
                  "--quiet", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip().startswith("sk-gw-")
    assert "r1" in cli("keys", "list", "--config", "g.yaml", cwd=tmp_path).stdout
    assert cli("keys", "revoke", "--config", "g.yaml", "r1", cwd=tmp_path).returncode == 0
    assert "revoked" in cli("keys", "list", "--config", "g.yaml", cwd=tmp_path).stdout
    again = cli("keys", "create", "--config", "g.yaml", "--alias", "r1", "--team", "t",
                cwd=tmp_path)
    assert again.returncode == 0, "a revoked alias may be reused"


async def test_spend_report_groups_and_shows_budget_use(upstream: RunningUpstream,
                                                        tmp_path: Path) -> None:
    """`spend --by team` and `--by key` print a row per group, a total and the share of the
    team and global budgets used; `--since` covers a range."""
    upstream.state.behaviour = Behaviour(completion_tokens=1000, prompt_tokens=1000)
    ledger = tmp_path / "l.db"
    config_text = spend_config(upstream.base_url, ledger, f"""
keys:
  - {{alias: web, team: product, key_sha256: "{hash_key('sk-gw-web')}"}}
  - {{alias: etl, team: data, key_sha256: "{hash_key('sk-gw-etl')}"}}
budgets:
  - {{name: fuse, scope: global, limit_usd: 1}}
  - {{name: data-day, scope: team, team: data, limit_usd: 0.5}}
""")
    (tmp_path / "g.yaml").write_text(config_text)
    async with spend_gateway(config_text) as (gw, _):
        for key, calls in (("sk-gw-web", 1), ("sk-gw-etl", 2)):
            async with AsyncOpenAI(base_url=gw.base_url, api_key=key, max_retries=0) as sdk:
                for _ in range(calls):
                    await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES,
                                                      max_tokens=1000)
    env = {"UPSTREAM_KEY": "x"}
    by_team = cli("spend", "--config", "g.yaml", "--by", "team", cwd=tmp_path, env=env)
    assert by_team.returncode == 0, by_team.stderr
    lines = by_team.stdout.splitlines()
    # each call: 1000 in at $2.5 + 1000 out at $8 per Mtok = $0.0105
    data = next(line for line in lines if line.startswith("data"))
    # (calls, input, output, cache reads, cache writes 5m and 1h, reasoning tokens)
    assert data.split() == ["data", "2", "2,000", "2,000", "0", "0", "0", "0", "$0.0210",
                            "$0.5000/day", "4.2%"]
    product = next(line for line in lines if line.startswith("product"))
    assert product.split()[:9] == ["product", "1", "1,000", "1,000", "0", "0", "0", "0",
                                   "$0.0105"]
    total = lines[-1].split()
    assert total == ["total", "3", "3,000", "3,000", "0", "0", "0", "0", "$0.0315",
                     "$1.00/day", "3.1%"]
    by_key = cli("spend", "--config", "g.yaml", "--by", "key", "--since", "2020-01-01",
                 cwd=tmp_path, env=env)
    assert "since 2020-01-01" in by_key.stdout
    assert [line.split()[0] for line in by_key.stdout.splitlines()[3:5]] == ["etl", "web"]
    monthly = cli("spend", "--config", "g.yaml", "--by", "model", "--window", "month",
                  cwd=tmp_path, env=env)
    assert "gpt-4.1" in monthly.stdout and "$0.0315" in monthly.stdout

"""`llm-gateway keys/spend --gateway URL`: the CLI over a running gateway's admin API, and
the new direct-store commands (rotate, grouping by tag and user)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import openai
import pytest
from openai import AsyncOpenAI

from gateway.cli import main
from gateway.spend.config import hash_key
from tests.admin.helpers import ADMIN_KEY, admin_gateway
from tests.fakes.openai_upstream import RunningUpstream
from tests.spend.helpers import MESSAGES, spend_config, spend_gateway

pytestmark = pytest.mark.integration  # sockets: the gateway and the fake upstream on ports


async def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def _chat(base_url: str, key: str, tags: str = "") -> None:
    async with AsyncOpenAI(base_url=base_url, api_key=key, max_retries=0) as sdk:
        await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES, max_tokens=10,
                                          extra_headers={"x-gateway-tags": tags})


async def test_keys_over_the_admin_api(upstream: RunningUpstream, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """create (key works on the next request), list, rotate and revoke with --gateway."""
    monkeypatch.setenv("GATEWAY_ADMIN_KEY", ADMIN_KEY)
    async with admin_gateway(upstream.base_url, tmp_path) as (gw, _, _):
        code, out, _ = await _cli(capsys, "keys", "create", "--alias", "web", "--team", "product",
                                  "--budget-usd-per-day", "2", "--models", "gpt-4.1",
                                  "--expires-in-days", "30", "--quiet", "--gateway", gw.root)
        assert code == 0
        key = out.strip()
        await _chat(gw.base_url, key)
        code, out, _ = await _cli(capsys, "keys", "list", "--gateway", gw.root)
        assert code == 0 and "web" in out and "$2.00" in out and key not in out
        code, out, _ = await _cli(capsys, "keys", "rotate", "web", "--quiet", "--gateway", gw.root)
        new = out.strip()
        assert code == 0 and new.startswith("sk-gw-") and new != key
        with pytest.raises(openai.AuthenticationError):
            await _chat(gw.base_url, key)
        await _chat(gw.base_url, new)
        code, out, _ = await _cli(capsys, "keys", "revoke", "web", "--gateway", gw.root)
        assert code == 0 and "revoked" in out
        with pytest.raises(openai.AuthenticationError):
            await _chat(gw.base_url, new)
        code, _, err = await _cli(capsys, "keys", "revoke", "web", "--gateway", gw.root)
        assert code == 1 and "404" in err and "no active key" in err


async def test_spend_over_the_admin_api(upstream: RunningUpstream, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """spend --by tag:NAME --gateway prints the report table from the running gateway."""
    monkeypatch.setenv("GATEWAY_ADMIN_KEYS", "x" * 20 + f",{ADMIN_KEY}")
    monkeypatch.setenv("GATEWAY_ADMIN_KEY", ADMIN_KEY)
    async with admin_gateway(upstream.base_url, tmp_path) as (gw, _, _):
        await _chat(gw.base_url, "open-mode", "project=alpha")
        await _chat(gw.base_url, "open-mode", "project=beta")
        await _chat(gw.base_url, "open-mode", "project=beta")
        code, out, _ = await _cli(capsys, "spend", "--by", "tag:project", "--gateway", gw.root)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("Spend by tag:project, day ")
    assert any(line.split()[:2] == ["beta", "2"] for line in lines)
    assert any(line.split()[:2] == ["alpha", "1"] for line in lines)
    assert any(line.split()[:2] == ["total", "3"] for line in lines)


async def test_remote_errors_are_one_clear_line(capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """No admin key in the environment: exit 2; nothing listening: exit 1, naming the URL."""
    monkeypatch.delenv("GATEWAY_ADMIN_KEY", raising=False)
    monkeypatch.delenv("GATEWAY_ADMIN_KEYS", raising=False)
    code, _, err = await _cli(capsys, "keys", "list", "--gateway", "http://127.0.0.1:9")
    assert code == 2 and "GATEWAY_ADMIN_KEY" in err
    monkeypatch.setenv("GATEWAY_ADMIN_KEY", ADMIN_KEY)
    code, _, err = await _cli(capsys, "spend", "--gateway", "http://127.0.0.1:9")
    assert code == 1 and "cannot reach the gateway at http://127.0.0.1:9" in err


async def test_direct_rotate_and_spend_by_user(upstream: RunningUpstream, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --gateway, rotate writes the store (the new key works on the next request)
    and spend --by user groups the ledger by end user."""
    ledger = tmp_path / "l.db"
    config_file = tmp_path / "gateway.yaml"
    config_file.write_text(spend_config(upstream.base_url, ledger))
    monkeypatch.setenv("UPSTREAM_KEY", "unused")
    code, out, _ = await _cli(capsys, "keys", "create", "--alias", "web", "--team", "p",
                              "--quiet", "--config", str(config_file))
    old = out.strip()
    async with spend_gateway(config_file.read_text()) as (gw, _):
        async with AsyncOpenAI(base_url=gw.base_url, api_key=old, max_retries=0) as sdk:
            await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES, user="alice")
        await asyncio.sleep(1.05)  # a miss reloads keys at most once a second
        code, out, _ = await _cli(capsys, "keys", "rotate", "web", "--quiet", "--config",
                                  str(config_file))
        assert code == 0
        async with AsyncOpenAI(base_url=gw.base_url, api_key=out.strip(), max_retries=0) as sdk:
            await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    code, out, _ = await _cli(capsys, "spend", "--by", "user", "--config", str(config_file))
    assert code == 0
    groups = {line.split()[0]: line.split()[1] for line in out.splitlines()[3:-2] if line}
    assert groups == {"alice": "1", "(none)": "1"}
    with pytest.raises(SystemExit) as info:
        main(["spend", "--by", "colour", "--config", str(config_file)])
    assert info.value.code == 2 and "unknown grouping" in capsys.readouterr().err


async def test_spend_formats_over_the_admin_api_list_budgeted_keys(
        upstream: RunningUpstream, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """spend --gateway --format json|csv lists a key with a budget but no calls at zero."""
    monkeypatch.setenv("GATEWAY_ADMIN_KEY", ADMIN_KEY)
    extra = f"""
keys:
  - {{alias: web, team: product, key_sha256: "{hash_key('sk-gw-web')}"}}
  - {{alias: quiet, team: product, key_sha256: "{hash_key('sk-gw-q')}", budget_usd_per_day: 3}}
"""
    async with admin_gateway(upstream.base_url, tmp_path, extra) as (gw, _, _):
        await _chat(gw.base_url, "sk-gw-web")
        code, out, _ = await _cli(capsys, "spend", "--by", "key", "--format", "json",
                                  "--gateway", gw.root)
        assert code == 0
        rows = {row["group"]: row for row in json.loads(out)["rows"]}
        assert rows["web"]["calls"] == 1
        assert rows["quiet"]["calls"] == 0 and rows["quiet"]["cost_usd"] == 0
        assert rows["quiet"]["budget"]["limit_usd"] == 3.0
        code, out, _ = await _cli(capsys, "spend", "--by", "key", "--format", "csv",
                                  "--gateway", gw.root)
    assert code == 0
    assert out.startswith("key,calls,")
    quiet = next(row for row in csv.DictReader(io.StringIO(out)) if row["key"] == "quiet")
    assert quiet["calls"] == "0" and float(quiet["cost_usd"]) == 0
    assert quiet["input_tokens"] == quiet["output_tokens"] == "0"
    assert float(quiet["budget_limit_usd"]) == 3, quiet

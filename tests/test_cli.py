"""The command line: check-config's summary and key-path errors, and `serve` on the
embedded default answering the SDK with no API key at all."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from openai import AsyncOpenAI

from tests.support.process import gateway_process

pytestmark = pytest.mark.integration  # sockets or processes: the slow tier


def run_cli(*args: str, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True,
                          text=True, env={**base, **(env or {})}, timeout=60, check=False,
                          cwd=cwd)


def test_check_config_default_summary() -> None:
    """check-config on the embedded default exits 0 and says which keys are missing."""
    result = run_cli("check-config")
    assert result.returncode == 0, result.stderr
    assert "gpt-4.1" in result.stdout and "claude-sonnet-4.5" in result.stdout
    assert "MISSING ($OPENAI_API_KEY is not set)" in result.stdout
    assert "metrics: prometheus on /metrics" in result.stdout
    assert "max_tokens / max_completion_tokens <= 1,000,000; n <= 128" in result.stdout
    assert "upstream limits: event 8 MiB, answer 64 MiB" in result.stdout


def test_check_config_never_prints_a_key() -> None:
    """A set key is reported as set, by variable name, never by value."""
    result = run_cli("check-config", env={"OPENAI_API_KEY": "sk-should-not-print-123"})
    assert result.returncode == 0
    assert "set ($OPENAI_API_KEY)" in result.stdout
    assert "sk-should-not-print" not in result.stdout + result.stderr


def test_check_config_names_bad_key_path(tmp_path: Path) -> None:
    """A bad value exits non-zero naming its key path."""
    config = tmp_path / "bad.yaml"
    config.write_text(
        "providers: {sim: {kind: mock}}\n"
        "models:\n  gpt-4.1: {provider: sim, price_per_mtok: {input: 1, output: -3}}\n")
    result = run_cli("check-config", "--config", str(config))
    assert result.returncode != 0
    assert "models.gpt-4.1.price_per_mtok.output: must be a number >= 0" in result.stderr


def test_prices_and_check_config_name_an_unpriced_model(tmp_path: Path) -> None:
    """`prices` prints each model's table and the unpriced one; `check-config` warns about
    it and still exits 0 (it is served by default)."""
    config = tmp_path / "g.yaml"
    config.write_text(
        "providers: {oai: {kind: openai, base_url: \"https://api.openai.com/v1\"}}\n"
        "models:\n  gpt-4.1: {provider: oai}\n  in-house: {provider: oai}\n")
    prices = run_cli("prices", "--config", str(config))
    assert prices.returncode == 0, prices.stderr
    assert "catalog: genai-prices " in prices.stdout
    assert "gpt-4.1  (catalog entry openai/gpt-4.1)" in prices.stdout
    assert "  in-house: no input or output price" in prices.stdout
    check = run_cli("check-config", "--config", str(config))
    assert check.returncode == 0, check.stderr
    assert "warning: no price for in-house" in check.stdout
    assert "in-house" in check.stdout and "UNPRICED" in check.stdout


def test_gateway_config_env_names_the_file(tmp_path: Path) -> None:
    """GATEWAY_CONFIG is used when --config is absent."""
    config = tmp_path / "g.yaml"
    config.write_text("providers: {sim: {kind: mock}}\n"
                      "models: {only-model: {provider: sim, price_per_mtok: {input: 1, output: 2}}}\n")
    result = run_cli("check-config", env={"GATEWAY_CONFIG": str(config)})
    assert result.returncode == 0 and "only-model" in result.stdout


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    """A config path that does not exist is reported, not a traceback."""
    result = run_cli("check-config", "--config", str(tmp_path / "nope.yaml"))
    assert result.returncode != 0 and "cannot read config file" in result.stderr
    assert "Traceback" not in result.stderr


async def test_serve_embedded_default_with_sdk() -> None:
    """A new user's flow: serve with no config and no key, call it with the SDK, see /metrics."""
    fast = {"GATEWAY_LOG_LEVEL": "WARNING"}
    async with gateway_process(None, fast) as proc:
        async with AsyncOpenAI(base_url=proc.base_url, api_key="unused", max_retries=0) as sdk:
            reply = await sdk.chat.completions.create(
                model="deepseek-v3.2", max_tokens=5,
                messages=[{"role": "user", "content": "hi"}])
            assert reply.choices[0].message.content
            assert reply.model == "deepseek-v3.2" and reply.usage is not None
            stream = await sdk.chat.completions.create(
                model="gpt-4.1", max_tokens=3, stream=True,
                messages=[{"role": "user", "content": "hi"}])
            chunks = [c async for c in stream]
            assert chunks[-1].choices[0].finish_reason == "length"
            embedded = await sdk.embeddings.create(model="text-embedding-3-small", input="hi")
            assert embedded.data[0].embedding
            models = [m.id async for m in sdk.models.list()]
            assert "claude-sonnet-4.5" in models
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{proc.root}/metrics") as resp:
                text = await resp.text()
    assert 'gateway_requests_total{' in text and 'gen_ai_request_model="deepseek-v3.2"' in text
    assert 'gateway_cost_usd_total{' in text


def test_check_config_shows_each_providers_client_and_proxy_without_its_password(
        tmp_path: Path) -> None:
    """check-config says which client and proxy each provider uses (the proxy's password
    left out); check-config and serve refuse a CA bundle that cannot load, naming its key."""
    config = tmp_path / "g.yaml"
    config.write_text(
        "providers:\n"
        "  corp: {kind: openai, base_url: 'https://llm.corp.example/v1'}\n"
        "  local: {kind: openai, base_url: 'http://localhost:9000/v1'}\n"
        "models: {m: {provider: corp, price_per_mtok: {input: 1, output: 2}}}\n")
    env = {"HTTPS_PROXY": "http://me:pr0xy-pw@proxy.corp:3128", "HTTP_PROXY": "",
           "NO_PROXY": "localhost"}
    result = run_cli("check-config", "--config", str(config), env=env)
    assert result.returncode == 0, result.stderr
    assert "via aiohttp's ClientSession (proxy http://proxy.corp:3128 from HTTPS_PROXY)" \
        in result.stdout
    assert "via the gateway's own HTTP client" in result.stdout
    assert "pr0xy-pw" not in result.stdout + result.stderr
    config.write_text(config.read_text().replace(
        "base_url: 'https://llm.corp.example/v1'",
        "base_url: 'https://llm.corp.example/v1', ca_file: /nonexistent.pem"))
    result = run_cli("check-config", "--config", str(config), env=env)
    assert result.returncode == 2
    assert "providers.corp.ca_file: cannot load '/nonexistent.pem'" in result.stderr
    served = run_cli("serve", "--config", str(config), "--port", "0", env=env)
    assert served.returncode == 2 and "Traceback" not in served.stderr
    assert "providers.corp.ca_file: cannot load '/nonexistent.pem'" in served.stderr


def test_an_unknown_log_level_is_a_clear_error() -> None:
    """`serve --log-level nonsense` exits 2 listing the levels, without a traceback."""
    result = run_cli("serve", "--log-level", "nonsense")
    assert result.returncode == 2
    assert "'nonsense' is not a log level (choose from DEBUG, INFO" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_config_summarises_the_listener_limits() -> None:
    """check-config shows the body limits, the slow-client timeouts and who may read /metrics."""
    result = run_cli("check-config")
    assert "body: 8,388,608 bytes as sent, 8,388,608 inflated" in result.stdout
    assert "timeouts: request head 60 s, body pause 60 s, idle keep-alive 75 s" in result.stdout
    assert "/metrics on the API port, no token: open while no virtual key exists" in result.stdout
    assert "serves embeddings" in result.stdout


def test_keys_commands_from_any_directory_share_the_gateways_ledger(tmp_path: Path) -> None:
    """A relative sqlite_path is the config file's, so `keys create` run from another
    directory writes the ledger the gateway reads, and `keys list` anywhere sees it."""
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "g.yaml").write_text(
        "providers: {sim: {kind: mock}}\n"
        "models: {m: {provider: sim, price_per_mtok: {input: 1, output: 1}}}\n"
        "storage: {sqlite_path: data/ledger.sqlite3}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    made = run_cli("keys", "create", "--config", str(conf / "g.yaml"), "--alias", "far",
                   "--team", "t", cwd=elsewhere)
    assert made.returncode == 0, made.stderr
    assert (conf / "data" / "ledger.sqlite3").exists()
    assert not (elsewhere / "data").exists()
    listed = run_cli("keys", "list", "--config", "conf/g.yaml", cwd=tmp_path)
    assert "far" in listed.stdout


def test_the_embedded_defaults_ledger_is_the_same_from_any_directory(tmp_path: Path) -> None:
    """Without a config file the ledger lives under $XDG_DATA_HOME/llm-gateway, not ./data."""
    env = {"XDG_DATA_HOME": str(tmp_path / "share")}
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    made = run_cli("keys", "create", "--alias", "anywhere", "--team", "t", env=env, cwd=one)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "share" / "llm-gateway" / "gateway.sqlite3").exists()
    assert "anywhere" in run_cli("keys", "list", env=env, cwd=two).stdout

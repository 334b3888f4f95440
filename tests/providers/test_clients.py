"""Upstream networking: HTTPS_PROXY/HTTP_PROXY/NO_PROXY from the environment, a provider's
own `proxy` and `ca_file`, and which HTTP client each provider ends up on, against a real
proxy and a real TLS upstream with a self-signed certificate."""

from __future__ import annotations

import base64
import logging
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from openai import AsyncOpenAI

from gateway.config import load
from gateway.confread import ConfigError
from gateway.providers.clients import Route, env_proxies, env_proxy_for, exempt, route, routes
from tests.fakes.openai_upstream import running_upstream
from tests.support.gateway import running_gateway, upstream_config
from tests.support.http_proxy import running_proxy

KEY = "sk-upstream-proxy-test-123"
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """A self-signed certificate for 127.0.0.1 and localhost: (cert.pem, key.pem)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to make a certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    yield cert, key


def _server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def _provider(base_url: str, extra: str = "") -> str:
    """upstream_config's `up` provider with extra settings (indented under it)."""
    return upstream_config(base_url).replace(
        "    timeout_s: 5\n", "    timeout_s: 5\n" + "".join(f"    {line}\n" for line in
                                                          extra.splitlines() if line))


async def _chat(base_url: str) -> str | None:
    async with AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0) as sdk:
        answer = await sdk.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    return answer.choices[0].message.content


def _client_lines(caplog: pytest.LogCaptureFixture) -> dict[str, str]:
    found = {}
    for record in caplog.records:
        if record.name == "gateway.providers.clients":
            found[str(record.args[0])] = record.getMessage()  # type: ignore[index]
    return found


@pytest.mark.integration
async def test_http_proxy_from_the_environment_carries_upstream_calls(
        caplog: pytest.LogCaptureFixture) -> None:
    """HTTP_PROXY routes an http upstream's calls through the proxy, over aiohttp's client."""
    caplog.set_level(logging.INFO, logger="gateway.providers.clients")
    async with running_upstream(api_key=KEY) as up, running_proxy() as (proxy, log):
        env = {"UPSTREAM_KEY": KEY, "HTTP_PROXY": proxy}
        async with running_gateway(upstream_config(up.base_url), environ=env) as gw:
            assert await _chat(gw.base_url)
    assert log.forwarded == [f"POST {up.base_url}/chat/completions"]
    assert up.state.requests[0].headers["authorization"] == f"Bearer {KEY}"
    line = _client_lines(caplog)["up"]
    assert "aiohttp's ClientSession" in line and f"proxy {proxy} from HTTP_PROXY" in line


@pytest.mark.integration
async def test_no_proxy_exempts_a_host_which_keeps_the_gateways_own_client(
        caplog: pytest.LogCaptureFixture) -> None:
    """With NO_PROXY=localhost a provider on localhost calls directly over the gateway's own
    client while one on 127.0.0.1 still goes through HTTP_PROXY."""
    caplog.set_level(logging.INFO, logger="gateway.providers.clients")
    async with running_upstream(api_key=KEY) as up, running_proxy() as (proxy, log):
        local = up.base_url.replace("127.0.0.1", "localhost")
        config = upstream_config(local) + """
  far-model:
    provider: far
    upstream_model: gpt-4.1
    price_per_mtok: {input: 1, output: 1}
""".replace("models:\n", "models:\n", 1)
        config = config.replace("providers:\n", f"""providers:
  far:
    kind: openai
    base_url: "{up.base_url}"
    api_key: "${{UPSTREAM_KEY}}"
""", 1)
        env = {"UPSTREAM_KEY": KEY, "HTTP_PROXY": proxy, "NO_PROXY": "example.com,localhost"}
        async with running_gateway(config, environ=env) as gw:
            assert await _chat(gw.base_url)
            assert log.requests == 0
            async with AsyncOpenAI(base_url=gw.base_url, api_key="u", max_retries=0) as sdk:
                await sdk.chat.completions.create(model="far-model", messages=MESSAGES)
            assert log.forwarded == [f"POST {up.base_url}/chat/completions"]
    assert len(up.state.requests) == 2
    lines = _client_lines(caplog)
    assert "the gateway's own HTTP client" in lines["up"] and "proxy" not in lines["up"]
    assert "aiohttp's ClientSession (proxy" in lines["far"]


@pytest.mark.integration
async def test_a_providers_own_proxy_is_used_with_its_credentials_kept_out_of_logs(
        caplog: pytest.LogCaptureFixture) -> None:
    """A provider's `proxy` carries its calls without any variable set; the proxy's user and
    password go in Proxy-Authorization and never into the log."""
    caplog.set_level(logging.INFO, logger="gateway.providers.clients")
    async with running_upstream(api_key=KEY) as up, running_proxy() as (proxy, log):
        with_user = proxy.replace("http://", "http://team:s3cret-proxy-pw@")
        config = _provider(up.base_url, f'proxy: "{with_user}"')
        async with running_gateway(config, environ={"UPSTREAM_KEY": KEY}) as gw:
            assert await _chat(gw.base_url)
    assert log.forwarded == [f"POST {up.base_url}/chat/completions"]
    assert log.proxy_authorization == ["Basic " + base64.b64encode(b"team:s3cret-proxy-pw").decode()]
    assert "s3cret-proxy-pw" not in caplog.text
    assert f"proxy {proxy} from proxy" in _client_lines(caplog)["up"]


@pytest.mark.integration
async def test_a_self_signed_tls_upstream_works_only_with_its_ca_file(
        certificate: tuple[Path, Path]) -> None:
    """A TLS upstream with a self-signed certificate is refused without `ca_file` (the
    system's CAs do not know it) and served with it."""
    async with running_upstream(api_key=KEY, ssl_context=_server_context(certificate)) as up:
        assert up.base_url.startswith("https://")
        async with running_gateway(_provider(up.base_url), environ={"UPSTREAM_KEY": KEY}) as gw:
            with pytest.raises(openai.APIStatusError) as refused:
                await _chat(gw.base_url)
            assert refused.value.status_code == 502
        assert up.state.requests == []
        config = _provider(up.base_url, f'ca_file: "{certificate[0]}"')
        async with running_gateway(config, environ={"UPSTREAM_KEY": KEY}) as gw:
            assert await _chat(gw.base_url)
        assert len(up.state.requests) == 1


@pytest.mark.integration
async def test_https_proxy_tunnels_to_a_tls_upstream(certificate: tuple[Path, Path]) -> None:
    """HTTPS_PROXY carries an https upstream's calls in a CONNECT tunnel (its credentials on
    the CONNECT only), with TLS to the upstream verified against `ca_file` inside it."""
    async with running_upstream(api_key=KEY, ssl_context=_server_context(certificate)) as up, \
            running_proxy() as (proxy, log):
        config = _provider(up.base_url, f'ca_file: "{certificate[0]}"')
        env = {"UPSTREAM_KEY": KEY, "https_proxy": proxy.replace("//", "//u:p@"),
               "HTTP_PROXY": "http://127.0.0.1:9"}
        async with running_gateway(config, environ=env) as gw:
            assert await _chat(gw.base_url)
            assert await _chat(gw.base_url)
    assert log.tunnels == [f"127.0.0.1:{up.port}"]  # one tunnel, kept alive for both calls
    assert log.forwarded == [] and len(up.state.requests) == 2
    assert log.proxy_authorization == ["Basic " + base64.b64encode(b"u:p").decode()]
    assert "proxy-authorization" not in up.state.requests[0].headers


def test_lower_case_proxy_variables_win_and_empty_ones_mean_none() -> None:
    """As urllib reads them: https_proxy over HTTPS_PROXY; an empty value unsets."""
    env = {"HTTPS_PROXY": "http://upper:1", "https_proxy": "http://lower:2",
           "HTTP_PROXY": "http://upper:3", "http_proxy": "", "NO_PROXY": "x"}
    assert env_proxies(env) == {"https": ("http://lower:2", "https_proxy"),
                                "no": ("x", "NO_PROXY")}


@pytest.mark.parametrize(("host", "port", "no_proxy", "exempted"), [
    ("api.openai.com", None, "openai.com", True),
    ("api.openai.com", None, ".openai.com", True),
    ("openai.com", None, ".openai.com", True),
    ("notopenai.com", None, "openai.com", False),
    ("10.0.0.5", 8080, "10.0.0.5:8080", True),
    ("10.0.0.5", 8081, "10.0.0.5:8080", False),
    ("anything", None, "a, *", True),
    ("LOCALHOST", None, "localhost", True),
    ("api.openai.com", None, "", False),
])
def test_no_proxy_matching(host: str, port: int | None, no_proxy: str, exempted: bool) -> None:
    """NO_PROXY entries match the host or a domain it is in, with a port when named; * is all."""
    assert exempt(host, port, no_proxy) is exempted


def test_only_providers_that_need_it_leave_the_gateways_own_client() -> None:
    """No proxy and no CA bundle: the gateway's own client; a non-http proxy variable is
    ignored; switching the own client off puts every provider on aiohttp."""
    config = load(_provider("https://api.example.com/v1"), {"UPSTREAM_KEY": "k"})
    provider = config.providers["up"]
    assert route(provider, {}, own_client=True) == Route(aiohttp=False)
    assert route(provider, {"HTTPS_PROXY": "socks5://p:1080"}, own_client=True) == Route(False)
    assert env_proxy_for("https://api.example.com/v1", {"HTTP_PROXY": "http://p:1"}) is None
    assert route(provider, {}, own_client=False) == Route(aiohttp=True)
    assert routes(config.providers, {}, own_client=True).keys() == {"up"}  # not the simulator


def test_proxy_and_ca_file_are_checked() -> None:
    """A proxy must be an http(s) URL and a CA bundle must load, each named by its key."""
    with pytest.raises(ConfigError) as bad:
        load(_provider("https://api.example.com/v1", 'proxy: "socks5://p:1080"'),
             {"UPSTREAM_KEY": "k"})
    assert "providers.up.proxy: must start with http:// or https://" in str(bad.value)
    config = load(_provider("https://api.example.com/v1", 'ca_file: "/nonexistent/ca.pem"'),
                  {"UPSTREAM_KEY": "k"})
    with pytest.raises(ConfigError) as missing:
        route(config.providers["up"], {}, own_client=True)
    assert "providers.up.ca_file: cannot load '/nonexistent/ca.pem'" in str(missing.value)
    unset = load(_provider("https://api.example.com/v1", 'proxy: "${CORP_PROXY:-}"'),
                 {"UPSTREAM_KEY": "k"})
    assert unset.providers["up"].proxy is None

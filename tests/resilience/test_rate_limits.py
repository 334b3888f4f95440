"""Per-key rate limits: requests and tokens per minute, 429 with Retry-After, in memory
or shared through Redis by several replicas."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI

from gateway.call import Principal
from gateway.resilience.config import RateLimit
from gateway.resilience.limiter import RedisLimiter
from gateway.telemetry import names as n
from tests.conftest import UPSTREAM_KEY
from tests.fakes.openai_upstream import Behaviour, RunningUpstream
from tests.resilience.rig import MESSAGES, Rig, load_chain, rig
from tests.support.gateway import running_gateway

pytestmark = pytest.mark.integration  # sockets or processes: the slow tier


class AliasFromKey:
    """Authenticator for tests: the bearer token is the key alias."""

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        return Principal(alias=headers.get("authorization", "").removeprefix("Bearer "))


def _limited(up: RunningUpstream, limits: Mapping[str, Any], **extra: Any) -> Any:
    return load_chain(up.base_url, extra={"rate_limits": limits, **extra})


async def _ask(sdk: AsyncOpenAI, **kwargs: Any) -> str:
    completion = await sdk.chat.completions.create(model="solo", messages=MESSAGES, **kwargs)
    return completion.choices[0].message.content or ""


def _rate_limited(r: Rig, limit: str, alias: str = "anonymous") -> float:
    return r.counter(n.M_RATE_LIMITED, **{n.GATEWAY_KEY_ALIAS: alias, n.LABEL_LIMIT: limit})


async def test_requests_per_minute_refused_with_retry_after(upstream: RunningUpstream) -> None:
    """Past requests_per_minute the SDK gets RateLimitError with Retry-After, counted by
    gateway_rate_limited_total, and the upstream is not called."""
    config = _limited(upstream, {"default": {"requests_per_minute": 2}})
    async with rig(upstream, config) as r:
        await _ask(r.sdk)
        await _ask(r.sdk)
        with pytest.raises(openai.RateLimitError) as caught:
            await _ask(r.sdk)
        assert 1 <= int(caught.value.response.headers["retry-after"]) <= 30
        assert isinstance(caught.value.body, dict)
        assert caught.value.body.get("code") == "rate_limit_exceeded"
        assert len(upstream.state.requests) == 2
        assert _rate_limited(r, "rpm") == 1


async def test_limits_are_per_key_alias(upstream: RunningUpstream) -> None:
    """A key alias with its own entry is limited on its own; others use the default."""
    config = _limited(upstream, {"keys": {"batch": {"requests_per_minute": 1}}})
    async with rig(upstream, config, authenticator=AliasFromKey()) as r:
        batch = r.sdk.with_options(api_key="batch")
        other = r.sdk.with_options(api_key="interactive")
        await _ask(batch)
        with pytest.raises(openai.RateLimitError):
            await _ask(batch)
        for _ in range(3):
            await _ask(other)
        assert _rate_limited(r, "rpm", "batch") == 1
        assert _rate_limited(r, "rpm", "interactive") == 0


async def test_tokens_per_minute_settle_with_actual_usage(upstream: RunningUpstream) -> None:
    """The token estimate (prompt + max_tokens) is charged up front and corrected by the
    actual usage, so a second call fits only thanks to the refund; a third is refused."""
    upstream.state.per_model["gpt-4o"] = Behaviour(prompt_tokens=10, completion_tokens=5)
    config = _limited(upstream, {"default": {"tokens_per_minute": 120}})
    async with rig(upstream, config) as r:
        await _ask(r.sdk, max_tokens=80)
        await _ask(r.sdk, max_tokens=80)
        with pytest.raises(openai.RateLimitError, match="tokens per minute"):
            await _ask(r.sdk, max_tokens=100)
        assert _rate_limited(r, "tpm") == 1


# --- Redis: one limit for every replica ---------------------------------------


@contextlib.asynccontextmanager
async def redis_server() -> AsyncIterator[str]:
    """A throwaway redis-server on a unix socket; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        sock = Path(tmp, "redis.sock")
        proc = subprocess.Popen(
            [binary, "--port", "0", "--unixsocket", str(sock), "--save", "",
             "--appendonly", "no", "--dir", tmp],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(200):
                if sock.exists():
                    break
                await asyncio.sleep(0.02)
            yield f"unix://{sock}"
        finally:
            proc.terminate()
            await asyncio.to_thread(proc.wait, 10)


async def test_redis_limit_is_shared_by_replicas(upstream: RunningUpstream) -> None:
    """Two gateways on one Redis enforce one requests-per-minute limit between them."""
    async with redis_server() as url:
        config = _limited(upstream, {"default": {"requests_per_minute": 3}},
                          storage={"backend": "redis", "redis_url": url})
        env = {"UPSTREAM_KEY": UPSTREAM_KEY}
        async with (
            running_gateway(config, environ=env) as one,
            running_gateway(config, environ=env) as two,
            AsyncOpenAI(base_url=one.base_url, api_key="k", max_retries=0) as sdk_one,
            AsyncOpenAI(base_url=two.base_url, api_key="k", max_retries=0) as sdk_two,
        ):
            await _ask(sdk_one)
            await _ask(sdk_two)
            await _ask(sdk_one)
            with pytest.raises(openai.RateLimitError) as caught:
                await _ask(sdk_two)
            assert int(caught.value.response.headers["retry-after"]) >= 1
            assert len(upstream.state.requests) == 3


async def test_redis_down_fails_open() -> None:
    """An unreachable Redis does not take requests down: the limiter allows and warns."""
    with tempfile.TemporaryDirectory() as tmp:
        limiter = RedisLimiter(f"unix://{tmp}/none.sock", "test:")
        try:
            limit = RateLimit(requests_per_minute=1)
            for _ in range(3):
                assert (await limiter.acquire("k", limit, 10)).allowed
            await limiter.settle("k", RateLimit(tokens_per_minute=5), 3)
        finally:
            await limiter.close()

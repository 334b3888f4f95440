"""Schemathesis runs against the committed OpenAPI file and a running gateway with an
admin key: generated requests (valid and invalid), undeclared methods and stateful
sequences (create a key, then rotate or revoke it) find no server error, no answer
outside the file's statuses, schemas, content types or headers, and no invalid input
accepted.

Bounded: a fixed seed and a few examples per operation keep the run at about 15 s (well
under a minute on a loaded machine); `max_examples` below is the knob.
"""

from __future__ import annotations

import asyncio
import os
import sys
from importlib import resources
from pathlib import Path

import pytest
from openai import AsyncOpenAI

from tests.admin.helpers import ADMIN_KEY, admin_gateway
from tests.fakes.openai_upstream import RunningUpstream

pytestmark = pytest.mark.integration  # sockets and a subprocess

SPEC = resources.files("gateway.admin").joinpath("openapi.yaml")
MAX_EXAMPLES = 15
SEED = 1417
# Every check but one: `positive_data_acceptance` expects every schema-valid request to
# succeed, and some cannot by rules a schema cannot state (a date range whose end is
# before its start, an expiry already past): those are 400s by design.
EXCLUDED = "positive_data_acceptance"


def _schemathesis() -> list[str]:
    script = Path(sys.executable).with_name("st")
    if not script.exists():
        pytest.fail("schemathesis is not installed (it is in the test extra)")
    return [str(script)]


async def test_schemathesis_finds_nothing(upstream: RunningUpstream, tmp_path: Path) -> None:
    """A schemathesis run (coverage, fuzzing and stateful phases, all checks) against the
    OpenAPI file and a gateway with an admin key, some traffic and budgets, passes."""
    budgets = """
budgets:
  - {scope: team, team: product, window: day, limit_usd: 5}
  - {scope: tag, tag: project=alpha, window: month, limit_usd: 50}
"""
    async with admin_gateway(upstream.base_url, tmp_path, budgets) as (gw, _, admin):
        async with AsyncOpenAI(base_url=gw.base_url, api_key="sk-x", max_retries=0) as sdk:
            await sdk.chat.completions.create(
                model="gpt-4.1", messages=[{"role": "user", "content": "hi"}],
                extra_headers={"x-gateway-tags": "project=alpha"}, user="u-1")
        await admin.ok("POST", "/admin/keys", {"alias": "web", "team": "product"})
        with resources.as_file(SPEC) as spec:
            process = await asyncio.create_subprocess_exec(
                *_schemathesis(), "run", str(spec), "--url", gw.root,
                "--header", f"Authorization: Bearer {ADMIN_KEY}",
                "--checks", "all", "--exclude-checks", EXCLUDED,
                "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED),
                "--generation-database", "none", "--request-timeout", "10", "--no-color",
                cwd=tmp_path, env={**os.environ, "NO_COLOR": "1"},
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
            try:
                out, _ = await asyncio.wait_for(process.communicate(), 150)
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
    report = out.decode(errors="replace")
    assert process.returncode == 0, report[-6000:]
    assert "Tested: 11" in report and " passed" in report, report[-3000:]
    assert ADMIN_KEY not in report  # schemathesis filters the header out of its output

"""The console in a real browser (Debian's headless Chromium driven by Playwright): log in,
watch the charts and tables fill while traffic runs, create a key in the page and use it
with the openai SDK, and see its refused call appear once its budget runs out. Saves a
screenshot of the console under load in the test's temporary directory, or where
GATEWAY_CONSOLE_SCREENSHOT says (`GATEWAY_CONSOLE_SCREENSHOT=docs/console.png` refreshes
the one the docs show).

Skipped when Chromium (/usr/bin/chromium) or the playwright package is absent; never
downloads a browser.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
from pathlib import Path

import openai
import pytest
from openai import AsyncOpenAI

from tests.admin.helpers import ADMIN_KEY, admin_gateway
from tests.fakes.openai_upstream import Behaviour, RunningUpstream

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOT_ENV = "GATEWAY_CONSOLE_SCREENSHOT"
BUDGETS = """
budgets:
  - {name: daily-fuse, scope: global, window: day, limit_usd: 0.05}
  - {scope: model, model: cheap, window: month, limit_usd: 0.004, action: alert}
"""
# A model in neither the price catalog nor the config: its calls have no known cost.
UNPRICED = """
  home-llama:
    provider: up
    upstream_model: home-llama-70b
"""
TAGS = ["project=alpha,feature=search", "project=alpha,feature=chat", "project=beta", ""]
USERS = ["alice", "bob", "carol", None]

pytestmark = [
    pytest.mark.integration,  # a browser, the gateway and the fake upstream on ports
    pytest.mark.skipif(not os.path.exists(CHROMIUM) or shutil.which("chromium") is None,
                       reason="Chromium is not installed (apt-get install chromium)"),
]
playwright_api = pytest.importorskip("playwright.async_api")


async def _load(base_url: str, calls: int, seed: int) -> None:
    """Mixed traffic: JSON and streams, two models, tags and end users."""
    rng = random.Random(seed)
    async with AsyncOpenAI(base_url=base_url, api_key="open-mode", max_retries=0) as sdk:
        for i in range(calls):
            user = rng.choice(USERS)
            extra = {"user": user} if user else {}
            model = "gpt-4.1" if i % 3 else "cheap"
            messages = [{"role": "user", "content": "hello " * rng.randint(5, 200)}]
            headers = {"x-gateway-tags": rng.choice(TAGS)}
            try:
                if i % 2:
                    stream = await sdk.chat.completions.create(
                        model=model, messages=messages, max_tokens=rng.randint(20, 200),
                        stream=True, extra_headers=headers, **extra)  # type: ignore[call-overload]
                    async for _ in stream:
                        pass
                else:
                    await sdk.chat.completions.create(
                        model=model, messages=messages, max_tokens=rng.randint(20, 200),
                        extra_headers=headers, **extra)  # type: ignore[call-overload]
            except openai.APIError:
                pass  # the scripted upstream errors show in the console as errors


async def test_console_shows_traffic_keys_and_refusals(upstream: RunningUpstream,
                                                       tmp_path: Path) -> None:
    """Login, live charts under load, a key created in the console used by the SDK, and
    its budget refusal in the recent calls; a call to an unpriced model shows as
    unpriced there, never as $0."""
    state = upstream.state
    state.per_model["gpt-4.1"] = Behaviour(latency_s=0.04, chunk_delay_s=0.004,
                                           completion_tokens=60)
    state.per_model["gpt-4.1-mini"] = Behaviour(latency_s=0.015, completion_tokens=25)
    state.models = (*(state.models or ()), "home-llama-70b")
    async with admin_gateway(upstream.base_url, tmp_path, BUDGETS, models=UNPRICED) as (gw, _, _), \
            playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = await browser.new_page(viewport={"width": 1400, "height": 1000})
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        await page.goto(gw.root + "/")
        await page.fill("#admin-key", "not-the-admin-key-000000")
        await page.click("#login-form button")
        await page.wait_for_selector("#login-error:has-text('valid admin key')")
        problems.clear()  # the refused login logs its 401 in the browser console
        await page.fill("#admin-key", ADMIN_KEY)
        await page.click("#login-form button")
        await page.wait_for_selector("#app:not([hidden])")
        await page.wait_for_selector("#calls td:has-text('no calls yet')")

        state.queue.extend([Behaviour(status=500)] * 2)  # two failed calls among the load
        for wave in range(4):  # spread over a few 10-second points of the live charts
            await _load(gw.base_url, 10, seed=wave)
            await asyncio.sleep(3.5 if wave < 3 else 0)
        # (a locator, not wait_for_function: the page's CSP rightly forbids eval)
        await page.locator("#calls tr").nth(40).wait_for(timeout=15000)
        await page.wait_for_selector("#charts svg path", timeout=15000)
        assert await page.locator("#charts .chart").count() == 6
        tiles = await page.locator("#tiles").inner_text()
        assert "requests, last 15 min" in tiles
        await page.wait_for_selector("#budgets .budget")
        assert "daily-fuse" in await page.locator("#budgets").inner_text()

        # (open mode: before the console creates the first key)
        async with AsyncOpenAI(base_url=gw.base_url, api_key="open-mode", max_retries=0) as sdk:
            await sdk.chat.completions.create(
                model="home-llama", max_tokens=20,
                messages=[{"role": "user", "content": "no price"}])
        unpriced = page.locator("#calls tr:has-text('home-llama')").first
        await unpriced.wait_for(timeout=15000)
        cost = unpriced.locator("td.unpriced")
        assert await cost.inner_text() == "unpriced"
        assert "$" not in await unpriced.inner_text()

        await page.fill("#key-form input[name=alias]", "console-key")
        await page.fill("#key-form input[name=team]", "growth")
        await page.fill("#key-form input[name=budget_usd_per_day]", "0.002")
        await page.click("#key-form button")
        secret = (await page.locator("#new-key-secret").inner_text(timeout=10000)).strip()
        assert secret.startswith("sk-gw-")
        await page.wait_for_selector("#keys td:has-text('console-key')")

        refused = 0
        async with AsyncOpenAI(base_url=gw.base_url, api_key=secret, max_retries=0) as sdk:
            for _ in range(30):
                try:
                    await sdk.chat.completions.create(
                        model="gpt-4.1", max_tokens=100, user="dave",
                        messages=[{"role": "user", "content": "spend it"}],
                        extra_headers={"x-gateway-tags": "project=gamma"})
                except openai.RateLimitError as exc:
                    assert exc.code == "budget_exceeded"
                    refused += 1
                    break
        assert refused == 1
        await page.wait_for_selector("#calls td:has-text('429 budget_exceeded')", timeout=15000)
        row = await page.locator("#calls tr:has-text('budget_exceeded')").first.inner_text()
        assert "console-key" in row and "growth" in row and "project=gamma" in row

        await page.select_option("#spend-by", "user")
        await page.wait_for_selector("#spend td:has-text('dave')", timeout=10000)
        await asyncio.sleep(0.3)
        shot = Path(os.environ.get(SCREENSHOT_ENV) or tmp_path / "console.png")
        await page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 50_000  # a full page, not a blank one
        await browser.close()
        assert problems == []

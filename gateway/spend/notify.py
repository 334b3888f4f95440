"""Sends notices to webhooks in the background, with retries, never on the request path.

`submit` only puts the notice on a bounded queue (O(1), never blocks); a worker
task claims it in the store (so a threshold fires once per window even across
restarts and replicas) and delivers it to every webhook, each delivery retried
with exponential backoff on network errors, 5xx and 429.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
import orjson
from opentelemetry.context import Context

from gateway.spend.config import WebhookConfig
from gateway.spend.notify_formats import Notice, accepted, render
from gateway.spend.windows import Clock
from gateway.telemetry.logs import within

_log = logging.getLogger(__name__)
Claim = Callable[[str, float], Awaitable[bool]]
Sleep = Callable[[float], Awaitable[None]]
_PERMANENT_STATUS = frozenset(range(400, 500)) - {408, 425, 429}


class Notifier:
    def __init__(self, webhooks: Sequence[WebhookConfig], *, clock: Clock, claim: Claim | None = None,
                 max_attempts: int = 5, backoff_s: float = 1.0, queue_size: int = 1000,
                 sleep: Sleep = asyncio.sleep) -> None:
        self.webhooks = list(webhooks)
        self.clock = clock
        self.claim = claim
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self._sleep = sleep
        self._queue: asyncio.Queue[tuple[Notice, str | None, float]] = asyncio.Queue(queue_size)
        self._worker: asyncio.Task[None] | None = None
        self._deliveries: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self.sent = 0
        self.failed = 0

    def submit(self, notice: Notice, claim: str | None = None, claim_ttl_s: float = 86400.0,
               context: Context | None = None) -> None:
        """Queue a notice; with `claim`, only the first submitter in the store sends it. Its
        log record carries the trace of `context` (the request that crossed the line)."""
        with within(context):
            _log.warning("%s: %s", notice.title, notice.text)
        if not self.webhooks:
            return
        try:
            self._queue.put_nowait((notice, claim, claim_ttl_s))
        except asyncio.QueueFull:
            _log.error("notification queue full: dropped '%s'", notice.title)

    async def start(self) -> None:
        if self.webhooks and self._worker is None:
            self._session = aiohttp.ClientSession()
            self._worker = asyncio.create_task(self._run(), name="spend-notifier")

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued for up to `timeout_s`, then give up."""
        worker, self._worker = self._worker, None
        if worker is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), timeout_s)
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        if self._deliveries:
            _, pending = await asyncio.wait(self._deliveries, timeout=timeout_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        while True:
            notice, claim, ttl = await self._queue.get()
            try:
                if claim is not None and self.claim is not None and not await self.claim(claim, ttl):
                    continue  # another replica, or this one before a restart, already sent it
                for hook in self.webhooks:
                    task = asyncio.create_task(self._deliver(hook, notice))
                    self._deliveries.add(task)
                    task.add_done_callback(self._deliveries.discard)
            except Exception:
                _log.exception("could not process notice '%s'", notice.title)
            finally:
                self._queue.task_done()

    async def _deliver(self, hook: WebhookConfig, notice: Notice) -> None:
        assert self._session is not None
        for attempt in range(1, self.max_attempts + 1):
            url, body = render(hook.format, notice, hook.url, secret=hook.secret,
                               now=self.clock.now())
            outcome = await self._post(hook, url, body)
            if outcome == "ok":
                self.sent += 1
                return
            if outcome == "permanent" or attempt == self.max_attempts:
                break
            await self._sleep(self.backoff_s * 2 ** (attempt - 1))
        self.failed += 1
        _log.error("webhook %s (%s) did not take notice '%s'", hook.display, hook.format,
                   notice.title)

    async def _post(self, hook: WebhookConfig, url: str, body: dict[str, Any]) -> str:
        assert self._session is not None
        timeout = aiohttp.ClientTimeout(total=hook.timeout_s)
        try:
            async with self._session.post(url, data=orjson.dumps(body), timeout=timeout,
                                          headers={"content-type": "application/json"}) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            _log.warning("webhook %s: %s", hook.display, type(exc).__name__)
            return "retry"
        try:
            payload: Any = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            payload = None
        if accepted(hook.format, status, payload):
            return "ok"
        _log.warning("webhook %s answered %d", hook.display, status)
        return "permanent" if status in _PERMANENT_STATUS or status < 300 else "retry"

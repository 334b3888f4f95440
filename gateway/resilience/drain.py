"""Graceful shutdown: know which requests are in flight, let them finish up to a
deadline, then cancel the rest so each ends cleanly (a stream gets an SSE
error event, spans end, upstream connections close) before telemetry is flushed.

aiohttp's own shutdown closes the socket right after cancelling a handler, so
a cancelled stream could not say why it ended; doing the cancel here first
gives it that moment.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

_log = logging.getLogger(__name__)


class InFlight:
    """The handler tasks of requests in progress (a set add and discard per request)."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()

    def enter(self) -> asyncio.Task[Any] | None:
        """Count the current request in (the edge's proxy calls this, not a middleware: an aiohttp
        middleware costs a partial and a wrapper per request); pass the result to `leave`."""
        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
        return task

    def leave(self, task: asyncio.Task[Any] | None) -> None:
        if task is not None:
            self.tasks.discard(task)

    async def drain(self, timeout_s: float, hurry: asyncio.Event) -> int:
        """Wait until no request is in flight, `timeout_s` passes or `hurry` is set;
        returns how many are still running."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        hurry_waiter = asyncio.ensure_future(hurry.wait())
        try:
            while self.tasks and not hurry.is_set():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                await asyncio.wait({*self.tasks, hurry_waiter}, timeout=remaining,
                                   return_when=asyncio.FIRST_COMPLETED)
        finally:
            hurry_waiter.cancel()
        return len(self.tasks)

    async def cancel_rest(self, grace_s: float) -> int:
        """Cancel what is still running and give it `grace_s` to end; returns how many."""
        left = list(self.tasks)
        for task in left:
            task.cancel()
        if left:
            await asyncio.wait(left, timeout=grace_s)
        return len(left)

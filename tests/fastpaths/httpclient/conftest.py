"""Every test of the upstream client runs on both event loops: asyncio's (what the
tests elsewhere use) and uvloop's (what the gateway serves on), whose transports
differ in how they report EOF, resets and paused reading."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import pytest
import uvloop


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}

"""The translated-call tests' rig as a fixture (`tests/translate/rig.py`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.translate.rig import Rig, running_rig


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with running_rig() as running:
        yield running

"""Which models, in what order, may serve a call (fallback chains plug in here)."""

from __future__ import annotations

from typing import Protocol

from gateway.call import Call
from gateway.config import ModelConfig


class Router(Protocol):
    def chain(self, call: Call) -> list[ModelConfig]:
        """Models to try in order; the first is the one the client asked for."""
        ...


class DirectRouter:
    """No fallbacks: only the model the client asked for."""

    def chain(self, call: Call) -> list[ModelConfig]:
        return [call.model]

"""Which models, in what order, may serve a call: the asked-for model, then its
fallback chain from the config (resolved once, at start-up)."""

from __future__ import annotations

from typing import Protocol

from gateway.call import Call
from gateway.config import GatewayConfig, ModelConfig


class Router(Protocol):
    def chain(self, call: Call) -> list[ModelConfig]:
        """Models to try in order; the first is the one the client asked for."""
        ...


class FallbackRouter:
    """The asked-for model, then `models.<name>.fallbacks` (each followed by its own),
    leaving out fallbacks the caller's key may not use."""

    def __init__(self, config: GatewayConfig) -> None:
        self._chains = {
            name: [config.models[m] for m in config.resilience.chain(name)]
            for name in config.models
        }

    def chain(self, call: Call) -> list[ModelConfig]:
        chain = self._chains.get(call.model.name) or [call.model]
        if chain[0] is not call.model:  # a pattern entry's id, priced on its own (patternprices)
            chain = [call.model, *chain[1:]]
        allowed = call.principal.allowed_models
        if allowed is None or len(chain) == 1:
            return chain
        return [chain[0], *(m for m in chain[1:] if m.name in allowed)]

"""Seams where spend control, rate limits and resilience plug into the request path.

The request path calls these in order (the chain `on_request`, `on_attempt`,
`on_attempt_done`; the lifecycle `on_finish`); each feature implements the hooks
it needs and is registered in `create_app`, so the path never imports them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from gateway.call import ANONYMOUS, AttemptResult, Call, Principal
from gateway.config import ModelConfig


class Authenticator(Protocol):
    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """The caller, or raise AuthenticationFailed."""
        ...


class OpenAccess:
    """No keys configured: everyone is the anonymous principal."""

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        return ANONYMOUS


class CallHook(Protocol):
    async def on_request(self, call: Call) -> None:
        """Before any upstream attempt; raise a GatewayError to refuse the call."""
        ...

    async def on_attempt(self, call: Call, model: ModelConfig) -> None:
        """Before each attempt (also fallbacks); raise to skip this model."""
        ...

    async def on_attempt_done(self, call: Call, result: AttemptResult) -> None:
        """After each attempt, with what it used; must not raise."""
        ...

    async def on_finish(self, call: Call) -> None:
        """Once the response has been sent (or the client left); must not raise."""
        ...


class BaseHook:
    """A hook that does nothing; features override what they need."""

    async def on_request(self, call: Call) -> None:
        return None

    async def on_attempt(self, call: Call, model: ModelConfig) -> None:
        return None

    async def on_attempt_done(self, call: Call, result: AttemptResult) -> None:
        return None

    async def on_finish(self, call: Call) -> None:
        return None


def overriding(hooks: Sequence[CallHook], method: str) -> tuple[CallHook, ...]:
    """The hooks whose `method` does something: a `BaseHook` subclass that kept the
    no-op is left out, so a hook needing one of the four seams costs nothing at the
    other three (the path awaits each hook it calls)."""
    idle = getattr(BaseHook, method)
    return tuple(hook for hook in hooks if getattr(type(hook), method, None) is not idle)

"""Runs a call's attempts in the order the router gives, with the hooks around them.

The core policy: try each model of the chain; a retryable failure before
anything reached the client moves on to the next model; the first success, or
the last failure, is the answer.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from gateway import errors
from gateway.attempt import AttemptFailed, AttemptRunner
from gateway.call import AttemptResult, Call
from gateway.config import ModelConfig
from gateway.hooks import CallHook
from gateway.router import Router


class Dispatcher:
    def __init__(self, runner: AttemptRunner, router: Router, hooks: Sequence[CallHook]) -> None:
        self.runner = runner
        self.router = router
        self.hooks = list(hooks)

    async def attempt(self, call: Call, model: ModelConfig, http_request: web.Request,
                      number: int) -> web.StreamResponse:
        """One attempt end to end; raises AttemptFailed before commit."""
        for hook in self.hooks:
            await hook.on_attempt(call, model)
        try:
            response, recorder, provider = await self.runner.open(call, model, number)
            if call.client.stream:
                chunks, first = await self.runner.first_chunk(
                    call, model, response, recorder, provider)
                call.served_model = model
                call.served_provider = provider.config.provider_name
                out, result = await self.runner.stream(
                    call, model, response, recorder, provider, http_request, chunks, first)
            else:
                out, result = await self.runner.complete(call, model, response, recorder, provider)
        except AttemptFailed as failed:
            await self._done(call, failed.result)
            raise
        call.served_model = model
        call.served_provider = result.provider_name
        await self._done(call, result)
        return out

    async def _done(self, call: Call, result: AttemptResult) -> None:
        call.attempts.append(result)
        for hook in self.hooks:
            await hook.on_attempt_done(call, result)

    async def dispatch(self, call: Call, http_request: web.Request) -> web.StreamResponse:
        for hook in self.hooks:
            await hook.on_request(call)
        chain = self.router.chain(call)
        last: errors.GatewayError | None = None
        for number, model in enumerate(chain, start=1):
            try:
                return await self.attempt(call, model, http_request, number)
            except AttemptFailed as failed:
                last = failed.error
                if not failed.retryable:
                    raise failed.error from None
        raise last or errors.ServiceUnavailable("no model could serve this request")

    async def finish(self, call: Call) -> None:
        for hook in self.hooks:
            await hook.on_finish(call)

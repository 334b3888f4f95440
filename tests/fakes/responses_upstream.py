"""A fake upstream that speaks the OpenAI Responses API's exact wire format: `POST
/v1/responses` answered as a whole `response` object or as typed SSE events (`event:`
line, `data:` with `type` and `sequence_number`, no `[DONE]`), the stored-response
routes (`GET`/`DELETE /v1/responses/{id}`, `POST .../cancel`, `GET .../input_items`),
OpenAI's error bodies and headers (`x-request-id`, `openai-processing-ms`,
`x-ratelimit-*`). Written by hand from the API reference, independently of the
gateway's own event builder.

    async with running_responses(Behaviour(text="Hi"), api_key="sk-up") as up:
        client = AsyncOpenAI(base_url=up.base_url, api_key="sk-up")
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

JSON = dict[str, Any]


@dataclass(frozen=True)
class Behaviour:
    """How the fake answers. `text` (default: an echo of the input), `tool_call` (name,
    arguments JSON) answered as a function_call item; usage `input_tokens`,
    `cached_tokens`, `output_tokens`, `reasoning_tokens` (a reasoning item when > 0).
    Faults: `status` answers that error (`retry_after` adds the header); in streams
    `chunk_delay_s` between events, `fail_after_deltas` ends with `response.failed`,
    `close_after_deltas` ends the body cleanly there, with no final event."""

    text: str | None = None
    tool_call: tuple[str, str] | None = None
    input_tokens: int = 21
    cached_tokens: int = 0
    output_tokens: int = 9
    reasoning_tokens: int = 0
    status: int = 0
    retry_after: str | None = None
    chunk_delay_s: float = 0.0
    fail_after_deltas: int | None = None
    close_after_deltas: int | None = None


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class State:
    api_key: str | None = None
    behaviour: Behaviour = field(default_factory=Behaviour)
    requests: list[Seen] = field(default_factory=list)
    stored: dict[str, JSON] = field(default_factory=dict)
    stream_closed: asyncio.Event = field(default_factory=asyncio.Event)
    script: list[Behaviour] = field(default_factory=list)  # answers in turn, then `behaviour`

    @property
    def last(self) -> Seen:
        return self.requests[-1]


HEADERS = {"openai-processing-ms": "31", "openai-version": "2020-10-01",
           "x-ratelimit-limit-requests": "10000", "x-ratelimit-remaining-requests": "9999"}


def _error(status: int, message: str, kind: str, code: str | None,
           extra: dict[str, str] | None = None) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json",
                        headers={**HEADERS, "x-request-id": f"req_{uuid.uuid4().hex}", **(extra or {})})


def _usage(b: Behaviour) -> JSON:
    return {"input_tokens": b.input_tokens,
            "input_tokens_details": {"cached_tokens": b.cached_tokens, "cache_write_tokens": 0},
            "output_tokens": b.output_tokens,
            "output_tokens_details": {"reasoning_tokens": b.reasoning_tokens},
            "total_tokens": b.input_tokens + b.output_tokens}


def _response(body: JSON, status: str, output: list[JSON], usage: JSON | None) -> JSON:
    return {"id": body["_id"], "object": "response", "created_at": 1_767_000_000,
            "status": status, "background": bool(body.get("background")), "error": None,
            "incomplete_details": None, "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"), "model": "gpt-4.1-2025-04-14",
            "output": output, "parallel_tool_calls": True,
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": None, "summary": None}, "service_tier": "default",
            "store": body.get("store", True), "temperature": 1.0,
            "text": body.get("text") or {"format": {"type": "text"}},
            "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools", []),
            "top_p": 1.0, "truncation": "disabled", "usage": usage, "user": None, "metadata": {}}


def _text(body: JSON, b: Behaviour) -> str:
    if b.text is not None:
        return b.text
    value = body.get("input")
    return f"echo: {value}" if isinstance(value, str) else "echo"


def _output(body: JSON, b: Behaviour) -> list[JSON]:
    output: list[JSON] = []
    if b.reasoning_tokens:
        output.append({"id": "rs_1", "type": "reasoning", "summary": []})
    if b.tool_call is not None:
        output.append({"id": "fc_1", "type": "function_call", "status": "completed",
                       "arguments": b.tool_call[1], "call_id": "call_1", "name": b.tool_call[0]})
    else:
        output.append({"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
                       "content": [{"type": "output_text", "text": _text(body, b),
                                    "annotations": [], "logprobs": []}]})
    return output


def _lower(request: web.Request) -> dict[str, str]:
    return {name.lower(): value for name, value in request.headers.items()}


class Fake:
    def __init__(self, state: State) -> None:
        self.state = state

    def _check(self, request: web.Request) -> web.Response | None:
        key = self.state.api_key
        if key is not None and request.headers.get("authorization") != f"Bearer {key}":
            return _error(401, "Incorrect API key provided.", "invalid_request_error",
                          "invalid_api_key")
        return None

    async def create(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = orjson.loads(raw)
        self.state.requests.append(Seen("POST", request.path, _lower(request), body))
        refused = self._check(request)
        if refused is not None:
            return refused
        b = self.state.script.pop(0) if self.state.script else self.state.behaviour
        if b.status:
            extra = {"retry-after": b.retry_after} if b.retry_after else {}
            return _error(b.status, f"Simulated error {b.status}.",
                          "server_error" if b.status >= 500 else "invalid_request_error",
                          None, extra)
        body["_id"] = f"resp_{uuid.uuid4().hex}"
        if not body.get("stream"):
            answer = _response(body, "completed", _output(body, b), _usage(b))
            answer.pop("_id", None)
            self.state.stored[answer["id"]] = answer
            return web.Response(body=orjson.dumps(answer), content_type="application/json",
                                headers={**HEADERS, "x-request-id": f"req_{uuid.uuid4().hex}"})
        return await self._stream(request, body, b)

    async def _stream(self, request: web.Request, body: JSON, b: Behaviour) -> web.StreamResponse:
        out = web.StreamResponse(headers={**HEADERS, "content-type": "text/event-stream; charset=utf-8",
                                          "x-request-id": f"req_{uuid.uuid4().hex}"})
        await out.prepare(request)
        seq = 0

        async def send(kind: str, payload: JSON) -> None:
            nonlocal seq
            data = orjson.dumps({"type": kind, "sequence_number": seq, **payload})
            seq += 1
            await out.write(b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n")
            if b.chunk_delay_s:
                await asyncio.sleep(b.chunk_delay_s)

        final = _output(body, b)
        try:
            await send("response.created", {"response": _response(body, "in_progress", [], None)})
            await send("response.in_progress", {"response": _response(body, "in_progress", [], None)})
            for index, item in enumerate(final):
                if item["type"] == "message":
                    text = item["content"][0]["text"]
                    await send("response.output_item.added", {"output_index": index, "item": {
                        **item, "status": "in_progress", "content": []}})
                    where = {"item_id": item["id"], "output_index": index, "content_index": 0}
                    await send("response.content_part.added", {**where, "part": {
                        "type": "output_text", "text": "", "annotations": [], "logprobs": []}})
                    pieces = [text[i:i + 4] for i in range(0, len(text), 4)]
                    for count, piece in enumerate(pieces):
                        if b.fail_after_deltas is not None and count == b.fail_after_deltas:
                            failed = _response(body, "failed", [], None)
                            failed["error"] = {"code": "server_error", "message": "The model failed."}
                            await send("response.failed", {"response": failed})
                            return out
                        if b.close_after_deltas is not None and count == b.close_after_deltas:
                            await out.write_eof()
                            return out
                        await send("response.output_text.delta", {**where, "delta": piece,
                                                                  "logprobs": []})
                    await send("response.output_text.done", {**where, "text": text, "logprobs": []})
                    await send("response.content_part.done", {**where, "part": item["content"][0]})
                elif item["type"] == "function_call":
                    await send("response.output_item.added", {"output_index": index, "item": {
                        **item, "status": "in_progress", "arguments": ""}})
                    await send("response.function_call_arguments.delta", {
                        "item_id": item["id"], "output_index": index, "delta": item["arguments"]})
                    await send("response.function_call_arguments.done", {
                        "item_id": item["id"], "output_index": index, "arguments": item["arguments"]})
                else:
                    await send("response.output_item.added", {"output_index": index, "item": item})
                await send("response.output_item.done", {"output_index": index, "item": item})
            answer = _response(body, "completed", final, _usage(b))
            self.state.stored[answer["id"]] = answer
            await send("response.completed", {"response": answer})
            await out.write_eof()
        finally:
            self.state.stream_closed.set()
        return out

    async def stored(self, request: web.Request) -> web.Response:
        self.state.requests.append(Seen(request.method, request.path, _lower(request), None))
        refused = self._check(request)
        if refused is not None:
            return refused
        ident = request.match_info["id"]
        found = self.state.stored.get(ident)
        if found is None:
            return _error(404, f"Response with id '{ident}' not found.", "invalid_request_error", None)
        headers = {**HEADERS, "x-request-id": f"req_{uuid.uuid4().hex}"}
        if request.method == "DELETE":
            del self.state.stored[ident]
            found = {"id": ident, "object": "response", "deleted": True}
        elif request.path.endswith("/cancel"):
            found = {**found, "status": "cancelled"}
        elif request.path.endswith("/input_items"):
            found = {"object": "list", "data": [], "first_id": None, "last_id": None,
                     "has_more": False}
        return web.Response(body=orjson.dumps(found), content_type="application/json",
                            headers=headers)


@dataclass
class RunningResponses:
    base_url: str  # ".../v1"
    state: State


@contextlib.asynccontextmanager
async def running_responses(behaviour: Behaviour | None = None, *, api_key: str | None = None
                            ) -> AsyncIterator[RunningResponses]:
    state = State(api_key=api_key, behaviour=behaviour or Behaviour())
    fake = Fake(state)
    app = web.Application()
    app.router.add_post("/v1/responses", fake.create)
    app.router.add_route("GET", "/v1/responses/{id}", fake.stored)
    app.router.add_route("DELETE", "/v1/responses/{id}", fake.stored)
    app.router.add_post("/v1/responses/{id}/cancel", fake.stored)
    app.router.add_get("/v1/responses/{id}/input_items", fake.stored)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield RunningResponses(f"http://127.0.0.1:{port}/v1", state)
    finally:
        await runner.cleanup()


__all__ = ["Behaviour", "RunningResponses", "running_responses"]

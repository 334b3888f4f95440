"""Relays an upstream SSE stream to the client event by event, never buffering
the answer, while reading usage, finish reasons and chunk timing on the way.

The stream ends in exactly one of: `done` ([DONE] seen), `upstream_reset`,
`upstream_incomplete` (closed without [DONE]), `malformed`, `timeout`,
`client_disconnect` or `cancelled` (server shutdown); the relay closes the
upstream in every case.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from aiohttp import web

from gateway.call import Call
from gateway.config import ModelConfig
from gateway.providers.base import UpstreamResponse
from gateway.sse import DONE, SSESplitter, event_data
from gateway.telemetry import names as n
from gateway.telemetry.recorder import AttemptRecorder, response_attributes
from gateway.usage import Usage, estimate_prompt_tokens, from_openai

_NULL_USAGE = (b',"usage":null', b', "usage": null')
ERROR_CANCELLED = n.ERROR_CANCELLED


def error_event(message: str, code: str) -> bytes:
    """An SSE event the OpenAI SDK raises as `APIError` mid-stream."""
    body = {"error": {"message": message, "type": "upstream_error", "param": None, "code": code}}
    return b"data: " + orjson.dumps(body) + b"\n\n"


class StreamRelay:
    """State of one relayed stream; `run` drives it to the end."""

    def __init__(self, *, call: Call, model: ModelConfig, recorder: AttemptRecorder,
                 capture: bool) -> None:
        self.call = call
        self.model = model
        self.recorder = recorder
        self.capture = capture
        self.rewrite_model = model.upstream_model != model.name
        self.strip_null_usage = not call.client.include_usage
        self.usage: Usage | None = None
        self.response_model: str | None = None
        self.response_attributes: dict[str, Any] = {}
        self.finish_reasons: dict[int, str] = {}
        self.texts: dict[int, str] = {}
        self.content_chunks = 0
        self.end = "done"
        self.error_type: str | None = None
        self.error_message: str | None = None
        self._seen_first = False
        # Raw-byte fast path for plain chunks; off where every chunk must be rewritten or read.
        self._fast = not capture and not self.rewrite_model
        self._done = False

    @property
    def estimated_output_tokens(self) -> int:
        return self.content_chunks

    @property
    def usage_or_estimate(self) -> Usage:
        """The upstream's reported usage, else an estimate from the prompt and chunks seen."""
        if self.usage is not None:
            return self.usage
        return Usage(input=estimate_prompt_tokens(self.call.client.body),
                     output=self.content_chunks, estimated=True)

    def _fail(self, end: str, error_type: str, message: str) -> None:
        self.end = end
        self.error_type = error_type
        self.error_message = message

    async def run(self, http_request: web.Request, out: web.StreamResponse,
                  response: UpstreamResponse, chunks: AsyncIterator[bytes], first: bytes) -> None:
        splitter = SSESplitter()
        call = self.call
        try:
            await out.prepare(http_request)
            data = self._process(splitter.feed(first))
            if data:
                await out.write(data)
            while not self._done:
                started = time.perf_counter()
                try:
                    chunk: bytes | None = await anext(chunks)
                except StopAsyncIteration:
                    chunk = None
                finally:
                    call.upstream_wait_s += time.perf_counter() - started
                if chunk is None:
                    break
                data = self._process(splitter.feed(chunk))
                if data:
                    await out.write(data)
            if not self._done and self.error_type is None:
                self._fail("upstream_incomplete", "incomplete_stream",
                           "the upstream closed the stream before it was complete")
                await out.write(error_event(self.error_message or "", "incomplete_stream"))
            await out.write_eof()
        except (ConnectionResetError, ConnectionError) as exc:
            if _client_gone(http_request):
                self._fail("client_disconnect", n.ERROR_CLIENT_DISCONNECT,
                           "the client disconnected")
            else:
                await self._upstream_failed(out, "upstream_reset", "connection_reset", exc)
        except asyncio.CancelledError:
            if _client_gone(http_request):
                self._fail("client_disconnect", n.ERROR_CLIENT_DISCONNECT, "the client disconnected")
            else:  # the server is stopping (shutdown deadline passed): tell the client why
                self._fail("cancelled", ERROR_CANCELLED, "the gateway stopped the stream")
                await _last_words(out, error_event("the gateway is shutting down", ERROR_CANCELLED))
            raise
        except TimeoutError as exc:
            await self._upstream_failed(out, "timeout", n.ERROR_TIMEOUT, exc)
        except Exception as exc:  # aiohttp.ClientPayloadError and other transport failures
            await self._upstream_failed(out, "upstream_reset", "connection_reset", exc)
        finally:
            response.close()

    async def _upstream_failed(self, out: web.StreamResponse, end: str, error_type: str,
                               exc: BaseException) -> None:
        message = f"the upstream stream failed: {type(exc).__name__}"
        self._fail(end, error_type, message)
        try:
            await out.write(error_event(message, error_type))
            await out.write_eof()
        except (ConnectionError, RuntimeError):
            self._fail("client_disconnect", n.ERROR_CLIENT_DISCONNECT, "the client disconnected")

    def _process(self, events: list[bytes]) -> bytes:
        """Inspect whole events; return the bytes to send the client."""
        parts: list[bytes] = []
        for event in events:
            if self._fast and self._plain_chunk(event):
                parts.append(self._relay_plain(event))
                continue
            data = event_data(event)
            if data is None:  # comment or keep-alive: pass on
                parts.append(event + b"\n\n")
                continue
            if data == DONE:
                self._done = True
                parts.append(b"data: [DONE]\n\n")
                break
            try:
                payload = orjson.loads(data)
            except orjson.JSONDecodeError:
                self._fail("malformed", "malformed_sse", "the upstream sent a malformed event")
                parts.append(error_event(self.error_message or "", "malformed_sse"))
                self._done = True
                break
            if not isinstance(payload, dict):
                parts.append(event + b"\n\n")
                continue
            parts.append(self._chunk(event, payload))
        return b"".join(parts)

    def _plain_chunk(self, event: bytes) -> bool:
        """A mid-stream content chunk that carries nothing to read (no usage, no finish
        reason, no error), recognised in the raw bytes of compact JSON so the common
        case skips parsing. Anything unusual takes the parsing path."""
        return (
            self._seen_first
            and event.startswith(b'data: {"')
            and event.endswith(b"}")
            and b"\n" not in event
            and b'"finish_reason":null' in event
            and b'"choices":[{' in event
            and b'"usage":{' not in event
            and b'"error"' not in event
            and event.count(b'"finish_reason"') == 1
        )

    def _relay_plain(self, event: bytes) -> bytes:
        self.recorder.chunk()
        if b'"content":"' in event and b'"content":""' not in event:
            self.content_chunks += 1
        if self.strip_null_usage and b'"usage":null' in event:
            event = event.replace(b',"usage":null', b"").replace(b'"usage":null,', b"")
        return event + b"\n\n"

    def _chunk(self, event: bytes, payload: dict[str, Any]) -> bytes:
        if "error" in payload and not payload.get("choices"):
            error = payload.get("error")
            code = error.get("code") if isinstance(error, dict) else None
            self._fail("upstream_error", str(code or "upstream_error"),
                       "the upstream reported an error mid-stream")
            self._done = True
            return event + b"\n\n"
        choices = payload.get("choices")
        usage = payload.get("usage")
        if usage is not None:
            self.usage = from_openai(usage)
        if not self._seen_first:
            self._seen_first = True
            self.recorder.first_chunk()
            self.response_attributes = response_attributes(payload)
            model = payload.get("model")
            self.response_model = model if isinstance(model, str) else None
        elif choices:
            self.recorder.chunk()
        if choices:
            self._read_choices(choices)
        elif usage is not None and not self.call.client.include_usage:
            return b""  # the usage-only chunk the client did not ask for
        if self.rewrite_model and "model" in payload:
            payload["model"] = self.model.name
            if self.strip_null_usage and "usage" in payload and payload["usage"] is None:
                del payload["usage"]
            return b"data: " + orjson.dumps(payload) + b"\n\n"
        if self.strip_null_usage and usage is None and b'"usage"' in event:
            for pattern in _NULL_USAGE:
                event = event.replace(pattern, b"")
        if not event.startswith(b"data: ") or b"\n" in event:
            return b"data: " + orjson.dumps(payload) + b"\n\n"
        return event + b"\n\n"

    def _read_choices(self, choices: Any) -> None:
        if not isinstance(choices, list):
            return
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", 0)
            index = index if isinstance(index, int) else 0
            reason = choice.get("finish_reason")
            if isinstance(reason, str):
                self.finish_reasons[index] = reason
            delta = choice.get("delta")
            text = delta.get("content") if isinstance(delta, dict) else None
            if text:
                self.content_chunks += 1
                if self.capture:
                    self.texts[index] = self.texts.get(index, "") + text
        if self.finish_reasons:
            self.response_attributes[n.GEN_AI_RESPONSE_FINISH_REASONS] = [
                self.finish_reasons[i] for i in sorted(self.finish_reasons)
            ]


async def _last_words(out: web.StreamResponse, event: bytes) -> None:
    """Best effort, bounded: one error event to a client whose stream is being cut."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(1.0):
            await out.write(event)


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()

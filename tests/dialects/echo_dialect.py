"""A toy API dialect, "echo", that exists to prove the dialect seam: adding it is this
module plus registering it with `create_app`, with no edit to the request path.

Wire format (invented, small, different from OpenAI's on purpose):
- request `POST /v1/echo`: `{"model", "text", "stream"?, "max_words"?}`;
- answer: `{"model", "echo", "usage": {"in", "out"}}`;
- stream: `event: word` + `data: {"word"}` per word, then `event: usage` +
  `data: {"in", "out"}`, then `event: end` + `data: {}`; an `event: error` +
  `data: {"message", "code"}` ends it early;
- errors: `{"kind": "error", "detail": {"type", "message", "code"}}`.
"""

from __future__ import annotations

import contextlib
from typing import Any

import orjson

from gateway.dialects.base import ChunkTimer, ClientRequest, Reading, StreamEnd
from gateway.errors import GatewayError, InvalidRequest, UpstreamStatus
from gateway.sse import event_data
from gateway.usage import Usage

NAME = "test.echo"


def _error_json(kind: str, message: str, code: str | None) -> bytes:
    return orjson.dumps({"kind": "error", "detail": {"type": kind, "message": message,
                                                     "code": code}})


def _usage(value: Any) -> Usage | None:
    if not isinstance(value, dict):
        return None
    return Usage(input=int(value.get("in", 0)), output=int(value.get("out", 0)))


class EchoDialect:
    name: str = NAME
    operation: str = "text_completion"
    routes: tuple[str, ...] = ("/v1/echo",)
    upstream_path: str = "/echo"
    pass_headers: tuple[str, ...] = ("x-echo-version",)
    forward_headers: tuple[str, ...] = ()

    def parse(self, raw: bytes) -> ClientRequest:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise InvalidRequest("the body is not JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            raise InvalidRequest("'model' is required", param="model")
        if not isinstance(body.get("text"), str):
            raise InvalidRequest("'text' is required", param="text")
        limit = body.get("max_words")
        return ClientRequest(self, body, body["model"], stream=body.get("stream") is True,
                             max_tokens=limit if isinstance(limit, int) else None, raw=raw)

    def estimate_prompt(self, body: dict[str, Any]) -> int:
        return len(str(body.get("text", "")).split())

    def request_attributes(self, request: ClientRequest, capture: bool) -> dict[str, Any]:
        return {"echo.words": self.estimate_prompt(request.body)}

    def upstream_body(self, request: ClientRequest, upstream_model: str
                      ) -> tuple[dict[str, Any], bytes | None]:
        return {**request.body, "model": upstream_model}, None

    def read_answer(self, request: ClientRequest, payload: dict[str, Any], served: str,
                    rename: bool, capture: bool) -> Reading:
        upstream_model = payload.get("model")
        body = orjson.dumps({**payload, "model": served}) if rename else None
        return Reading(_usage(payload.get("usage")),
                       upstream_model if isinstance(upstream_model, str) else None,
                       {"echo.length": len(str(payload.get("echo", "")))}, body,
                       output_tokens=len(str(payload.get("echo", "")).split()))

    def watch(self, request: ClientRequest, served: str, rename: bool, timer: ChunkTimer,
              capture: bool) -> EchoWatcher:
        return EchoWatcher(timer)

    def event_error(self, data: bytes) -> str | None:
        payload = orjson.loads(data)
        if isinstance(payload, dict) and "message" in payload and "code" in payload:
            return str(payload["message"])
        return None

    def error_body(self, error: GatewayError) -> bytes:
        if isinstance(error, UpstreamStatus):  # already shaped by upstream_error
            return error.body_bytes()
        return _error_json(error.type, error.message, error.code)

    def upstream_error(self, status: int, body: bytes) -> bytes:
        with contextlib.suppress(orjson.JSONDecodeError):
            parsed = orjson.loads(body)
            if isinstance(parsed, dict) and parsed.get("kind") == "error":
                return body
        return _error_json("upstream_error", f"upstream answered {status}", None)

    def stream_error(self, message: str, code: str) -> bytes:
        return b"event: error\ndata: " + orjson.dumps({"message": message, "code": code}) \
            + b"\n\n"


class EchoWatcher:
    def __init__(self, timer: ChunkTimer) -> None:
        self.timer = timer
        self.done = False
        self.failure: StreamEnd | None = None
        self.usage: Usage | None = None
        self.response_model: str | None = None
        self.response_attributes: dict[str, Any] = {}
        self.words = 0

    def feed(self, events: list[bytes]) -> bytes:
        out: list[bytes] = []
        for event in events:
            data = event_data(event) or b"{}"
            kind = event.split(b"\n", 1)[0].removeprefix(b"event: ")
            if kind == b"word":
                self.timer.chunk() if self.words else self.timer.first_chunk()
                self.words += 1
            elif kind == b"usage":
                self.usage = _usage(orjson.loads(data))
            elif kind == b"error":
                self.failure = StreamEnd("upstream_error", "echo_error", "the echo failed")
                self.done = True
            elif kind == b"end":
                self.done = True
            out.append(event + b"\n\n")
            if self.done:
                break
        return b"".join(out)

    def output_tokens(self) -> int:
        return self.words

    def output_messages(self) -> str | None:
        return None

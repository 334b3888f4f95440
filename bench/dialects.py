"""The dialects the benchmark sends, each as the client of that API sends it: path, body, where
the key goes, and how a complete answer ends. The gateway routes each to a provider of its
native kind on the benchmark's upstream (bench/gateway_config.py); `chat-on-anthropic` is an
OpenAI chat client asking for a model on the Anthropic provider (translated both ways).

A dialect the gateway does not serve answers 404: its rows are listed as skipped, with the
reason, and run as soon as the gateway serves that path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CHAT_MODEL = "gpt-4.1"
EMBED_MODEL = "text-embedding-3-small"
CLAUDE_MODEL = "claude-bench"
GEMINI_MODEL = "gemini-bench"
PROMPT = "Say hello to the gateway in a few words please"


@dataclass(frozen=True)
class Dialect:
    name: str
    what: str
    provider_kind: str  # the gateway provider kind it is routed to: openai | anthropic | gemini
    key_header: str  # authorization (Bearer) | x-api-key | x-goog-api-key
    json_path: str
    json_body: dict[str, Any]
    stream_path: str | None = None  # None: no streamed form
    stream_body: dict[str, Any] | None = None
    stream_end: bytes = b"data: [DONE]"  # what a complete stream contains
    headers: tuple[tuple[str, str], ...] = ()

    def path(self, mode: str) -> str:
        if mode == "stream":
            assert self.stream_path is not None
            return self.stream_path
        return self.json_path

    def body(self, mode: str) -> dict[str, Any]:
        if mode == "stream":
            assert self.stream_body is not None
            return self.stream_body
        return self.json_body

    def modes(self, wanted: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(m for m in wanted if m == "json" or self.stream_path is not None)

    def request_headers(self, key: str) -> dict[str, str]:
        auth = {"authorization": {"Authorization": f"Bearer {key}"}}.get(self.key_header,
                                                                          {self.key_header: key})
        return {"Content-Type": "application/json", **auth, **dict(self.headers)}


def _chat(model: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": PROMPT}]}


_MESSAGES = {"model": CLAUDE_MODEL, "max_tokens": 256, "messages": [{"role": "user", "content": PROMPT}]}
_RESPONSES = {"model": CHAT_MODEL, "input": PROMPT}
_GEMINI = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}
_GEMINI_BASE = f"/v1beta/models/{GEMINI_MODEL}"

ALL: dict[str, Dialect] = {d.name: d for d in (
    Dialect("chat", "OpenAI chat completions", "openai", "authorization",
            "/v1/chat/completions", _chat(CHAT_MODEL), "/v1/chat/completions",
            {**_chat(CHAT_MODEL), "stream": True}),
    Dialect("embeddings", "OpenAI embeddings", "openai", "authorization", "/v1/embeddings",
            {"model": EMBED_MODEL, "input": PROMPT}),
    Dialect("messages", "Anthropic Messages", "anthropic", "x-api-key", "/v1/messages", _MESSAGES,
            "/v1/messages", {**_MESSAGES, "stream": True}, b"event: message_stop",
            (("anthropic-version", "2023-06-01"),)),
    Dialect("responses", "OpenAI Responses", "openai", "authorization", "/v1/responses", _RESPONSES,
            "/v1/responses", {**_RESPONSES, "stream": True}, b"event: response.completed"),
    Dialect("gemini", "Gemini generateContent", "gemini", "x-goog-api-key",
            _GEMINI_BASE + ":generateContent", _GEMINI,
            _GEMINI_BASE + ":streamGenerateContent?alt=sse", _GEMINI, b'"finishReason"'),
    Dialect("chat-on-anthropic", "OpenAI chat client, Anthropic provider (translated)", "anthropic",
            "authorization", "/v1/chat/completions", _chat(CLAUDE_MODEL), "/v1/chat/completions",
            {**_chat(CLAUDE_MODEL), "stream": True}),
)}
DEFAULT = tuple(ALL)


def select(names: tuple[str, ...]) -> list[Dialect]:
    unknown = [n for n in names if n not in ALL]
    if unknown:
        raise ValueError(f"unknown dialects {unknown}; known: {', '.join(ALL)}")
    return [ALL[n] for n in names]

"""The answers of the benchmark's upstream in each dialect's exact wire format, built from
one list of reply tokens so every dialect streams the same number of content deltas.

- Anthropic Messages: `tests/fakes/anthropic_wire.py` (the tests' fake) frames them.
- OpenAI Responses: the `response` object and its named stream events, `response.created`
  through `response.completed` (which carries the usage); no `[DONE]`.
- Gemini `generateContent`: `candidates` and `usageMetadata`; streamed with `alt=sse` as
  `data:` events framed by CRLF pairs, as generativelanguage.googleapis.com sends them,
  the usage cumulative on every event and the finish reason on the last.
- Clock streams: chat completion chunks whose content is the upstream's CLOCK_MONOTONIC
  in nanoseconds when the event was written, so a client on the same machine can take
  each event's delay through a proxy (bench/longstreams.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson

from tests.fakes import anthropic_wire

JSON = dict[str, Any]
_WORDS = ("Hello", " from", " the", " benchmark", " upstream", ",", " one", " token", " at", " a",
          " time", ".")


def tokens(count: int) -> list[str]:
    """`count` reply tokens (a short English sentence, repeated)."""
    return [_WORDS[i % len(_WORDS)] for i in range(count)]


def prompt_tokens(body: bytes) -> int:
    """A deterministic prompt size: a token per 4 bytes of the request body."""
    return max(1, len(body) // 4)


# --- Anthropic Messages -------------------------------------------------------


def anthropic_message(ident: str, model: str, words: Sequence[str], input_tokens: int) -> bytes:
    usage = anthropic_wire.Usage(input_tokens, len(words))
    return orjson.dumps(anthropic_wire.message(
        ident=ident, model=model, content=[anthropic_wire.text_block("".join(words))],
        stop_reason="end_turn", usage=usage))


def anthropic_stream(ident: str, model: str, words: Sequence[str], input_tokens: int) -> list[bytes]:
    """message_start, content_block_start, a ping, one text_delta per token,
    content_block_stop, message_delta (cumulative output tokens), message_stop."""
    event = anthropic_wire.event
    usage = anthropic_wire.Usage(input_tokens, len(words))
    start: JSON = {"id": ident, "type": "message", "role": "assistant", "model": model, "content": [],
             "stop_reason": None, "stop_sequence": None,
             "usage": {**usage.as_json(), "output_tokens": 1}}
    events = [event("message_start", {"message": start}),
              event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
              event("ping", {})]
    events += [event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": w}})
               for w in words]
    events.append(event("content_block_stop", {"index": 0}))
    events.append(event("message_delta", {"delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                          "usage": {"output_tokens": len(words)}}))
    events.append(event("message_stop", {}))
    return events


# --- OpenAI Responses ---------------------------------------------------------


def _response(ident: str, model: str, status: str, output: list[JSON], usage: JSON | None,
              created: int) -> JSON:
    return {
        "id": ident, "object": "response", "created_at": created, "status": status,
        "background": False, "error": None, "incomplete_details": None, "instructions": None,
        "max_output_tokens": None, "max_tool_calls": None, "model": model, "output": output,
        "parallel_tool_calls": True, "previous_response_id": None, "prompt_cache_key": None,
        "reasoning": {"effort": None, "summary": None}, "safety_identifier": None,
        "service_tier": "default", "store": True, "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"}, "tool_choice": "auto",
        "tools": [], "top_logprobs": 0, "top_p": 1.0, "truncation": "disabled", "usage": usage,
        "user": None, "metadata": {},
    }


def _responses_usage(input_tokens: int, output_tokens: int) -> JSON:
    return {"input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens}


def _output_text(text: str) -> JSON:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _message_item(item_id: str, status: str, content: list[JSON]) -> JSON:
    return {"id": item_id, "type": "message", "status": status, "content": content,
            "role": "assistant"}


def responses_json(ident: str, item_id: str, model: str, words: Sequence[str],
                   input_tokens: int) -> bytes:
    item = _message_item(item_id, "completed", [_output_text("".join(words))])
    usage = _responses_usage(input_tokens, len(words))
    return orjson.dumps(_response(ident, model, "completed", [item], usage, int(time.time())))


def _named(kind: str, sequence: int, payload: JSON) -> bytes:
    data = orjson.dumps({"type": kind, "sequence_number": sequence, **payload})
    return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


def responses_stream(ident: str, item_id: str, model: str, words: Sequence[str],
                     input_tokens: int) -> list[bytes]:
    """created, in_progress, output_item.added, content_part.added, one output_text.delta
    per token, output_text.done, content_part.done, output_item.done, completed."""
    created = int(time.time())
    text = "".join(words)
    at = 0, 0
    part_ids = {"item_id": item_id, "output_index": at[0], "content_index": at[1]}
    pending = _response(ident, model, "in_progress", [], None, created)
    done_item = _message_item(item_id, "completed", [_output_text(text)])
    final = _response(ident, model, "completed", [done_item],
                      _responses_usage(input_tokens, len(words)), created)
    steps: list[tuple[str, JSON]] = [
        ("response.created", {"response": pending}),
        ("response.in_progress", {"response": pending}),
        ("response.output_item.added",
         {"output_index": 0, "item": _message_item(item_id, "in_progress", [])}),
        ("response.content_part.added", {**part_ids, "part": _output_text("")}),
    ]
    steps += [("response.output_text.delta", {**part_ids, "delta": w, "logprobs": []}) for w in words]
    steps += [
        ("response.output_text.done", {**part_ids, "text": text, "logprobs": []}),
        ("response.content_part.done", {**part_ids, "part": _output_text(text)}),
        ("response.output_item.done", {"output_index": 0, "item": done_item}),
        ("response.completed", {"response": final}),
    ]
    return [_named(kind, seq, payload) for seq, (kind, payload) in enumerate(steps)]


# --- Gemini -------------------------------------------------------------------


def _gemini_usage(prompt: int, candidates: int) -> JSON:
    return {"promptTokenCount": prompt, "candidatesTokenCount": candidates,
            "totalTokenCount": prompt + candidates,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}]}


def _gemini_chunk(text: str, finish: str | None, usage: JSON, model: str, ident: str) -> JSON:
    candidate: JSON = {"content": {"parts": [{"text": text}], "role": "model"}}
    if finish is not None:
        candidate["finishReason"] = finish
    candidate["index"] = 0
    return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model,
            "responseId": ident}


def gemini_json(ident: str, model: str, words: Sequence[str], input_tokens: int) -> bytes:
    usage = _gemini_usage(input_tokens, len(words))
    return orjson.dumps(_gemini_chunk("".join(words), "STOP", usage, model, ident))


def gemini_stream(ident: str, model: str, words: Sequence[str], input_tokens: int) -> list[bytes]:
    """One `data:` event per token, cumulative usage on each, finishReason on the last."""
    events = []
    for i, w in enumerate(words):
        finish = "STOP" if i == len(words) - 1 else None
        chunk = _gemini_chunk(w, finish, _gemini_usage(input_tokens, i + 1), model, ident)
        events.append(b"data: " + orjson.dumps(chunk) + b"\r\n\r\n")
    return events


# --- clock streams (chat completions) -----------------------------------------


def clock_chunk(ident: str, model: str, created: int, content: str, finish: str | None) -> bytes:
    delta: JSON = {"content": content} if finish is None else {}
    chunk = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
             "service_tier": "default", "system_fingerprint": "fp_bench",
             "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def parse_clock_model(model: str) -> tuple[int, float] | None:
    """`bench-clock-<events>x<ms>` (e.g. bench-clock-300x100): events and the gap in
    seconds between them; None for any other model."""
    if not model.startswith("bench-clock-"):
        return None
    count, _, gap = model.removeprefix("bench-clock-").partition("x")
    try:
        return max(1, int(count)), max(0.0, float(gap or 0) / 1000)
    except ValueError:
        return None

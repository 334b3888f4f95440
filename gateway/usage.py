"""Token accounting: the `Usage` every dialect's answer is read into, and OpenAI's
`usage` objects read into it. Pure, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens of one call. `input` includes cached tokens and cache writes; `output` includes
    reasoning. `cache_creation` counts every cache write, `cache_creation_1h` the part of it
    written with a one-hour lifetime (billed higher than the default five minutes). The
    audio and image counts are the parts of `input` and `output` in those modalities
    (priced apart where the model's price list does)."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_creation: int = 0
    reasoning: int = 0
    estimated: bool = False
    cache_creation_1h: int = 0
    input_audio: int = 0
    output_audio: int = 0
    input_image: int = 0
    output_image: int = 0

    @property
    def total(self) -> int:
        return self.input + self.output

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input + other.input,
            self.output + other.output,
            self.cache_read + other.cache_read,
            self.cache_creation + other.cache_creation,
            self.reasoning + other.reasoning,
            self.estimated or other.estimated,
            self.cache_creation_1h + other.cache_creation_1h,
            self.input_audio + other.input_audio,
            self.output_audio + other.output_audio,
            self.input_image + other.input_image,
            self.output_image + other.output_image,
        )


# The most tokens one count may hold: far above any real call, and small enough that a
# ledger row's counts (and their sums) stay inside 64-bit integers. An upstream may
# report up to 2^64 - 1 (the largest integer orjson reads), which SQLite cannot store.
MAX_TOKENS = 1 << 40


def _int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return min(value, MAX_TOKENS)
    return 0


def from_openai(usage: Any) -> Usage | None:
    """Read an OpenAI `usage` object (chat or embeddings) as parsed from JSON (plain dicts,
    checked as such: an ABC isinstance costs several times more); None when absent."""
    if not isinstance(usage, dict):
        return None
    prompt = _int(usage.get("prompt_tokens"))
    completion = _int(usage.get("completion_tokens"))
    prompt_details = usage.get("prompt_tokens_details")
    completion_details = usage.get("completion_tokens_details")
    cached = creation = audio_in = image_in = 0
    if isinstance(prompt_details, dict):
        cached = _int(prompt_details.get("cached_tokens"))
        creation = _int(prompt_details.get("cache_creation_tokens"))
        audio_in = _int(prompt_details.get("audio_tokens"))
        image_in = _int(prompt_details.get("image_tokens"))
    # DeepSeek reports cache hits at top level.
    cached = cached or _int(usage.get("prompt_cache_hit_tokens"))
    reasoning = audio_out = 0
    if isinstance(completion_details, dict):
        reasoning = _int(completion_details.get("reasoning_tokens"))
        audio_out = _int(completion_details.get("audio_tokens"))
    return Usage(
        input=prompt,
        output=completion,
        cache_read=min(cached, prompt),
        cache_creation=creation,
        reasoning=min(reasoning, completion),
        input_audio=min(audio_in, prompt),
        output_audio=min(audio_out, completion),
        input_image=min(image_in, prompt),
    )


def estimate_text_tokens(text: str) -> int:
    """Rough token count (about 4 characters a token), for estimates only."""
    return max(1, (len(text) + 3) // 4)


def estimate_prompt_tokens(body: Mapping[str, Any]) -> int:
    """Estimate a request's prompt tokens from its messages or embedding input."""
    total = 0
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in messages:
            total += 4
            if isinstance(message, dict):
                total += _content_tokens(message.get("content"))
        return total + 3
    return _content_tokens(body.get("input"))


def _content_tokens(content: Any) -> int:
    if isinstance(content, str):
        return estimate_text_tokens(content)
    if isinstance(content, list):
        total = 0
        for part in content:
            if isinstance(part, str):
                total += estimate_text_tokens(part)
            elif isinstance(part, dict):
                text = part.get("text")
                total += estimate_text_tokens(text) if isinstance(text, str) else 85
            elif isinstance(part, int):
                total += 1
        return total
    return 0

"""Reading Messages requests: what is validated (in Anthropic's wording), span
attributes and the prompt estimate."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.dialects.anthropic.messages import AnthropicCountTokens, AnthropicMessages
from gateway.dialects.anthropic.request import estimate_prompt_tokens, span_attributes
from gateway.errors import InvalidRequest
from gateway.telemetry import names as n

HELLO = [{"role": "user", "content": "Hello"}]
parse_messages = AnthropicMessages().parse
parse_count_tokens = AnthropicCountTokens().parse
# A request as Claude Code sends it (trimmed): system blocks with cache_control, tools,
# thinking, metadata, streaming.
CLAUDE_CODE = {
    "model": "claude-sonnet-4-5-20250929",
    "max_tokens": 32000,
    "stream": True,
    "system": [{"type": "text", "text": "You are Claude Code.",
                "cache_control": {"type": "ephemeral"}}],
    "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What does this repo do?",
         "cache_control": {"type": "ephemeral", "ttl": "1h"}}]}],
    "tools": [{"name": "Bash", "description": "Run a command",
               "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}],
    "metadata": {"user_id": "user_abc_account__session_123"},
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "temperature": 1,
}


def _raw(body: Any) -> bytes:
    return orjson.dumps(body)


def test_a_claude_code_request_parses() -> None:
    """A full Claude Code request is accepted and read as a streamed chat call."""
    request = parse_messages(_raw(CLAUDE_CODE))
    assert request.model == "claude-sonnet-4-5-20250929" and request.stream
    assert request.operation == "chat" and request.max_tokens == 32000
    assert request.body["thinking"] == CLAUDE_CODE["thinking"]


@pytest.mark.parametrize(("body", "message"), [
    ({"max_tokens": 5, "messages": HELLO}, "model: Field required"),
    ({"model": "", "max_tokens": 5, "messages": HELLO}, "model: Input should be a non-empty string"),
    ({"model": "m", "messages": HELLO}, "max_tokens: Field required"),
    ({"model": "m", "max_tokens": 0, "messages": HELLO}, "max_tokens: Input should be a valid integer"),
    ({"model": "m", "max_tokens": True, "messages": HELLO}, "max_tokens: Input should be a valid integer"),
    ({"model": "m", "max_tokens": 10**12, "messages": HELLO},
     "max_tokens: Input should be less than or equal to 1000000"),
    ({"model": "m", "max_tokens": 5}, "messages: Field required"),
    ({"model": "m", "max_tokens": 5, "messages": {}}, "messages: Input should be a valid list"),
    ({"model": "m", "max_tokens": 5, "messages": []}, "messages: at least one message"),
    ({"model": "m", "max_tokens": 5, "messages": [{"role": 3, "content": "x"}]},
     "messages.0.role: Input should be 'user' or 'assistant'"),
    ({"model": "m", "max_tokens": 5, "messages": [{"role": "user"}]}, "messages.0.content: Field required"),
    ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"text": "x"}]}]},
     "messages.0.content.0.type: Field required"),
    ({"model": "m", "max_tokens": 5, "messages": HELLO, "stream": "yes"}, "stream: Input should be"),
    ({"model": "m", "max_tokens": 5, "messages": HELLO, "system": [{"type": "image"}]}, "system:"),
    ({"model": "m", "max_tokens": 5, "messages": HELLO, "tools": [{"input_schema": {}}]},
     "tools.0.name: Field required"),
    ({"model": "m", "max_tokens": 5, "messages": HELLO, "stop_sequences": "END"}, "stop_sequences:"),
])
def test_invalid_requests_are_refused_in_anthropic_wording(body: dict[str, Any], message: str) -> None:
    """Each invalid request raises InvalidRequest (400) naming the field as Anthropic does."""
    with pytest.raises(InvalidRequest) as info:
        parse_messages(_raw(body))
    assert info.value.message.startswith(message) and info.value.status == 400


@pytest.mark.parametrize("raw", [b"", b"{not json", b"[1, 2]"])
def test_bodies_that_are_not_json_objects_are_refused(raw: bytes) -> None:
    """An empty, unparsable or non-object body is a 400 invalid request."""
    with pytest.raises(InvalidRequest):
        parse_messages(raw)


def test_count_tokens_needs_no_max_tokens() -> None:
    """count_tokens takes model and messages only, and is never a stream."""
    request = parse_count_tokens(_raw({"model": "m", "messages": HELLO}))
    assert request.model == "m" and not request.stream
    with pytest.raises(InvalidRequest):
        parse_count_tokens(_raw({"model": "m"}))


def test_span_attributes_follow_the_request() -> None:
    """max_tokens, sampling, stop sequences and streaming become gen_ai.request.* attributes."""
    body = {**CLAUDE_CODE, "top_p": 0.9, "top_k": 40, "stop_sequences": ["END"]}
    request = parse_messages(_raw(body))
    attrs = span_attributes(request.body, request.stream)
    assert attrs == {n.GEN_AI_REQUEST_MAX_TOKENS: 32000, n.GEN_AI_REQUEST_TEMPERATURE: 1,
                     n.GEN_AI_REQUEST_TOP_P: 0.9, n.GEN_AI_REQUEST_TOP_K: 40,
                     n.GEN_AI_REQUEST_STOP_SEQUENCES: ("END",), n.GEN_AI_REQUEST_STREAM: True}


def test_prompt_estimate_counts_system_messages_tools_and_images() -> None:
    """The estimate grows with the system prompt, each message, tool definitions and images."""
    base = estimate_prompt_tokens({"messages": HELLO})
    with_system = estimate_prompt_tokens({"messages": HELLO, "system": "x" * 400})
    assert with_system == base + 100
    with_tools = estimate_prompt_tokens({"messages": HELLO, "tools": CLAUDE_CODE["tools"]})
    assert with_tools > base
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA"}}
    with_image = estimate_prompt_tokens({"messages": [{"role": "user", "content": [image]}]})
    assert with_image >= 1600
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "y" * 40}
    assert estimate_prompt_tokens({"messages": [{"role": "user", "content": [result]}]}) == 4 + 10


def test_beta_roles_pass_to_the_upstream() -> None:
    """A mid-conversation system message (Claude Code sends one, under a beta) is accepted:
    the upstream, not the gateway, judges roles."""
    body = {"model": "m", "max_tokens": 5,
            "messages": [*HELLO, {"role": "system", "content": "Agent types: ..."}]}
    assert parse_messages(_raw(body)).body["messages"][1]["role"] == "system"

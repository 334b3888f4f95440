"""OpenAI chat completions <-> Anthropic Messages: requests, JSON answers and errors,
both ways. Streams are in `chat_messages_stream`.

An OpenAI client served by Anthropic: `chat_to_messages_request`, then the answer
back with `messages_to_chat_answer`. A Messages client served by an OpenAI-format
upstream: `messages_to_chat_request`, then `chat_to_messages_answer`.

Refused (400), having no meaning on the other side: from chat, `n` > 1, logprobs,
`logit_bias`, audio, predicted outputs, JSON response formats, non-zero frequency or
presence penalties, `reasoning_effort`, deprecated `functions`, non-function tools,
file ids and audio input; from Messages, `thinking` (enabled) and thinking blocks,
`top_k`, server tools (web search, code execution, ...), MCP servers, containers,
documents other than base64 PDFs and plain text, images inside tool results.
Dropped as harmless: `cache_control` hints, `seed`, `store`, chat `metadata`,
`service_tier`, message `name`s.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Final

import orjson

from gateway.dialects.anthropic.errors import read_error
from gateway.errors import InvalidRequest
from gateway.translate.chat_turns import CHAT_ONLY, TO_CHAT, append_turn, chat_messages, data_url, refuse

JSON = dict[str, Any]

# Anthropic requires max_tokens; a chat request may omit it.
DEFAULT_MAX_TOKENS: Final = 4096

FINISH_BY_STOP_REASON: Final[Mapping[str, str]] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
STOP_REASON_BY_FINISH: Final[Mapping[str, str]] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}

_TO_MESSAGES = "cannot be translated to the Anthropic Messages API"


def finish_reason(stop_reason: Any) -> str | None:
    if not isinstance(stop_reason, str):
        return None
    return FINISH_BY_STOP_REASON.get(stop_reason, "stop")


def stop_reason(finish: Any) -> str | None:
    if not isinstance(finish, str):
        return None
    return STOP_REASON_BY_FINISH.get(finish, "end_turn")


# --- an OpenAI chat client, an Anthropic upstream --------------------------------------

_CHAT_REFUSED: Final = (*CHAT_ONLY, ("reasoning_effort", "'reasoning_effort'"))


def chat_to_messages_request(body: Mapping[str, Any]) -> JSON:
    """A chat completions request as a Messages request."""
    _refuse_chat_only(body)
    system: list[JSON] = []
    messages: list[JSON] = []
    for index, role, message in chat_messages(body, _TO_MESSAGES):
        if role == "system":
            system.extend(_text_blocks(message.get("content"), f"messages[{index}].content"))
        elif role == "user":
            _append(messages, "user", _user_blocks(message.get("content"), index))
        elif role == "assistant":
            _append(messages, "assistant", _assistant_blocks(message, index))
        else:
            _append(messages, "user", [_tool_result(message, index)])
    out: JSON = {"model": body.get("model"), "messages": messages}
    if system:
        out["system"] = system
    max_tokens = _first_int(body, "max_completion_tokens", "max_tokens")
    out["max_tokens"] = max_tokens or DEFAULT_MAX_TOKENS
    for key in ("temperature", "top_p", "stream"):
        if body.get(key) is not None:
            out[key] = body[key]
    stop = body.get("stop")
    if isinstance(stop, str):
        out["stop_sequences"] = [stop]
    elif isinstance(stop, list) and stop:
        out["stop_sequences"] = stop
    tools = body.get("tools")
    if tools:
        out["tools"] = [_tool_to_messages(tool, i) for i, tool in enumerate(tools)]
    choice = _tool_choice_to_messages(body.get("tool_choice"), body.get("parallel_tool_calls"))
    if choice is not None:
        out["tool_choice"] = choice
    user = body.get("user") or body.get("safety_identifier")
    if isinstance(user, str) and user:
        out["metadata"] = {"user_id": user}
    return out


def _refuse_chat_only(body: Mapping[str, Any]) -> None:
    n_ = body.get("n")
    if isinstance(n_, int) and n_ > 1:
        raise refuse("More than one choice ('n' > 1)", "n", _TO_MESSAGES)
    if body.get("logprobs") or body.get("top_logprobs"):
        raise refuse("Log probabilities ('logprobs')", "logprobs", _TO_MESSAGES)
    for key, what in _CHAT_REFUSED:
        if body.get(key):
            raise refuse(what, key, _TO_MESSAGES)
    for key in ("frequency_penalty", "presence_penalty"):
        if body.get(key):
            raise refuse(f"A non-zero '{key}'", key, _TO_MESSAGES)
    modalities = body.get("modalities")
    if isinstance(modalities, list) and any(m != "text" for m in modalities):
        raise refuse("Output modalities other than text", "modalities", _TO_MESSAGES)
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") not in (None, "text"):
        raise refuse(f"response_format {fmt.get('type')!r}", "response_format", _TO_MESSAGES)


def _append(messages: list[JSON], role: str, blocks: list[JSON]) -> None:
    append_turn(messages, role, blocks, "content")


def _text_blocks(content: Any, where: str) -> list[JSON]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if isinstance(content, list):
        blocks = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                raise refuse(f"A non-text part in {where}", "messages", _TO_MESSAGES)
            blocks.append({"type": "text", "text": part.get("text", "")})
        return blocks
    if content is None:
        return []
    raise InvalidRequest(f"{where} must be a string or an array of parts", param="messages")


def _user_blocks(content: Any, index: int) -> list[JSON]:
    if not isinstance(content, list):
        return _text_blocks(content, f"messages[{index}].content")
    blocks: list[JSON] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif kind == "image_url":
            blocks.append(_image_to_messages(part.get("image_url"), index))
        elif kind == "file":
            blocks.append(_file_to_messages(part.get("file"), index))
        else:
            raise refuse(f"A content part of type {kind!r}", "messages", _TO_MESSAGES)
    return blocks


def _image_to_messages(image: Any, index: int) -> JSON:
    url = image.get("url") if isinstance(image, dict) else None
    if not isinstance(url, str):
        raise InvalidRequest(f"messages[{index}]: image_url.url is required", param="messages")
    inline = data_url(url)
    if inline is not None:
        return {"type": "image",
                "source": {"type": "base64", "media_type": inline[0], "data": inline[1]}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _file_to_messages(file: Any, index: int) -> JSON:
    data = file.get("file_data") if isinstance(file, dict) else None
    inline = data_url(data) if isinstance(data, str) else None
    if inline is None or inline[0] != "application/pdf":
        raise refuse(f"messages[{index}]: a file other than an inline PDF ('file_data')",
                      "messages", _TO_MESSAGES)
    return {"type": "document",
            "source": {"type": "base64", "media_type": inline[0], "data": inline[1]}}


def _assistant_blocks(message: Mapping[str, Any], index: int) -> list[JSON]:
    blocks = _text_blocks(message.get("content"), f"messages[{index}].content")
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or call.get("type", "function") != "function":
            raise refuse("A tool call that is not a function call", "messages", _TO_MESSAGES)
        try:
            arguments = orjson.loads(function.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            raise InvalidRequest(f"messages[{index}]: tool call arguments must be JSON",
                                 param="messages") from None
        blocks.append({"type": "tool_use", "id": call.get("id"), "name": function.get("name"),
                       "input": arguments if isinstance(arguments, dict) else {}})
    return blocks


def _tool_result(message: Mapping[str, Any], index: int) -> JSON:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str):
        raise InvalidRequest(f"messages[{index}]: tool_call_id is required", param="messages")
    content = message.get("content")
    result: Any = content if isinstance(content, str) else _text_blocks(
        content, f"messages[{index}].content")
    return {"type": "tool_result", "tool_use_id": call_id, "content": result}


def _tool_to_messages(tool: Any, index: int) -> JSON:
    function = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(function, dict) or tool.get("type") != "function":
        raise refuse(f"tools[{index}]: a tool that is not a function", "tools", _TO_MESSAGES)
    out: JSON = {"name": function.get("name"),
                 "input_schema": function.get("parameters") or {"type": "object", "properties": {}}}
    if function.get("description"):
        out["description"] = function["description"]
    return out


def _tool_choice_to_messages(choice: Any, parallel: Any) -> JSON | None:
    out: JSON | None
    if choice is None:
        out = None
    elif choice == "auto":
        out = {"type": "auto"}
    elif choice == "none":
        out = {"type": "none"}
    elif choice == "required":
        out = {"type": "any"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        out = {"type": "tool", "name": choice["function"].get("name")}
    else:
        raise refuse(f"tool_choice {choice!r}", "tool_choice", _TO_MESSAGES)
    if parallel is False and (out is None or out["type"] != "none"):
        out = {"type": "auto"} if out is None else out
        out["disable_parallel_tool_use"] = True
    return out


def _first_int(body: Mapping[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def messages_to_chat_answer(message: Mapping[str, Any], *, model: str | None = None,
                            created: int | None = None) -> JSON:
    """A Messages answer as a chat completion (thinking blocks are not shown: chat has
    no place for them)."""
    texts: list[str] = []
    calls: list[JSON] = []
    for block in message.get("content") or ():
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            calls.append({"id": block.get("id"), "type": "function",
                          "function": {"name": block.get("name"),
                                       "arguments": orjson.dumps(block.get("input", {})).decode()}})
    reply: JSON = {"role": "assistant", "content": "".join(texts) if texts or not calls else None,
                   "refusal": None, "annotations": []}
    if calls:
        reply["tool_calls"] = calls
    out: JSON = {
        "id": message.get("id"),
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": model or message.get("model"),
        "choices": [{"index": 0, "message": reply, "logprobs": None,
                     "finish_reason": finish_reason(message.get("stop_reason")) or "stop"}],
    }
    usage = chat_usage(message.get("usage"))
    if usage is not None:
        out["usage"] = usage
    return out


def chat_usage(usage: Any) -> JSON | None:
    """Anthropic usage in chat's shape: prompt tokens include cache reads and writes."""
    if not isinstance(usage, dict):
        return None
    read = _count(usage.get("cache_read_input_tokens"))
    written = _count(usage.get("cache_creation_input_tokens"))
    prompt = _count(usage.get("input_tokens")) + read + written
    completion = _count(usage.get("output_tokens"))
    details = usage.get("output_tokens_details")
    thinking = _count(details.get("thinking_tokens")) if isinstance(details, dict) else 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": read, "cache_write_tokens": written},
        "completion_tokens_details": {"reasoning_tokens": thinking},
    }


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def messages_error_to_chat(raw: bytes) -> bytes:
    """An Anthropic error body in OpenAI's shape (type kept, so `overloaded_error` says
    what happened); other bodies as they are."""
    try:
        parsed = read_error(orjson.loads(raw))
    except orjson.JSONDecodeError:
        return raw
    if parsed is None:
        return raw
    kind, message = parsed
    return orjson.dumps({"error": {"message": message, "type": kind, "param": None,
                                   "code": kind}})


# --- an Anthropic Messages client, an OpenAI-format upstream ----------------------------

_MESSAGES_REFUSED: Final = (
    ("top_k", "'top_k'"),
    ("mcp_servers", "MCP servers ('mcp_servers')"),
    ("container", "A container ('container')"),
    ("context_management", "'context_management'"),
)


def messages_to_chat_request(body: Mapping[str, Any]) -> JSON:
    """A Messages request as a chat completions request (usage asked for in streams)."""
    _refuse_messages_only(body)
    messages: list[JSON] = []
    system = body.get("system")
    if isinstance(system, str) and system:
        messages.append({"role": "system", "content": system})
    elif isinstance(system, list) and system:
        messages.append({"role": "system",
                         "content": "\n\n".join(str(b.get("text", "")) for b in system)})
    for index, message in enumerate(body.get("messages") or ()):
        role = message.get("role")
        if role == "assistant":
            messages.append(_assistant_to_chat(message.get("content"), index))
        elif role == "system":  # a mid-conversation system message (a beta)
            messages.append({"role": "system",
                             "content": _tool_result_text(message.get("content"), index)})
        else:
            messages.extend(_user_to_chat(message.get("content"), index))
    out: JSON = {"model": body.get("model"), "messages": messages}
    if body.get("max_tokens") is not None:
        out["max_tokens"] = body["max_tokens"]
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            out[key] = body[key]
    if body.get("stop_sequences"):
        out["stop"] = body["stop_sequences"]
    if body.get("stream"):
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    tools = body.get("tools")
    if tools:
        out["tools"] = [_tool_to_chat(tool, i) for i, tool in enumerate(tools)]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        out["tool_choice"] = _tool_choice_to_chat(choice)
        if choice.get("disable_parallel_tool_use") is True and tools:
            out["parallel_tool_calls"] = False
    metadata = body.get("metadata")
    user = metadata.get("user_id") if isinstance(metadata, dict) else None
    if isinstance(user, str) and user:
        out["user"] = user
    return out


def _refuse_messages_only(body: Mapping[str, Any]) -> None:
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") not in (None, "disabled"):
        raise refuse("Extended thinking ('thinking')", "thinking", TO_CHAT)
    for key, what in _MESSAGES_REFUSED:
        if body.get(key) is not None:
            raise refuse(what, key, TO_CHAT)


def _user_to_chat(content: Any, index: int) -> list[JSON]:
    """One user turn: its tool results as `tool` messages first, then the rest."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    results: list[JSON] = []
    parts: list[JSON] = []
    for block in content or ():
        kind = block.get("type")
        if kind == "tool_result":
            results.append({"role": "tool", "tool_call_id": block.get("tool_use_id"),
                            "content": _tool_result_text(block.get("content"), index)})
        elif kind == "text":
            parts.append({"type": "text", "text": block.get("text", "")})
        elif kind == "image":
            parts.append(_image_to_chat(block.get("source"), index))
        elif kind == "document":
            parts.append(_document_to_chat(block.get("source"), index))
        else:
            raise _thinking_or_block(kind, index)
    if parts:
        if all(p["type"] == "text" for p in parts):
            results.append({"role": "user", "content": "\n\n".join(p["text"] for p in parts)})
        else:
            results.append({"role": "user", "content": parts})
    return results


def _thinking_or_block(kind: Any, index: int) -> InvalidRequest:
    if kind in ("thinking", "redacted_thinking"):
        return refuse(f"messages.{index}: a {kind} block", "messages", TO_CHAT)
    return refuse(f"messages.{index}: a content block of type {kind!r}", "messages", TO_CHAT)


def _tool_result_text(content: Any, index: int) -> str:
    if isinstance(content, str):
        return content
    texts = []
    for block in content or ():
        if block.get("type") != "text":
            raise refuse(f"messages.{index}: a tool result with {block.get('type')!r} content",
                          "messages", TO_CHAT)
        texts.append(str(block.get("text", "")))
    return "\n\n".join(texts)


def _image_to_chat(source: Any, index: int) -> JSON:
    if isinstance(source, dict) and source.get("type") == "base64":
        url = f"data:{source.get('media_type')};base64,{source.get('data')}"
    elif isinstance(source, dict) and source.get("type") == "url":
        url = str(source.get("url"))
    else:
        raise refuse(f"messages.{index}: an image source other than base64 or url",
                      "messages", TO_CHAT)
    return {"type": "image_url", "image_url": {"url": url}}


def _document_to_chat(source: Any, index: int) -> JSON:
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64" and source.get("media_type") == "application/pdf":
        return {"type": "file", "file": {"filename": "document.pdf",
                                         "file_data": f"data:application/pdf;base64,"
                                                      f"{source.get('data')}"}}
    if kind == "text":
        return {"type": "text", "text": str(source.get("data", ""))}
    raise refuse(f"messages.{index}: a document other than a base64 PDF or plain text",
                  "messages", TO_CHAT)


def _assistant_to_chat(content: Any, index: int) -> JSON:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    calls: list[JSON] = []
    for block in content or ():
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            calls.append({"id": block.get("id"), "type": "function",
                          "function": {"name": block.get("name"),
                                       "arguments": orjson.dumps(block.get("input", {})).decode()}})
        else:
            raise _thinking_or_block(kind, index)
    out: JSON = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        out["tool_calls"] = calls
    return out


def _tool_to_chat(tool: Any, index: int) -> JSON:
    if not isinstance(tool, dict) or tool.get("type") not in (None, "custom"):
        kind = tool.get("type") if isinstance(tool, dict) else None
        raise refuse(f"tools.{index}: the server tool {kind!r}", "tools", TO_CHAT)
    function: JSON = {"name": tool.get("name"),
                      "parameters": tool.get("input_schema") or {"type": "object", "properties": {}}}
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _tool_choice_to_chat(choice: Mapping[str, Any]) -> Any:
    kind = choice.get("type")
    if kind == "auto":
        return "auto"
    if kind == "any":
        return "required"
    if kind == "none":
        return "none"
    if kind == "tool":
        return {"type": "function", "function": {"name": choice.get("name")}}
    raise refuse(f"tool_choice {kind!r}", "tool_choice", TO_CHAT)


def _first_choice(completion: Mapping[str, Any]) -> Any:
    choices = completion.get("choices")
    return choices[0] if isinstance(choices, list) and choices else {}


def chat_to_messages_answer(completion: Mapping[str, Any], *, model: str | None = None) -> JSON:
    """A chat completion (its first choice) as a Messages answer."""
    choice = _first_choice(completion)
    message = choice.get("message") if isinstance(choice, dict) else None
    message = message if isinstance(message, dict) else {}
    content: list[JSON] = []
    text = message.get("content")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            content.append({"type": "tool_use", "id": call.get("id"), "name": function.get("name"),
                            "input": tool_input(function.get("arguments"))})
    return {
        "id": completion.get("id"),
        "type": "message",
        "role": "assistant",
        "model": model or completion.get("model"),
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason") if isinstance(choice, dict)
                                   else None) or "end_turn",
        "stop_sequence": None,
        "usage": messages_usage(completion.get("usage")),
    }


def tool_input(arguments: Any) -> Any:
    """A tool call's JSON arguments as a tool_use block's input (a model may have written
    invalid JSON: it is kept as the raw string under `_raw` rather than lost)."""
    if not isinstance(arguments, str) or not arguments:
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {"_raw": arguments}
    return value if isinstance(value, dict) else {"_raw": arguments}


def messages_usage(usage: Any) -> JSON:
    """Chat usage in Anthropic's shape: input_tokens without the cached part."""
    if not isinstance(usage, dict):
        return {"input_tokens": 0, "output_tokens": 0}
    prompt = _count(usage.get("prompt_tokens"))
    details = usage.get("prompt_tokens_details")
    cached = _count(details.get("cached_tokens")) if isinstance(details, dict) else 0
    cached = min(cached or _count(usage.get("prompt_cache_hit_tokens")), prompt)
    return {"input_tokens": prompt - cached, "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": cached,
            "output_tokens": _count(usage.get("completion_tokens"))}

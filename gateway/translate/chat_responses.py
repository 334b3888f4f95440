"""OpenAI chat completions <-> the Responses API: requests and JSON answers, both ways.
Streams are in `chat_responses_stream`.

A Responses client served by a chat-only upstream: `responses_to_chat_request`, then
the answer back with `chat_to_responses_answer`. A chat client served by a
Responses-only upstream: `chat_to_responses_request`, then `responses_to_chat_answer`.

Refused (400), having no meaning on the other side: from Responses, built-in tools
(`web_search`, `file_search`, `code_interpreter`, `computer_use`, MCP, ...), server-side
state (`previous_response_id`, `conversation`, `background`), item references, file
inputs; from chat, `n` > 1, stop sequences, logprobs, `logit_bias`, audio and predicted
outputs. Dropped as harmless: reasoning items given back as input, `include`,
`truncation`, `store` and `metadata` (the translated call keeps nothing upstream).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Final

from gateway.dialects.openai_responses.events import ident, skeleton
from gateway.dialects.openai_responses.events import usage as responses_usage
from gateway.errors import InvalidRequest

JSON = dict[str, Any]

# Fields that mean the same on both sides, copied as they are.
_SAME: Final = ("temperature", "top_p", "parallel_tool_calls", "user", "service_tier",
                "prompt_cache_key", "safety_identifier", "top_logprobs")
_STATEFUL: Final = ("previous_response_id", "conversation")


def _refuse(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param, code="unsupported_parameter")


# --- a Responses client, a chat upstream ------------------------------------------------

def responses_to_chat_request(body: Mapping[str, Any]) -> JSON:
    """A Responses request as chat completions (raises InvalidRequest for what has no
    meaning there)."""
    for key in _STATEFUL:
        if body.get(key):
            raise _refuse(f"'{key}' needs a provider that keeps conversation state; this "
                          "model's provider speaks only chat completions.", key)
    if body.get("background"):
        raise _refuse("'background' needs a provider that runs responses in the background; "
                      "this model's provider speaks only chat completions.", "background")
    chat: JSON = {"model": body.get("model"), "messages": _messages(body)}
    for key in _SAME:
        if body.get(key) is not None:
            chat[key] = body[key]
    if body.get("max_output_tokens") is not None:
        chat["max_completion_tokens"] = body["max_output_tokens"]
    tools = body.get("tools")
    if tools:
        chat["tools"] = [_chat_tool(tool, i) for i, tool in enumerate(tools)]
    choice = body.get("tool_choice")
    if choice is not None:
        chat["tool_choice"] = _chat_tool_choice(choice)
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and reasoning.get("effort"):
        chat["reasoning_effort"] = reasoning["effort"]
    text = body.get("text")
    fmt = text.get("format") if isinstance(text, dict) else None
    if isinstance(fmt, dict) and fmt.get("type") in ("json_schema", "json_object"):
        chat["response_format"] = _chat_format(fmt)
    if body.get("stream"):
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat


def _messages(body: Mapping[str, Any]) -> list[JSON]:
    messages: list[JSON] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.append({"role": "system", "content": instructions})
    value = body.get("input")
    if isinstance(value, str):
        messages.append({"role": "user", "content": value})
        return messages
    for index, item in enumerate(value if isinstance(value, list) else ()):
        if not isinstance(item, dict):
            raise _refuse("Each input item must be an object.", f"input[{index}]")
        _add_item(messages, item, index)
    return messages


def _add_item(messages: list[JSON], item: JSON, index: int) -> None:
    kind = item.get("type", "message")
    if kind == "message":
        role = item.get("role")
        content = item.get("content")
        if isinstance(content, list):
            content = [_chat_part(part, index) for part in content]
            if role == "assistant" or all(p["type"] == "text" for p in content):
                content = "".join(p.get("text", "") for p in content)
        messages.append({"role": role, "content": content})
    elif kind == "function_call":
        call = {"id": item.get("call_id"), "type": "function",
                "function": {"name": item.get("name"), "arguments": item.get("arguments", "")}}
        last = messages[-1] if messages else None
        if last is not None and last["role"] == "assistant" and "tool_calls" in last:
            last["tool_calls"].append(call)
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif kind == "function_call_output":
        output = item.get("output")
        if isinstance(output, list):
            output = "".join(str(p.get("text", "")) for p in output if isinstance(p, dict))
        messages.append({"role": "tool", "tool_call_id": item.get("call_id"),
                         "content": output if isinstance(output, str) else ""})
    elif kind != "reasoning":  # the model's own reasoning, given back: chat has no place for it
        raise _refuse(f"Input items of type '{kind}' need a provider that speaks the "
                      "Responses API; this model's provider speaks only chat completions.",
                      f"input[{index}]")


def _chat_part(part: Any, index: int) -> JSON:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": str(part.get("text", ""))}
    if kind == "input_image" and isinstance(part.get("image_url"), str):
        return {"type": "image_url", "image_url": {"url": part["image_url"],
                                                   "detail": part.get("detail", "auto")}}
    raise _refuse(f"Content of type '{kind}' cannot be sent to a chat completions provider.",
                  f"input[{index}].content")


def _chat_tool(tool: Any, index: int) -> JSON:
    if not isinstance(tool, dict) or tool.get("type") != "function":
        kind = tool.get("type") if isinstance(tool, dict) else None
        raise _refuse(f"The built-in tool '{kind}' needs a provider that speaks the Responses "
                      "API; this model's provider speaks only chat completions.",
                      f"tools[{index}]")
    function = {"name": tool.get("name"), "parameters": tool.get("parameters") or {}}
    if tool.get("description") is not None:
        function["description"] = tool["description"]
    if tool.get("strict") is not None:
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def _chat_tool_choice(choice: Any) -> Any:
    if isinstance(choice, str):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    raise _refuse("This 'tool_choice' names a built-in tool, which a chat completions "
                  "provider does not have.", "tool_choice")


def _chat_format(fmt: JSON) -> JSON:
    if fmt.get("type") == "json_object":
        return {"type": "json_object"}
    schema = {key: fmt[key] for key in ("name", "schema", "strict", "description") if key in fmt}
    return {"type": "json_schema", "json_schema": schema}


def chat_usage_to_responses(usage: Any) -> JSON | None:
    """A chat `usage` object in the Responses API's words."""
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("prompt_tokens_details")
    completion = usage.get("completion_tokens_details")
    prompt = prompt if isinstance(prompt, dict) else {}
    completion = completion if isinstance(completion, dict) else {}
    return responses_usage(
        int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0),
        int(prompt.get("cached_tokens") or 0), int(completion.get("reasoning_tokens") or 0),
        int(prompt.get("cache_creation_tokens") or 0))


INCOMPLETE_BY_FINISH: Final[Mapping[str, str]] = {"length": "max_output_tokens",
                                                  "content_filter": "content_filter"}


def chat_to_responses_answer(payload: Mapping[str, Any], request: Mapping[str, Any],
                             model: str | None = None) -> JSON:
    """A chat completion as the `response` object a Responses client expects."""
    created = payload.get("created")
    response = skeleton(dict(request), str(model or payload.get("model") or ""),
                        created if isinstance(created, int) else int(time.time()),
                        response_id=f"resp_{payload.get('id') or ident('chat')[5:]}")
    choices = payload.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    message = choice.get("message") if isinstance(choice, dict) else None
    message = message if isinstance(message, dict) else {}
    output: list[JSON] = []
    text, refusal = message.get("content"), message.get("refusal")
    if text or refusal:
        part = ({"type": "output_text", "text": text, "annotations": [], "logprobs": []} if text
                else {"type": "refusal", "refusal": refusal})
        output.append({"id": ident("msg"), "type": "message", "status": "completed",
                       "role": "assistant", "content": [part]})
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            output.append({"id": ident("fc"), "type": "function_call", "status": "completed",
                           "arguments": str(function.get("arguments") or ""),
                           "call_id": str(call.get("id") or ident("call")),
                           "name": str(function.get("name") or "")})
    response["output"] = output
    reason = INCOMPLETE_BY_FINISH.get(str(choice.get("finish_reason")))
    response["status"] = "incomplete" if reason else "completed"
    if reason:
        response["incomplete_details"] = {"reason": reason}
    response["usage"] = chat_usage_to_responses(payload.get("usage"))
    return response


# --- a chat client, a Responses upstream ------------------------------------------------

def chat_to_responses_request(body: Mapping[str, Any]) -> JSON:
    """A chat completions request as a Responses request that stores nothing upstream."""
    for key in ("logit_bias", "audio", "prediction", "functions"):
        if body.get(key):
            raise _refuse(f"'{key}' has no equivalent in the Responses API.", key)
    if body.get("stop"):
        raise _refuse("Stop sequences have no equivalent in the Responses API.", "stop")
    if isinstance(body.get("n"), int) and body["n"] > 1:
        raise _refuse("The Responses API answers one choice; 'n' must be 1.", "n")
    out: JSON = {"model": body.get("model"), "input": [], "store": False}
    for message in body.get("messages") or ():
        if isinstance(message, dict):
            out["input"].extend(_items(message))
    for key in _SAME:
        if body.get(key) is not None:
            out[key] = body[key]
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is not None:
        out["max_output_tokens"] = limit
    tools = body.get("tools")
    if tools:
        out["tools"] = [_flat_tool(tool, i) for i, tool in enumerate(tools)]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        function = choice.get("function")
        out["tool_choice"] = {"type": "function",
                              "name": function.get("name") if isinstance(function, dict) else None}
    elif choice is not None:
        out["tool_choice"] = choice
    if body.get("reasoning_effort"):
        out["reasoning"] = {"effort": body["reasoning_effort"]}
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = fmt.get("json_schema")
        out["text"] = {"format": {"type": "json_schema",
                                  **(schema if isinstance(schema, dict) else {})}}
    elif isinstance(fmt, dict) and fmt.get("type") == "json_object":
        out["text"] = {"format": {"type": "json_object"}}
    if body.get("stream"):
        out["stream"] = True
    return out


def _items(message: JSON) -> list[JSON]:
    role = message.get("role")
    if role == "tool":
        return [{"type": "function_call_output", "call_id": message.get("tool_call_id"),
                 "output": _text(message.get("content"))}]
    items: list[JSON] = []
    content = message.get("content")
    if content:
        kind = "output_text" if role == "assistant" else "input_text"
        parts = content if isinstance(content, list) else [{"type": "text", "text": content}]
        items.append({"type": "message", "role": role,
                      "content": [_responses_part(p, kind) for p in parts]})
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            items.append({"type": "function_call", "call_id": call.get("id"),
                          "name": function.get("name"),
                          "arguments": function.get("arguments", "")})
    return items


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def _responses_part(part: Any, text_kind: str) -> JSON:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text":
        return {"type": text_kind, "text": str(part.get("text", ""))}
    if kind == "image_url":
        image = part.get("image_url")
        image = image if isinstance(image, dict) else {}
        return {"type": "input_image", "image_url": image.get("url"),
                "detail": image.get("detail", "auto")}
    raise _refuse(f"Content of type '{kind}' has no equivalent in the Responses API.",
                  "messages")


def _flat_tool(tool: Any, index: int) -> JSON:
    function = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(function, dict) or tool.get("type") != "function":
        raise _refuse("Only function tools can be sent to a Responses provider.",
                      f"tools[{index}]")
    flat: JSON = {"type": "function", "name": function.get("name"),
                  "parameters": function.get("parameters") or {}}
    for key in ("description", "strict"):
        if function.get(key) is not None:
            flat[key] = function[key]
    return flat


FINISH_BY_INCOMPLETE: Final[Mapping[str, str]] = {"max_output_tokens": "length",
                                                  "content_filter": "content_filter"}


def responses_usage_to_chat(usage: Any) -> JSON | None:
    """A Responses `usage` object in chat completions' words."""
    if not isinstance(usage, dict):
        return None
    inputs = usage.get("input_tokens_details")
    outputs = usage.get("output_tokens_details")
    prompt, completion = int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": int(
                (inputs or {}).get("cached_tokens") or 0) if isinstance(inputs, dict) else 0},
            "completion_tokens_details": {"reasoning_tokens": int(
                (outputs or {}).get("reasoning_tokens") or 0) if isinstance(outputs, dict) else 0}}


def chat_finish_reason(response: Mapping[str, Any]) -> str:
    """The chat finish reason of a `response` object."""
    details = response.get("incomplete_details")
    reason = details.get("reason") if isinstance(details, dict) else None
    if response.get("status") == "incomplete":
        return FINISH_BY_INCOMPLETE.get(str(reason), "length")
    output = response.get("output")
    calls = isinstance(output, list) and any(
        isinstance(i, dict) and i.get("type") == "function_call" for i in output)
    return "tool_calls" if calls else "stop"


def responses_to_chat_answer(response: Mapping[str, Any], model: str | None = None) -> JSON:
    """A `response` object as the chat completion a chat client expects."""
    texts: list[str] = []
    calls: list[JSON] = []
    output = response.get("output")
    for item in output if isinstance(output, list) else ():
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message":
            texts.extend(str(p.get("text", "")) for p in item.get("content") or ()
                         if isinstance(p, dict) and p.get("type") == "output_text")
        elif item.get("type") == "function_call":
            calls.append({"id": item.get("call_id"), "type": "function",
                          "function": {"name": item.get("name"),
                                       "arguments": item.get("arguments", "")}})
    message: JSON = {"role": "assistant", "content": "".join(texts) if texts or not calls else None,
                     "refusal": None}
    if calls:
        message["tool_calls"] = calls
    created = response.get("created_at")
    answer: JSON = {
        "id": f"chatcmpl-{str(response.get('id', ''))[5:] or ident('x')[2:]}",
        "object": "chat.completion",
        "created": created if isinstance(created, int) else int(time.time()),
        "model": model or response.get("model"),
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": chat_finish_reason(response)}],
    }
    usage = responses_usage_to_chat(response.get("usage"))
    if usage is not None:
        answer["usage"] = usage
    return answer

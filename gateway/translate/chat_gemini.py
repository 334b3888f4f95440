"""OpenAI chat completions <-> Gemini generateContent: requests and JSON answers, both
ways. Streams are in `chat_gemini_stream`.

An OpenAI client served by Gemini: `chat_to_gemini_request`, then the answer back with
`gemini_to_chat_answer`. A Gemini client served by an OpenAI-format upstream:
`gemini_to_chat_request`, then `chat_to_gemini_answer`.

Mapped: text, images as data URLs / `inlineData`, the system prompt, function tools
(declared with `parametersJsonSchema`, the JSON Schema field) and their calls and
results, `tool_choice` / `functionCallingConfig`, temperature, top_p, max output
tokens, stop sequences, candidate count, seed, penalties, JSON output, finish reasons
and usage. Refused (400), having no meaning on the other side: from chat, audio,
logprobs, `logit_bias`, predicted outputs, non-function tools; from Gemini, built-in
tools (Google Search, code execution, URL context), `cachedContent`, file parts, and
`thinkingConfig` other than switching it off. Dropped as harmless: safety settings
and chat's `store`, `metadata`, `user`, `service_tier`, `reasoning_effort`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any, Final

import orjson

from gateway.errors import InvalidRequest
from gateway.translate.chat_messages import tool_input
from gateway.translate.chat_turns import CHAT_ONLY, TO_CHAT, append_turn, chat_messages, data_url, refuse

JSON = dict[str, Any]

FINISH_BY_GEMINI: Final[Mapping[str, str]] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}
GEMINI_BY_FINISH: Final[Mapping[str, str]] = {
    "stop": "STOP",
    "length": "MAX_TOKENS",
    "tool_calls": "STOP",
    "function_call": "STOP",
    "content_filter": "SAFETY",
}

_TO_GEMINI = "cannot be translated to Gemini's generateContent API"


def finish_reason(reason: Any, called: bool) -> str | None:
    """Chat's finish reason for a Gemini candidate's (a function call stops as tool_calls)."""
    if not isinstance(reason, str):
        return None
    if called and reason == "STOP":
        return "tool_calls"
    return FINISH_BY_GEMINI.get(reason, "stop")


# --- an OpenAI chat client, a Gemini upstream -----------------------------------------

_CONFIG_FROM_CHAT: Final = (
    ("temperature", "temperature"), ("top_p", "topP"), ("seed", "seed"),
    ("presence_penalty", "presencePenalty"), ("frequency_penalty", "frequencyPenalty"),
)


def chat_to_gemini_request(body: Mapping[str, Any]) -> JSON:
    """A chat completions request as a generateContent request (the model goes in the URL)."""
    for key, what in CHAT_ONLY:
        if body.get(key) is not None:
            raise refuse(what, key, _TO_GEMINI)
    if body.get("logprobs") or body.get("top_logprobs"):
        raise refuse("'logprobs'", "logprobs", _TO_GEMINI)
    system: list[JSON] = []
    contents: list[JSON] = []
    names: dict[str, str] = {}  # tool call id -> function name, for the results
    for index, role, message in chat_messages(body, _TO_GEMINI):
        if role == "system":
            system.extend(_text_parts(message.get("content"), index))
        elif role == "user":
            _append(contents, "user", _user_parts(message.get("content"), index))
        elif role == "assistant":
            _append(contents, "model", _assistant_parts(message, index, names))
        else:
            call_id = str(message.get("tool_call_id", ""))
            result = "".join(p["text"] for p in _text_parts(message.get("content"), index))
            _append(contents, "user", [{"functionResponse": {
                "name": names.get(call_id, call_id), "response": {"content": result}}}])
    out: JSON = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": system}
    tools = body.get("tools")
    if tools:
        out["tools"] = [{"functionDeclarations": [_declaration(t, i)
                                                  for i, t in enumerate(tools)]}]
    choice = _tool_choice_to_gemini(body.get("tool_choice"))
    if choice is not None:
        out["toolConfig"] = {"functionCallingConfig": choice}
    config = _generation_config(body)
    if config:
        out["generationConfig"] = config
    return out


def _append(contents: list[JSON], role: str, parts: list[JSON]) -> None:
    append_turn(contents, role, parts, "parts")


def _text_parts(content: Any, index: int) -> list[JSON]:
    if isinstance(content, str):
        return [{"text": content}]
    parts: list[JSON] = []
    for part in content if isinstance(content, list) else ():
        if isinstance(part, dict) and part.get("type") == "text":
            parts.append({"text": str(part.get("text", ""))})
        else:
            raise InvalidRequest(f"messages[{index}]: only text parts {_TO_GEMINI} here.",
                                 param="messages")
    return parts


def _user_parts(content: Any, index: int) -> list[JSON]:
    if isinstance(content, str):
        return [{"text": content}]
    parts: list[JSON] = []
    for part in content if isinstance(content, list) else ():
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            parts.append({"text": str(part.get("text", ""))})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else None
            parts.append(_inline_image(url, index))
        else:
            raise refuse(f"A '{kind}' content part", "messages", _TO_GEMINI)
    return parts


def _inline_image(url: Any, index: int) -> JSON:
    inline = data_url(url) if isinstance(url, str) else None
    if inline is not None:
        return {"inlineData": {"mimeType": inline[0], "data": inline[1]}}
    raise refuse(f"messages[{index}]: an image given by URL (not a base64 data URL)",
                  "messages", _TO_GEMINI)


def _assistant_parts(message: Mapping[str, Any], index: int,
                     names: dict[str, str]) -> list[JSON]:
    content = message.get("content")
    parts = _text_parts(content, index) if content else []
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            raise refuse("A non-function tool call", "messages", _TO_GEMINI)
        name = str(function.get("name", ""))
        names[str(call.get("id", ""))] = name
        args = tool_input(function.get("arguments"))
        parts.append({"functionCall": {"name": name, "args": args if isinstance(args, dict)
                                       else {}}})
    return parts or [{"text": ""}]


def _declaration(tool: Any, index: int) -> JSON:
    function = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(
            function, dict):
        raise refuse(f"tools[{index}] (not a function)", "tools", _TO_GEMINI)
    declaration: JSON = {"name": function.get("name", "")}
    if function.get("description"):
        declaration["description"] = function["description"]
    if function.get("parameters") is not None:
        declaration["parametersJsonSchema"] = function["parameters"]
    return declaration


def _tool_choice_to_gemini(choice: Any) -> JSON | None:
    if choice is None:
        return None
    if choice in ("auto", "none"):
        return {"mode": str(choice).upper()}
    if choice == "required":
        return {"mode": "ANY"}
    function = choice.get("function") if isinstance(choice, dict) else None
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        return {"mode": "ANY", "allowedFunctionNames": [function["name"]]}
    raise InvalidRequest("'tool_choice' must be auto, none, required or a function.",
                         param="tool_choice")


def _generation_config(body: Mapping[str, Any]) -> JSON:
    config: JSON = {}
    for source, target in _CONFIG_FROM_CHAT:
        if body.get(source) is not None:
            config[target] = body[source]
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if limit is not None:
        config["maxOutputTokens"] = limit
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    count = body.get("n")
    if isinstance(count, int) and count != 1:
        config["candidateCount"] = count
    response_format = body.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = response_format.get("json_schema") if isinstance(response_format, dict) else None
        if isinstance(schema, dict) and schema.get("schema") is not None:
            config["responseJsonSchema"] = schema["schema"]
    return config


def gemini_to_chat_answer(payload: Mapping[str, Any], *, model: str | None = None) -> JSON:
    """A GenerateContentResponse as a chat completion (`model` in place of its version)."""
    choices = []
    for position, candidate in enumerate(payload.get("candidates") or ()):
        if not isinstance(candidate, dict):
            continue
        text, calls = candidate_output(candidate)
        message: JSON = {"role": "assistant", "content": text if text or not calls else None,
                         "refusal": None}
        if calls:
            message["tool_calls"] = [
                {"id": call_id(), "type": "function",
                 "function": {"name": c.get("name", ""), "arguments": orjson.dumps(
                     c.get("args") or {}).decode()}} for c in calls]
        index = candidate.get("index", position)
        choices.append({"index": index if isinstance(index, int) else position,
                        "message": message, "logprobs": None,
                        "finish_reason": finish_reason(candidate.get("finishReason"),
                                                       bool(calls)) or "stop"})
    answer: JSON = {
        "id": "chatcmpl-" + str(payload.get("responseId") or uuid.uuid4().hex[:24]),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model or str(payload.get("modelVersion", "")),
        "choices": choices,
    }
    usage = chat_usage(payload.get("usageMetadata"))
    if usage is not None:
        answer["usage"] = usage
    return answer


def call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


def candidate_output(candidate: Mapping[str, Any]) -> tuple[str, list[JSON]]:
    """A candidate's text (thoughts left out) and its function calls."""
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    text: list[str] = []
    calls: list[JSON] = []
    for part in parts if isinstance(parts, list) else ():
        if not isinstance(part, dict) or part.get("thought"):
            continue
        if isinstance(part.get("text"), str):
            text.append(part["text"])
        elif isinstance(part.get("functionCall"), dict):
            calls.append(part["functionCall"])
    return "".join(text), calls


def _count(metadata: Mapping[str, Any], key: str) -> int:
    value = metadata.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def chat_usage(metadata: Any) -> JSON | None:
    """`usageMetadata` as chat's `usage` (thinking counted in completion tokens)."""
    if not isinstance(metadata, dict):
        return None
    prompt = _count(metadata, "promptTokenCount") + _count(metadata, "toolUsePromptTokenCount")
    thoughts = _count(metadata, "thoughtsTokenCount")
    completion = _count(metadata, "candidatesTokenCount") + thoughts
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": _count(metadata, "cachedContentTokenCount")},
            "completion_tokens_details": {"reasoning_tokens": thoughts}}


# --- a Gemini client, an OpenAI-format upstream ---------------------------------------

_GEMINI_REFUSED: Final = (
    ("cachedContent", "'cachedContent' (a cache kept by Google)"),
)
_CONFIGTO_CHAT: Final = (
    ("temperature", "temperature"), ("topP", "top_p"), ("seed", "seed"),
    ("presencePenalty", "presence_penalty"), ("frequencyPenalty", "frequency_penalty"),
    ("maxOutputTokens", "max_completion_tokens"),
)


def gemini_to_chat_request(body: Mapping[str, Any]) -> JSON:
    """A generateContent request as a chat completions request (model and stream are set
    by the caller)."""
    for key, what in _GEMINI_REFUSED:
        if body.get(key) is not None:
            raise refuse(what, key, TO_CHAT)
    messages: list[JSON] = []
    system = body.get("systemInstruction")
    if isinstance(system, dict):
        messages.append({"role": "system", "content": _plain_text(system, "systemInstruction")})
    calls: dict[str, list[str]] = {}  # function name -> ids of calls not yet answered
    for index, content in enumerate(body.get("contents") or ()):
        messages.extend(_to_chat_messages(content, index, calls))
    out: JSON = {"messages": messages}
    tools = [_to_chat_tool(d) for tool in body.get("tools") or ()
             for d in _declarations(tool)]
    if tools:
        out["tools"] = tools
    _tool_config_to_chat(body.get("toolConfig"), out)
    _config_to_chat(body.get("generationConfig"), out)
    return out


def _plain_text(content: Mapping[str, Any], where: str) -> str:
    texts = []
    for part in content.get("parts") or ():
        if not isinstance(part, dict) or not isinstance(part.get("text"), str):
            raise refuse(f"A non-text part in {where}", where, TO_CHAT)
        texts.append(part["text"])
    return "".join(texts)


def _to_chat_messages(content: Any, index: int, calls: dict[str, list[str]]) -> list[JSON]:
    where = f"contents[{index}]"
    role = content.get("role", "user") if isinstance(content, dict) else None
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list):
        raise InvalidRequest(f"{where}.parts must be a list.", param="contents")
    if role == "model":
        text = "".join(str(p["text"]) for p in parts
                       if isinstance(p, dict) and "text" in p and not p.get("thought"))
        message: JSON = {"role": "assistant", "content": text or None}
        tool_calls = []
        for part in parts:
            call = part.get("functionCall") if isinstance(part, dict) else None
            if isinstance(call, dict):
                ident = str(call.get("id") or call_id())
                calls.setdefault(str(call.get("name", "")), []).append(ident)
                tool_calls.append({"id": ident, "type": "function", "function": {
                    "name": call.get("name", ""),
                    "arguments": orjson.dumps(call.get("args") or {}).decode()}})
        if tool_calls:
            message["tool_calls"] = tool_calls
        return [message]
    out: list[JSON] = []
    user: list[JSON] = []
    for part in parts:
        if not isinstance(part, dict):
            continue
        if "functionResponse" in part:
            response = part["functionResponse"]
            name = str(response.get("name", "")) if isinstance(response, dict) else ""
            pending = calls.get(name) or []
            ident = str(response.get("id") or (pending.pop(0) if pending else name))
            result = response.get("response") if isinstance(response, dict) else None
            out.append({"role": "tool", "tool_call_id": ident,
                        "content": orjson.dumps(result).decode()})
        elif isinstance(part.get("text"), str):
            user.append({"type": "text", "text": part["text"]})
        elif isinstance(part.get("inlineData"), dict):
            data = part["inlineData"]
            user.append({"type": "image_url", "image_url": {
                "url": f"data:{data.get('mimeType', '')};base64,{data.get('data', '')}"}})
        else:
            kind = next(iter(part), "empty")
            raise refuse(f"A '{kind}' part ({where})", "contents", TO_CHAT)
    if user:
        out.append({"role": "user", "content": user})
    return out


def _declarations(tool: Any) -> list[JSON]:
    if not isinstance(tool, dict) or set(tool) - {"functionDeclarations"}:
        kind = next(iter(tool), "tool") if isinstance(tool, dict) else "tool"
        raise refuse(f"The built-in tool '{kind}'", "tools", TO_CHAT)
    return [d for d in tool.get("functionDeclarations") or () if isinstance(d, dict)]


def _to_chat_tool(declaration: Mapping[str, Any]) -> JSON:
    function: JSON = {"name": declaration.get("name", "")}
    if declaration.get("description"):
        function["description"] = declaration["description"]
    schema = declaration.get("parametersJsonSchema") or declaration.get("parameters")
    if schema is not None:
        function["parameters"] = _lower_types(schema)
    return {"type": "function", "function": function}


def _lower_types(schema: Any) -> Any:
    """Gemini's OpenAPI schema types (`STRING`, `OBJECT`) as JSON Schema's (`string`)."""
    if isinstance(schema, dict):
        return {k: (v.lower() if k == "type" and isinstance(v, str) else _lower_types(v))
                for k, v in schema.items()}
    if isinstance(schema, list):
        return [_lower_types(v) for v in schema]
    return schema


def _tool_config_to_chat(config: Any, out: JSON) -> None:
    calling = config.get("functionCallingConfig") if isinstance(config, dict) else None
    if not isinstance(calling, dict):
        return
    mode = calling.get("mode")
    allowed = calling.get("allowedFunctionNames")
    if mode == "ANY" and isinstance(allowed, list) and len(allowed) == 1:
        out["tool_choice"] = {"type": "function", "function": {"name": allowed[0]}}
    elif mode == "ANY":
        out["tool_choice"] = "required"
    elif mode in ("AUTO", "NONE"):
        out["tool_choice"] = str(mode).lower()


def _config_to_chat(config: Any, out: JSON) -> None:
    if not isinstance(config, dict):
        return
    thinking = config.get("thinkingConfig")
    if isinstance(thinking, dict) and thinking.get("thinkingBudget") not in (None, 0):
        raise refuse("'thinkingConfig'", "generationConfig", TO_CHAT)
    for source, target in _CONFIGTO_CHAT:
        if config.get(source) is not None:
            out[target] = config[source]
    if config.get("stopSequences"):
        out["stop"] = config["stopSequences"]
    count = config.get("candidateCount")
    if isinstance(count, int) and count != 1:
        out["n"] = count
    if config.get("responseMimeType") == "application/json":
        schema = config.get("responseJsonSchema") or config.get("responseSchema")
        out["response_format"] = ({"type": "json_schema", "json_schema": {
            "name": "response", "schema": _lower_types(schema)}} if schema is not None
            else {"type": "json_object"})


def chat_to_gemini_answer(completion: Mapping[str, Any], *, model: str | None = None) -> JSON:
    """A chat completion as a GenerateContentResponse."""
    candidates = []
    for position, choice in enumerate(completion.get("choices") or ()):
        if not isinstance(choice, dict):
            continue
        message = choice.get("message")
        parts = chat_message_parts(message if isinstance(message, dict) else {})
        index = choice.get("index", position)
        candidates.append({"content": {"parts": parts, "role": "model"},
                           "finishReason": gemini_finish(choice.get("finish_reason")),
                           "index": index if isinstance(index, int) else position})
    answer: JSON = {"candidates": candidates,
                    "modelVersion": model or str(completion.get("model", "")),
                    "responseId": str(completion.get("id", ""))}
    metadata = usage_metadata(completion.get("usage"))
    if metadata is not None:
        answer["usageMetadata"] = metadata
    return answer


def chat_message_parts(message: Mapping[str, Any]) -> list[JSON]:
    parts: list[JSON] = []
    if message.get("content"):
        parts.append({"text": str(message["content"])})
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            args = tool_input(function.get("arguments"))
            parts.append({"functionCall": {"name": function.get("name", ""),
                                           "args": args if isinstance(args, dict) else {}}})
    return parts or [{"text": ""}]


def gemini_finish(reason: Any) -> str:
    return GEMINI_BY_FINISH.get(reason, "STOP") if isinstance(reason, str) else "STOP"


def usage_metadata(usage: Any) -> JSON | None:
    """Chat's `usage` as `usageMetadata` (reasoning reported as thoughts, apart)."""
    if not isinstance(usage, dict):
        return None
    prompt = _count(usage, "prompt_tokens")
    completion = _count(usage, "completion_tokens")
    details = usage.get("completion_tokens_details")
    reasoning = min(_count(details, "reasoning_tokens"), completion) if isinstance(
        details, dict) else 0
    cached_details = usage.get("prompt_tokens_details")
    cached = _count(cached_details, "cached_tokens") if isinstance(cached_details, dict) else 0
    metadata: JSON = {"promptTokenCount": prompt, "candidatesTokenCount": completion - reasoning,
                      "totalTokenCount": prompt + completion}
    if cached:
        metadata["cachedContentTokenCount"] = cached
    if reasoning:
        metadata["thoughtsTokenCount"] = reasoning
    return metadata

"""What the mappings from chat completions to Messages and to Gemini do alike: walk
chat's messages by role, merge consecutive turns of one role (both APIs want the roles
to alternate, tool results riding in a user turn), read base64 data URLs, and refuse
what has no meaning on the other side in the same words.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from gateway.errors import InvalidRequest

JSON = dict[str, Any]

TO_CHAT: Final = "cannot be translated to OpenAI chat completions"
# Chat request fields that mean nothing to Messages or Gemini: (field, how it is named).
CHAT_ONLY: Final = (
    ("logit_bias", "'logit_bias'"),
    ("audio", "Audio output ('audio')"),
    ("prediction", "Predicted outputs ('prediction')"),
    ("functions", "The deprecated 'functions' (use 'tools')"),
    ("function_call", "The deprecated 'function_call' (use 'tool_choice')"),
    ("web_search_options", "'web_search_options'"),
)


def refuse(what: str, param: str, target: str) -> InvalidRequest:
    """A 400 saying that `what` cannot be carried to `target`."""
    return InvalidRequest(f"{what} {target}, which the model's provider speaks.", param=param)


def append_turn(turns: list[JSON], role: str, items: list[JSON], key: str) -> None:
    """Consecutive turns of one role become one (`key`: where the turn keeps its items)."""
    if turns and turns[-1]["role"] == role:
        turns[-1][key].extend(items)
    else:
        turns.append({"role": role, key: items})


def data_url(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a `data:` URL, else None."""
    if not url.startswith("data:"):
        return None
    header, sep, data = url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    if not sep or encoding != "base64":
        return None
    return media_type, data


_ROLES: Final[Mapping[Any, str]] = {"system": "system", "developer": "system",
                                     "user": "user", "assistant": "assistant", "tool": "tool"}


def chat_messages(body: Mapping[str, Any], target: str
                  ) -> Iterator[tuple[int, str, Mapping[str, Any]]]:
    """(index, role, message) for each of a chat request's messages, a developer message's
    role as `system`; one that is not an object, or of another role, is refused towards
    `target`."""
    for index, message in enumerate(body.get("messages") or ()):
        if not isinstance(message, dict):
            raise InvalidRequest(f"messages[{index}] must be an object.", param="messages")
        role = _ROLES.get(message.get("role"))
        if role is None:
            raise refuse(f"A message with role {message.get('role')!r}", "messages", target)
        yield index, role, message

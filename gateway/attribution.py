"""Who and what a call is for, beyond its key: tags and the end user.

Tags come from the `x-gateway-tags` header (`project=alpha,feature=search`) and
from the OpenAI `metadata` object of the body (valid string pairs only); the
header wins on a name both give. The end user is the body's `user` field, else the
`x-gateway-user` header, else (Anthropic's Messages) the body's `metadata.user_id`,
which Claude Code fills in by itself: that one is never refused (Anthropic takes it
freely), only ignored when it is not printable ASCII, and an id longer than `MAX_USER`
is shortened to its start plus a hash of the whole, so distinct ids stay distinct. Both
are client input that ends up in the ledger and on
spans, so names and values are validated and length-limited, and a call carries
at most `MAX_TAGS` tags; a bad header or user id is a 400 naming the problem. Tags are
never metric labels (their values are unbounded) unless the operator allow-lists a tag
name (`attribution.metric_tags`), and then only its first `metric_tag_values` distinct
values per process are (`attribution_config.TagLabels`); the end user never is.

Read on every request, so compiled (setup.py); the `attribution:` config section, a
pydantic dataclass mypyc cannot compile, is `attribution_config.py`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from gateway import errors

TAGS_HEADER = "x-gateway-tags"
USER_HEADER = "x-gateway-user"
MAX_TAGS = 16
MAX_NAME = 64
MAX_VALUE = 128
MAX_USER = 128
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# Printable ASCII without the header's own separators and quotes.
_VALUE = re.compile(r"^[A-Za-z0-9 _.:/@+#~-]{1,128}$")
_USER = re.compile(r"^[\x21-\x7e]{1,128}$")
_USER_CHARS = re.compile(r"^[\x21-\x7e]{1,4096}$")  # Anthropic's `metadata.user_id`, unshortened
_HASH_BYTES = 8


@dataclass(frozen=True, slots=True)
class Attribution:
    tags: tuple[tuple[str, str], ...] = ()  # sorted by name
    user: str = ""

    def tags_json(self) -> str:
        """The tags as the ledger stores them: a JSON object, or "" for none."""
        return orjson.dumps(dict(self.tags)).decode() if self.tags else ""

    def tag_dict(self) -> dict[str, str]:
        return dict(self.tags)


NONE = Attribution()


STATE_KEY = "attribution"  # where the call log hook keeps it in `Call.state`


def of(state: Mapping[str, Any]) -> Attribution:
    """The attribution a call's state holds (`NONE` when the call named none)."""
    found = state.get(STATE_KEY)
    return found if isinstance(found, Attribution) else NONE


def read(headers: Mapping[str, str], body: Mapping[str, Any],
         user_in_metadata: bool = False) -> Attribution:
    """The call's tags and end user, or `errors.InvalidRequest` for a bad one.
    `user_in_metadata`: the body's `metadata` is Anthropic's, whose `user_id` names the
    end user (and is no tag)."""
    header = headers.get(TAGS_HEADER)
    metadata = body.get("metadata")
    user = body.get("user")
    header_user = headers.get(USER_HEADER)
    if header is None and not metadata and not user and header_user is None:
        return NONE  # the common case costs four lookups
    tags: dict[str, str] = {}
    metadata_user = ""
    if isinstance(metadata, dict):
        if user_in_metadata:
            metadata = dict(metadata)
            metadata_user = _metadata_user(metadata.pop("user_id", None))
        # OpenAI's own field, which OpenAI accepts more freely: pairs that are not valid
        # tags are passed on upstream but not recorded, rather than refused.
        for name, value in metadata.items():
            if isinstance(value, str) and NAME.match(str(name)) and _VALUE.match(value):
                tags[str(name)] = value
    if header is not None:
        tags.update(parse_header(header))
    if len(tags) > MAX_TAGS:
        raise errors.InvalidRequest(f"at most {MAX_TAGS} tags per request (got {len(tags)})",
                                    param=TAGS_HEADER)
    chosen = user if isinstance(user, str) and user else header_user or ""
    if chosen and not _USER.match(chosen):
        raise errors.InvalidRequest(
            f"the end user id must be 1 to {MAX_USER} printable ASCII characters without spaces",
            param="user")
    return Attribution(tuple(sorted(tags.items())), chosen or metadata_user)


def _metadata_user(value: object) -> str:
    """Anthropic's `metadata.user_id` as an end user id: "" when it is not printable ASCII
    without spaces; past `MAX_USER`, its start and a hash of the whole (Claude Code's ids
    run to about 160 characters, their distinct part at the end)."""
    if not isinstance(value, str) or not _USER_CHARS.match(value):
        return ""
    if len(value) <= MAX_USER:
        return value
    digest = hashlib.blake2b(value.encode(), digest_size=_HASH_BYTES).hexdigest()
    return f"{value[:MAX_USER - 2 * _HASH_BYTES - 1]}~{digest}"


def parse_header(text: str) -> dict[str, str]:
    """`name=value,name=value` as a dict (names and values checked)."""
    tags: dict[str, str] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, eq, value = part.partition("=")
        if not eq:
            raise errors.InvalidRequest(
                f"{TAGS_HEADER}: '{shown(part)}' is not name=value", param=TAGS_HEADER)
        name = _name(name.strip(), TAGS_HEADER)
        tags[name] = _value(value.strip(), name, TAGS_HEADER)
    return tags


def _name(name: str, where: str) -> str:
    if not NAME.match(name):
        raise errors.InvalidRequest(
            f"{where}: tag name '{shown(name)}' must be 1 to {MAX_NAME} letters, digits, "
            "'_', '.' or '-'", param=where)
    return name


def _value(value: str, name: str, where: str) -> str:
    if not _VALUE.match(value):
        raise errors.InvalidRequest(
            f"{where}: the value of tag '{name}' must be 1 to {MAX_VALUE} characters of "
            "letters, digits, spaces and _.:/@+#~-", param=where)
    return value


def shown(text: str) -> str:
    cleaned = "".join(ch for ch in text if ch.isprintable())
    return cleaned[:40] + ("..." if len(cleaned) > 40 else "")

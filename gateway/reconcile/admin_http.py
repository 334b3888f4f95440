"""Reading a provider's admin report: GET with the admin key, follow `has_more` /
`next_page` to the last page, and turn every failure into one clear `AdminAPIError`
that never carries the key (scrubbed even when the provider echoes part of it).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

import aiohttp

from gateway.redact import scrub

MAX_PAGES = 1000  # a provider that never says "no more" must not loop forever


@contextlib.asynccontextmanager
async def client(timeout_s: float = 120.0) -> AsyncIterator[aiohttp.ClientSession]:
    """The HTTP session for one run (proxies from the environment, as curl would)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s),
                                     trust_env=True) as session:
        yield session


class AdminAPIError(Exception):
    """The provider's admin API could not be read; the message says why, without the key."""


class AdminAPI:
    """One provider's admin API at `base_url`, authenticated by `headers` (which hold
    `key`); `label` names it in errors ("the OpenAI admin API")."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, headers: Mapping[str, str],
                 key: str, label: str, key_env: str) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers)
        self.key = key
        self.label = label
        self.key_env = key_env

    async def pages(self, path: str, params: Sequence[tuple[str, str]]
                    ) -> AsyncIterator[Mapping[str, Any]]:
        """Every page of the report at `path`, first to last."""
        page: str | None = None
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            query = [*params, ("page", page)] if page else list(params)
            body = await self._get(path, query)
            yield body
            if not body.get("has_more"):
                return
            page = body.get("next_page")
            if not isinstance(page, str) or not page or page in seen:
                raise AdminAPIError(f"{self.label} said has_more but gave no new next_page "
                                    f"for {path}")
            seen.add(page)
        raise AdminAPIError(f"{self.label}: more than {MAX_PAGES} pages for {path}")

    async def _get(self, path: str, query: list[tuple[str, str]]) -> Mapping[str, Any]:
        url = self.base_url + path
        try:
            async with self.session.get(url, params=query, headers=self.headers) as resp:
                text = await resp.text()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise AdminAPIError(f"cannot reach {self.label} at {self.base_url}: "
                                f"{self._clean(str(exc) or type(exc).__name__)}") from None
        if status != 200:
            raise AdminAPIError(self._failure(status, text))
        try:
            body = json.loads(text, parse_float=Decimal)  # money stays exact
        except ValueError:
            raise AdminAPIError(f"{self.label} answered {path} with something that is not "
                                "JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise AdminAPIError(f"{self.label} answered {path} without a `data` list")
        return body

    def _failure(self, status: int, text: str) -> str:
        message = _error_message(text)
        detail = f" ({self._clean(message)})" if message else ""
        if status in (401, 403):
            return (f"{self.label} refused the key in ${self.key_env} (HTTP {status}){detail}: "
                    "it must be an admin key of the organization")
        return f"{self.label} answered HTTP {status}{detail}"

    def _clean(self, text: str) -> str:
        return scrub(text.encode(), [self.key]).decode(errors="replace")[:300]


def _error_message(text: str) -> str:
    """The message of an OpenAI (`{"error": {"message"}}`) or Anthropic (`{"type": "error",
    "error": {"message"}}`) error body; "" for anything else."""
    try:
        error = json.loads(text).get("error")
    except (ValueError, AttributeError):
        return ""
    message = error.get("message") if isinstance(error, dict) else error
    return message if isinstance(message, str) else ""


def number(value: Any) -> int:
    """A token count from a report (null and absent count as 0)."""
    return int(value) if isinstance(value, int | Decimal) else 0

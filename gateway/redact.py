"""Scrubbing secrets out of anything the gateway passes on.

Upstreams echo the credential they were given ("Incorrect API key provided:
sk-ab***yz", "bad key Bearer sk-live-..."); none of that may reach a client, a
span, a log line or a metric. One `Scrubber`, built from the config, knows every
configured secret (provider API keys, credential headers, proxy passwords) and
is applied where upstream-chosen text leaves the gateway: error bodies, error
events, span status messages, passed-through headers and log records. Pure.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlsplit

_ECHOED_KEY = re.compile(rb"(API key provided: )[^\s\"'.,]+", re.IGNORECASE)
_KEY_LIKE = re.compile(rb"\b(sk|gk|AIza)[-_A-Za-z0-9*]{8,}")
# What makes `Scrubber.text` change a text other than a configured secret: the same
# patterns on str (ASCII word boundaries, as on the UTF-8 bytes), searched in one pass.
_SUSPECT_TEXT = r"API key provided|\b(?:sk|gk|AIza)[-_A-Za-z0-9*]{8,}"
_SECRET_SHAPE = re.compile(r"^(?:(?:Bearer|Basic|Token)\s+)?(?:sk|gk|AIza|key)[-_A-Za-z0-9]{12,}$|"
                           r"^[A-Za-z0-9+/_=-]{32,}$", re.IGNORECASE)
_SCHEME = re.compile(r"^(?:Bearer|Basic|Token)\s+", re.IGNORECASE)
_PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy",
                    "all_proxy")
REDACTED = b"[redacted]"
_SHORT = 64  # `Scrubber.text`'s letter check, for texts up to this length
MIN_SECRET = 6  # shorter values would scrub ordinary words


def looks_secret(value: str) -> bool:
    """A header value shaped like a credential (a key prefix, or a long opaque token)."""
    return bool(_SECRET_SHAPE.match(value.strip()))


def secret_parts(value: str) -> list[str]:
    """The strings to scrub for one credential value: itself and, for `Bearer x`, `x`."""
    value = value.strip()
    parts = [value] if len(value) >= MIN_SECRET else []
    token = _SCHEME.sub("", value)
    if token != value and len(token) >= MIN_SECRET:
        parts.append(token)
    return parts


def proxy_secrets(environ: Mapping[str, str]) -> list[str]:
    """Passwords in proxy URLs from the environment (`http://user:pass@proxy:3128`)."""
    found: list[str] = []
    for name in _PROXY_VARIABLES:
        url = environ.get(name)
        if not url or "@" not in url:
            continue
        password = urlsplit(url).password
        if password and len(password) >= MIN_SECRET // 2:
            found.extend({password, unquote(password)})
    return found


class Scrubber:
    """Removes a fixed set of secrets, echoed keys and key-shaped tokens from text."""

    __slots__ = ("_bytes", "_suspect", "_text", "_uncased_secret", "secrets")

    def __init__(self, secrets: Iterable[str]) -> None:
        unique = sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True)
        self.secrets = tuple(unique)
        self._bytes = re.compile(b"|".join(re.escape(s.encode()) for s in unique)) \
            if unique else None
        self._text = re.compile("|".join(re.escape(s) for s in unique)) if unique else None
        # Any secret, echoed key or key-shaped token: one search says whether `text`
        # has anything to scrub (most texts, e.g. rate-limit headers, have not).
        self._suspect = re.compile("|".join([*(re.escape(s) for s in unique), _SUSPECT_TEXT]),
                                   re.ASCII)
        # Whether a secret has no cased letter (digits and signs only): only such a secret
        # can hide in a text without letters (see `text`).
        self._uncased_secret = any(s.lower() == s.upper() for s in unique)

    def bytes(self, data: bytes) -> bytes:
        """`data` without any secret (error bodies, error events)."""
        if self._bytes is not None:
            data = self._bytes.sub(REDACTED, data)
        data = _ECHOED_KEY.sub(rb"\1" + REDACTED, data)
        return _KEY_LIKE.sub(REDACTED, data)

    def text(self, text: str) -> str:
        """`text` without any secret (messages for spans, logs and clients)."""
        if (not self._uncased_secret and len(text) <= _SHORT and text.isascii()
                and text.lower() == text.upper()):
            # A short ASCII text without a letter (counts, limits, dates: most passed-on
            # header values): no echoed key, key-shaped token or configured secret (each
            # has a letter) can be in it, and two case maps cost less than the search below.
            return text
        if self._suspect.search(text) is None:
            return text
        if self._text is not None and self._text.search(text) is not None:
            text = self._text.sub(REDACTED.decode(), text)
        if "API key provided" in text or _KEY_LIKE.search(text.encode()) is not None:
            text = self.bytes(text.encode()).decode("utf-8", "replace")
        return text

    def contains(self, text: str) -> bool:
        """Whether `text` holds a configured secret (cheap: one search)."""
        return self._text is not None and self._text.search(text) is not None


def scrub_record(record: logging.LogRecord, scrubber: Scrubber) -> None:
    """Scrub a log record's message, arguments and traceback in place."""
    message = record.getMessage()
    clean = scrubber.text(message)
    if clean != message:
        record.msg, record.args = clean, None
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = scrubber.text(record.exc_text)


class ScrubbingRecords:
    """A log record factory that scrubs every record as it is made, whichever logger
    (the gateway's, aiohttp's, a library's) makes it, before any handler sees it.
    Records below a logger's level are never made, so quiet levels cost nothing."""

    def __init__(self, previous: Callable[..., logging.LogRecord], scrubber: Scrubber) -> None:
        self.previous = previous
        self.scrubber = scrubber
        self.active = True

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.previous(*args, **kwargs)
        if self.active:
            scrub_record(record, self.scrubber)
        return record


@contextmanager
def scrubbed_logs(scrubber: Scrubber) -> Iterator[ScrubbingRecords]:
    """Scrub every log record made while the app runs (the record factory is the one
    hook that sees records of loggers created later, too)."""
    factory = ScrubbingRecords(logging.getLogRecordFactory(), scrubber)
    logging.setLogRecordFactory(factory)
    try:
        yield factory
    finally:
        factory.active = False  # stays inert if another app wrapped it since
        if logging.getLogRecordFactory() is factory:
            logging.setLogRecordFactory(factory.previous)


def scrub(data: bytes, secrets: Iterable[str]) -> bytes:
    """Remove every given secret, echoed keys and key-shaped tokens from `data`."""
    return Scrubber(secrets).bytes(data)

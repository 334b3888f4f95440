"""Scrubbing secrets out of anything the gateway passes on (upstream error bodies).

Upstreams echo parts of the key they were given ("Incorrect API key provided:
sk-ab***yz"); none of that may reach a client, a span or a log line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_ECHOED_KEY = re.compile(rb"(API key provided: )[^\s\"'.,]+", re.IGNORECASE)
_KEY_LIKE = re.compile(rb"\b(sk|gk|AIza)[-_A-Za-z0-9*]{8,}")
REDACTED = b"[redacted]"


def scrub(data: bytes, secrets: Iterable[str]) -> bytes:
    """Remove every given secret, echoed keys and key-shaped tokens from `data`."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            data = data.replace(secret.encode(), REDACTED)
    data = _ECHOED_KEY.sub(rb"\1" + REDACTED, data)
    return _KEY_LIKE.sub(REDACTED, data)

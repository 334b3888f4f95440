"""Admin keys: who may use the admin API and the console.

They are separate from the virtual keys clients call the gateway with: a
comma-separated list in `GATEWAY_ADMIN_KEYS`, sent as `Authorization: Bearer`.
Only their SHA-256 digests are kept, and a presented key is compared with every
one of them in constant time (`hmac.compare_digest` over digests of equal
length), so neither timing nor an error message tells how close a guess was.
With no admin key the admin API and the console are off.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

ENV = "GATEWAY_ADMIN_KEYS"
MIN_LENGTH = 16
OFF_MESSAGE = (f"The admin API and console are off: set {ENV} (comma-separated admin keys of at "
               f"least {MIN_LENGTH} characters) when starting the gateway to turn them on.")


class AdminKeys:
    def __init__(self, keys: list[str]) -> None:
        self._digests = [hashlib.sha256(k.encode()).digest() for k in keys]

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> AdminKeys:
        """The admin keys in the environment; `ValueError` for one too short to be safe."""
        keys = [k.strip() for k in environ.get(ENV, "").split(",") if k.strip()]
        short = [i for i, k in enumerate(keys) if len(k) < MIN_LENGTH]
        if short:
            raise ValueError(f"{ENV}: key #{short[0] + 1} is shorter than {MIN_LENGTH} "
                             "characters (use e.g. `openssl rand -hex 24`)")
        return cls(keys)

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def __len__(self) -> int:
        return len(self._digests)

    def check(self, authorization: str | None) -> bool:
        """Whether an `Authorization` header carries one of the admin keys."""
        if not authorization or not self._digests:
            return False
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return False
        digest = hashlib.sha256(token.encode()).digest()
        found = False
        for known in self._digests:  # every one, always: no early exit to time
            found |= hmac.compare_digest(digest, known)
        return found

"""Counters kept as plain dict sums and read by the SDK only at collection time.

A synchronous OTel counter costs every request an attribute hash, an
exemplar offer and a lock per metric reader; for the gateway's own
per-request counters (requests, tokens, in-flight) that was a large share of
the request path's CPU. An observable instrument whose callback reports these
sums gives the same cumulative series for the price of a dict update.
(Cost stays a synchronous counter: its points carry exemplars.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from gateway.telemetry import names as n


class Tally:
    """Sums keyed by a fixed tuple of attribute values, optionally followed by a tuple of
    extra (label, value) pairs (the operator's allow-listed tags)."""

    __slots__ = ("_keys", "_lock", "_sums")

    def __init__(self, keys: Sequence[str]) -> None:
        self._keys = tuple(keys)
        self._sums: dict[tuple[Any, ...], float] = {}
        self._lock = threading.Lock()  # collection runs in the exporter's thread

    def add(self, values: tuple[Any, ...], amount: float = 1) -> None:
        sums = self._sums
        sums[values] = sums.get(values, 0) + amount

    def observe(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            items = list(self._sums.items())
        keys = self._keys
        width = len(keys)
        out = []
        for values, value in items:
            attrs = {k: v for k, v in zip(keys, values[:width], strict=True) if v is not None}
            if len(values) > width:
                attrs.update(values[width])
            out.append(Observation(value, attrs))
        return out


REQUEST_KEYS = (
    n.GEN_AI_OPERATION_NAME, n.GEN_AI_REQUEST_MODEL, n.GEN_AI_PROVIDER_NAME,
    n.HTTP_RESPONSE_STATUS_CODE, n.ERROR_TYPE, n.GATEWAY_KEY_ALIAS, n.GATEWAY_TEAM,
)
TOKEN_KEYS = (
    n.GEN_AI_OPERATION_NAME, n.GEN_AI_REQUEST_MODEL, n.GEN_AI_PROVIDER_NAME,
    n.GATEWAY_KEY_ALIAS, n.GATEWAY_TEAM, n.GEN_AI_TOKEN_TYPE,
)
ACTIVE_KEYS = (n.GEN_AI_OPERATION_NAME,)


class Tallies:
    """The gateway's observable per-request series."""

    def __init__(self, meter: Meter) -> None:
        self.requests = Tally(REQUEST_KEYS)
        self.tokens = Tally(TOKEN_KEYS)
        self.active = Tally(ACTIVE_KEYS)
        meter.create_observable_counter(
            n.M_REQUESTS, callbacks=[self.requests.observe], unit="{request}",
            description="Client requests handled by the gateway.")
        meter.create_observable_counter(
            n.M_TOKENS, callbacks=[self.tokens.observe], unit="{token}",
            description="Tokens by model, provider, key and team "
            "(cache_read is part of input, reasoning part of output).")
        meter.create_observable_up_down_counter(
            n.M_ACTIVE_REQUESTS, callbacks=[self.active.observe], unit="{request}",
            description="Requests in flight.")

"""Rate-limited logging: a client must not be able to fill the gateway's log.

One request can make a library warn many times (an 8 KB `baggage` header made
OpenTelemetry's propagator warn once per bad entry: 180 lines), and a flood of
such requests would write as fast as clients send. `RateLimitFilter` passes at
most `burst` records per key (logger, level, message template) per `interval_s`;
the last one passed says that more are being held back, and the first one after
the interval says how many were.

Several handlers may each have a limiter (stderr's, and the OpenTelemetry logs
handler's, which must not let a flood of upstream errors flood the exporter): a
limiter keys a record by its template as logged even after another limiter has
appended its note to it, and a note is appended once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

BURST = 10
INTERVAL_S = 60.0
MAX_KEYS = 1024  # distinct templates tracked; beyond it the oldest window is forgotten
_TEMPLATE = "lograte_template"  # the record's template before a note was appended to it


class RateLimitFilter(logging.Filter):
    """Passes `burst` records per (logger, level, template) per interval, then a summary."""

    def __init__(self, burst: int = BURST, interval_s: float = INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._burst = burst
        self._interval = interval_s
        self._clock = clock
        self._windows: dict[tuple[str, int, str], list[float]] = {}  # key -> [start, count]

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.__dict__.get(_TEMPLATE, record.msg)))
        now = self._clock()
        window = self._windows.get(key)
        if window is None or now - window[0] >= self._interval:
            held = int(window[1]) - self._burst if window is not None else 0
            if len(self._windows) >= MAX_KEYS and window is None:
                del self._windows[next(iter(self._windows))]
            self._windows[key] = [now, 1]
            if held > 0:
                _append(record, f" [{held} more like this were not logged in the last "
                                f"{self._interval:g} s]")
            return True
        window[1] += 1
        if window[1] < self._burst:
            return True
        if window[1] == self._burst:
            _append(record, f" [more like this are not logged for up to {self._interval:g} s]")
            return True
        return False


def _append(record: logging.LogRecord, note: str) -> None:
    if _TEMPLATE in record.__dict__:
        return  # another handler's limiter already said it
    record.__dict__[_TEMPLATE] = record.msg
    record.msg = f"{record.getMessage()}{note}"
    record.args = None


def install(logger: logging.Logger | None = None, *, burst: int = BURST,
            interval_s: float = INTERVAL_S) -> RateLimitFilter:
    """Put one limiter on every handler of `logger` (the root logger by default)."""
    target = logger or logging.getLogger()
    limiter = RateLimitFilter(burst, interval_s)
    for handler in target.handlers:
        handler.addFilter(limiter)
    return limiter

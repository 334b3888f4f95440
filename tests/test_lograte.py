"""The log limiter: a burst per message per interval, a note when it starts holding
lines back, and a count of what it held back once the interval is over."""

from __future__ import annotations

import logging

from gateway.lograte import RateLimitFilter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(msg: str, *args: object, name: str = "lib") -> logging.LogRecord:
    return logging.LogRecord(name, logging.WARNING, __file__, 1, msg, args, None)


def test_a_burst_passes_then_lines_are_held_back_and_counted() -> None:
    """Three lines pass, the third says more are held back; after the interval the next
    line says how many were."""
    clock = Clock()
    limiter = RateLimitFilter(burst=3, interval_s=60, clock=clock)
    passed = [r for r in (record("bad entry %s", i) for i in range(10)) if limiter.filter(r)]
    assert [r.getMessage()[:11] for r in passed] == ["bad entry 0", "bad entry 1", "bad entry 2"]
    assert "more like this are not logged for up to 60 s" in passed[-1].getMessage()
    clock.now = 61
    later = record("bad entry %s", 10)
    assert limiter.filter(later)
    assert "[7 more like this were not logged in the last 60 s]" in later.getMessage()


def test_different_messages_and_loggers_have_their_own_allowance() -> None:
    """A flood of one message does not silence another, nor the same text elsewhere."""
    limiter = RateLimitFilter(burst=1, interval_s=60, clock=Clock())
    assert limiter.filter(record("flood"))
    assert not limiter.filter(record("flood"))
    assert limiter.filter(record("something else"))
    assert limiter.filter(record("flood", name="other"))


def test_two_handlers_limiters_agree_and_note_once() -> None:
    """Two handlers' limiters (stderr's and the OTel exporter's) see the same records: the
    note one appends does not give the record a new key for the other, nor a second note."""
    first = RateLimitFilter(burst=2, interval_s=60, clock=Clock())
    second = RateLimitFilter(burst=2, interval_s=60, clock=Clock())
    decisions = []
    for index in range(5):
        line = record("upstream error %s", index)
        decisions.append((first.filter(line), second.filter(line)))
        if index == 1:
            assert line.getMessage().count("[more like this") == 1
    assert decisions == [(True, True), (True, True), (False, False), (False, False),
                         (False, False)]

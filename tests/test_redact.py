"""The scrubber: configured secrets, echoed keys and key-shaped tokens out of bytes,
text and log records; which header values count as credentials."""

from __future__ import annotations

import logging

from gateway.redact import (
    Scrubber,
    looks_secret,
    proxy_secrets,
    scrubbed_logs,
    secret_parts,
)

KEY = "live-0123456789-credential"


def test_every_configured_secret_is_removed_from_bytes_and_text() -> None:
    """Each secret, wherever it appears, becomes [redacted], in bytes and in text."""
    scrubber = Scrubber([KEY, "other-secret-99"])
    assert scrubber.bytes(f"x {KEY} y other-secret-99".encode()) == \
        b"x [redacted] y [redacted]"
    assert scrubber.text(f'{{"message": "bad {KEY}"}}') == '{"message": "bad [redacted]"}'
    assert scrubber.contains(f"a{KEY}b") and not scrubber.contains("nothing here")


def test_echoed_and_key_shaped_tokens_go_even_when_not_configured() -> None:
    """`API key provided: ...` and sk-shaped tokens are scrubbed without being configured."""
    scrubber = Scrubber([])
    assert scrubber.text("Incorrect API key provided: abc123xyz.") == \
        "Incorrect API key provided: [redacted]."
    assert "[redacted]" in scrubber.text("key sk-proj-abcdefghijkl")


def test_letterless_texts_pass_unless_a_secret_has_no_letter() -> None:
    """Counts and dates pass as they are; a secret of digits alone is still found in them,
    and a text with letters is still searched."""
    scrubber = Scrubber(["sk-bench"])
    assert scrubber.text("29999000") == "29999000"
    assert scrubber.text("2020-10-01") == "2020-10-01"
    assert scrubber.text("used sk-bench") == "used [redacted]"
    digits = Scrubber(["sk-bench", "987654"])
    assert digits.text("x987654y") == "x[redacted]y"
    assert digits.text("19876543") == "1[redacted]3"
    assert Scrubber([]).text("12 sk-abcdefghijkl") == "12 [redacted]"


def test_a_bearer_value_contributes_itself_and_its_token() -> None:
    """`Bearer x` is scrubbed whole and as `x`; short values are not secrets."""
    assert secret_parts(f"Bearer {KEY}") == [f"Bearer {KEY}", KEY]
    assert secret_parts("abc") == []


def test_credential_shaped_header_values_are_recognised() -> None:
    """Key prefixes and long opaque tokens look like secrets; a title does not."""
    assert looks_secret("sk-abcdefghijklmnop") and looks_secret("a" * 40)
    assert not looks_secret("My App") and not looks_secret("2024-06-01")


def test_proxy_passwords_come_from_the_environment() -> None:
    """A password in HTTPS_PROXY (and its percent-decoded form) is a secret."""
    found = proxy_secrets({"HTTPS_PROXY": "http://u:p%40ss-word@proxy:3128", "HOME": "/x"})
    assert set(found) == {"p%40ss-word", "p@ss-word"}


def test_log_records_are_scrubbed_while_the_app_runs_and_not_after() -> None:
    """Records made inside `scrubbed_logs` are scrubbed, tracebacks included; the
    previous record factory is back afterwards."""
    before = logging.getLogRecordFactory()
    logger = logging.getLogger("gateway.test.redact")
    with scrubbed_logs(Scrubber([KEY])):
        record = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "said %s",
                                   (KEY,), None)
        try:
            raise ValueError(KEY)
        except ValueError as exc:
            failed = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "boom", (),
                                       (type(exc), exc, exc.__traceback__))
    assert record.getMessage() == "said [redacted]"
    assert failed.exc_text is not None and KEY not in failed.exc_text
    assert logging.getLogRecordFactory() is before

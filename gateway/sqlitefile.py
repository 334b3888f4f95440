"""How the gateway opens its SQLite files (the spend ledger's, the stored-response
owners'): WAL, the busy timeout, and statements retried while SQLite refuses a lock
upgrade without waiting.

Its own module so that the packages writing those files (`spend/`, `stored/`) share it
without importing each other, and light: the ledger writer process imports it at start.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

BUSY_TIMEOUT_S = 10.0


def connect(path: str, *, create: bool = True) -> sqlite3.Connection:
    """A connection with the pragmas every user of the file needs."""
    if create:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    # `timeout` is SQLite's busy timeout: a locked file is waited for, up to that long.
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    while_locked(lambda: conn.execute("PRAGMA journal_mode = WAL"))
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def while_locked(statement: Callable[[], object]) -> None:
    """Run `statement`, again while SQLite answers "database is locked" (up to the busy
    timeout). Processes opening a new file at once (`serve --workers N`) each switch it
    to WAL and create the schema; SQLite refuses one of two such lock upgrades at once,
    without waiting, since waiting could deadlock, so the busy timeout alone is no help."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            statement()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)

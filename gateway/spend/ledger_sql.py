"""The SQLite ledger's schema and its write operations, with no heavy imports.

Shared by the gateway (reads, schema, recovery) and the ledger writer process
(`ledger_writer`), which must start fast and so imports nothing but this, the way every
SQLite file is opened (`sqlitefile.py`) and the stored-response owners' own light
module (`stored/owners_file.py`).
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Sequence
from typing import Any

from gateway.sqlitefile import while_locked

COLUMNS: tuple[str, ...] = (
    "ts", "request_id", "trace_id", "key_alias", "team", "key_id", "operation",
    "model_requested", "model_served", "provider", "input_tokens", "output_tokens",
    "cached_tokens", "reasoning_tokens", "cost_nanos", "status", "estimated", "stream",
    "attempt", "tags", "end_user", "cache_write_tokens", "cache_write_1h_tokens", "unpriced",
    "input_audio_tokens", "output_audio_tokens", "input_image_tokens", "output_image_tokens",
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    request_id TEXT NOT NULL,
    trace_id TEXT NOT NULL,
    key_alias TEXT NOT NULL,
    team TEXT NOT NULL,
    key_id TEXT,
    operation TEXT NOT NULL,
    model_requested TEXT NOT NULL,
    model_served TEXT NOT NULL,
    provider TEXT NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cached_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL,
    cost_nanos INTEGER NOT NULL,
    status TEXT NOT NULL,
    estimated INTEGER NOT NULL,
    stream INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    owner TEXT,
    tags TEXT NOT NULL DEFAULT '',
    end_user TEXT NOT NULL DEFAULT '',
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    cache_write_1h_tokens INTEGER NOT NULL DEFAULT 0,
    unpriced INTEGER NOT NULL DEFAULT 0,
    input_audio_tokens INTEGER NOT NULL DEFAULT 0,
    output_audio_tokens INTEGER NOT NULL DEFAULT 0,
    input_image_tokens INTEGER NOT NULL DEFAULT 0,
    output_image_tokens INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS ledger_ts ON ledger(ts);
CREATE INDEX IF NOT EXISTS ledger_pending ON ledger(owner) WHERE status = 'pending';
CREATE TABLE IF NOT EXISTS keys (
    key_sha256 TEXT PRIMARY KEY,
    alias TEXT NOT NULL,
    team TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL,
    allowed_models TEXT,
    budget_usd_per_day TEXT,
    budget_usd_per_month TEXT,
    expires_at REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS keys_active_alias ON keys(alias) WHERE revoked_at IS NULL;
CREATE TABLE IF NOT EXISTS notices (claim TEXT PRIMARY KEY, at REAL NOT NULL);
"""

INSERT = (f"INSERT INTO ledger ({', '.join(COLUMNS)}, owner) "
          f"VALUES ({', '.join('?' for _ in COLUMNS)}, ?)")
UPDATE = (f"UPDATE ledger SET {', '.join(f'{c} = ?' for c in COLUMNS)}, owner = NULL "
          "WHERE id = ?")

# Write operations, as the gateway sends them to the writer: [kind, *params].
OP_INSERT = "i"  # [i, *row, owner] -> None
OP_JOURNAL = "j"  # [j, *row, owner] -> the new row id
OP_UPDATE = "u"  # [u, *row, row id] -> None
OP_DELETE = "d"  # [d, row id] -> None
OP_CLAIM = "c"  # [c, claim, now] -> True for the first claim


# Columns added after the first release: a ledger file written before them gets them
# (with their defaults) when the gateway or the CLI next opens it.
ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("ledger", "tags", "TEXT NOT NULL DEFAULT ''"),
    ("ledger", "end_user", "TEXT NOT NULL DEFAULT ''"),
    ("keys", "expires_at", "REAL"),
    ("ledger", "cache_write_tokens", "INTEGER NOT NULL DEFAULT 0"),
    ("ledger", "cache_write_1h_tokens", "INTEGER NOT NULL DEFAULT 0"),
    ("ledger", "unpriced", "INTEGER NOT NULL DEFAULT 0"),
    ("ledger", "input_audio_tokens", "INTEGER NOT NULL DEFAULT 0"),
    ("ledger", "output_audio_tokens", "INTEGER NOT NULL DEFAULT 0"),
    ("ledger", "input_image_tokens", "INTEGER NOT NULL DEFAULT 0"),
    ("ledger", "output_image_tokens", "INTEGER NOT NULL DEFAULT 0"),
)


def init_schema(conn: sqlite3.Connection) -> None:
    while_locked(lambda: conn.executescript(SCHEMA))
    for table, column, kind in ADDED_COLUMNS:
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            while_locked(functools.partial(_add_column, conn, table, column, kind))


def _add_column(conn: sqlite3.Connection, table: str, column: str, kind: str) -> None:
    try:
        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    except sqlite3.OperationalError as exc:
        if "duplicate column" not in str(exc):  # another process added it first
            raise


def apply(conn: sqlite3.Connection, ops: Sequence[Sequence[Any]]) -> list[Any]:
    """Run `ops` in one transaction; one result per op. Plain inserts go in one
    executemany call."""
    results: list[Any] = []
    inserts: list[Sequence[Any]] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for op in ops:
            kind = op[0]
            if kind == OP_INSERT:
                inserts.append(op[1:])
                results.append(None)
                continue
            if inserts:
                conn.executemany(INSERT, inserts)
                inserts = []
            results.append(_one(conn, kind, op))
        if inserts:
            conn.executemany(INSERT, inserts)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return results


def _one(conn: sqlite3.Connection, kind: str, op: Sequence[Any]) -> Any:
    if kind == OP_JOURNAL:
        return conn.execute(INSERT, op[1:]).lastrowid
    if kind == OP_UPDATE:
        conn.execute(UPDATE, op[1:])
        return None
    if kind == OP_DELETE:
        conn.execute("DELETE FROM ledger WHERE id = ?", (op[1],))
        return None
    if kind == OP_CLAIM:
        cur = conn.execute("INSERT OR IGNORE INTO notices (claim, at) VALUES (?, ?)",
                           (op[1], op[2]))
        return cur.rowcount == 1
    raise ValueError(f"unknown ledger operation {kind!r}")

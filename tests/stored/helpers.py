"""Reading the stored-response owners' SQLite file as tests check it."""

from __future__ import annotations

from pathlib import Path

from gateway.stored.owners_file import open_owners


def owners_in(path: Path | str) -> dict[str, tuple[str, str]]:
    """id -> (provider, model) of every owner in the file (its table made if a writer
    has made only the file so far)."""
    conn = open_owners(str(path))
    try:
        return {row[0]: (row[1], row[2])
                for row in conn.execute("SELECT id, provider, model FROM response_owners")}
    finally:
        conn.close()

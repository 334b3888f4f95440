"""The owners' file as the ledger writer process keeps it: owners gathered over a flush
interval and written in one transaction, forgotten ones never written after their
delete, what is pending written at the end, a failing write reported and survived."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.stored.owners_file import OP_FORGET, OP_OWNER, OwnerBatch, open_owners, owners_path
from tests.stored.helpers import owners_in


def test_owners_wait_for_their_flush_interval_then_go_in_one_write(tmp_path: Path) -> None:
    """Owners taken are not written before the batch is due; once due, all of them are."""
    path = tmp_path / "owners.sqlite3"
    batch = OwnerBatch(str(path), flush_s=3600)
    batch.take([OP_OWNER, "resp_a", "oai", "gpt-4.1"])
    batch.take([OP_OWNER, "resp_b", "oai", "gpt-4.1-mini"])
    batch.flush(due_only=True)
    assert owners_in(path) == {} and 0 < (batch.wait_s() or 0) <= 3600
    batch.due = 0.0  # the interval has passed
    batch.flush(due_only=True)
    assert owners_in(path) == {"resp_a": ("oai", "gpt-4.1"), "resp_b": ("oai", "gpt-4.1-mini")}
    assert batch.wait_s() is None  # nothing pending: the writer may block on its pipe
    batch.close()


def test_a_forgotten_owner_is_dropped_pending_and_written(tmp_path: Path) -> None:
    """A forget removes a written owner from the file at once, and a pending one is never
    written."""
    path = tmp_path / "owners.sqlite3"
    batch = OwnerBatch(str(path), flush_s=3600)
    batch.take([OP_OWNER, "resp_old", "oai", "gpt-4.1"])
    batch.flush()
    batch.take([OP_OWNER, "resp_new", "oai", "gpt-4.1"])
    batch.take([OP_FORGET, "resp_old"])
    batch.take([OP_FORGET, "resp_new"])
    assert owners_in(path) == {}
    batch.close()
    assert owners_in(path) == {}


def test_closing_writes_what_is_pending(tmp_path: Path) -> None:
    """The writer's end (its pipe closed) writes the owners not yet due."""
    path = tmp_path / "owners.sqlite3"
    batch = OwnerBatch(str(path), flush_s=3600)
    batch.take([OP_OWNER, "resp_last", "oai", "gpt-4.1"])
    batch.close()
    assert owners_in(path) == {"resp_last": ("oai", "gpt-4.1")}


def test_a_failed_write_is_reported_and_the_batch_goes_on(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """An owners' file that cannot be opened costs those owners, reported on stderr with
    the file's path; the writer process does not fail."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    batch = OwnerBatch(str(blocker / "owners.sqlite3"), flush_s=0)
    batch.take([OP_OWNER, "resp_x", "oai", "gpt-4.1"])
    batch.flush()
    batch.close()
    assert "could not store the owners of 1 responses" in capsys.readouterr().err
    assert batch.pending == {}


def test_the_file_the_gateway_reads_is_the_one_the_writer_writes(tmp_path: Path) -> None:
    """The owners' file is named from the ledger's, and a batch writes rows the gateway's
    own statements read."""
    path = owners_path(str(tmp_path / "gateway.sqlite3"))
    assert path == str(tmp_path / "gateway-owners.sqlite3")
    batch = OwnerBatch(path)
    batch.take([OP_OWNER, "resp_1", "oai", "gpt-4.1"])
    batch.close()
    conn = open_owners(path)
    try:
        found = conn.execute("SELECT provider, model, created > 0 FROM response_owners "
                             "WHERE id = 'resp_1'").fetchone()
    finally:
        conn.close()
    assert found == ("oai", "gpt-4.1", 1)

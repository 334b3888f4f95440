"""The ledger writer: a child process that owns every write to the SQLite ledger.

Why a process and not a thread: a writer thread has to take the GIL for every
batch and every statement, and under load the event loop holds it, so each
hand-over costs forced GIL switches on the request path. A child process
shares no GIL: the gateway writes length-prefixed frames to its stdin and reads
acknowledgements from its stdout, both non-blocking on the event loop.

Protocol (orjson): request frame `[seq, [op, ...]]`, reply frame
`[seq, [result, ...]]`, `[seq, [result, ...], [[index, "error"], ...]]` when some
ops failed, or `[seq, null, "error"]` when all did. Every frame read by one
`read()` is committed in one transaction (group commit), and only then
acknowledged, so an acknowledged write is in the WAL. When a group commit fails,
each op is applied again in a transaction of its own, so one bad write fails
alone and the others' callers never see its error. On EOF (the gateway
closed it, or was killed) the writer commits what it has read and exits; it
ignores SIGINT, SIGTERM and SIGHUP, which a terminal or a service manager sends
to the whole process group while the gateway is still draining.

The stored-response owners ride on the same pipe (`stored/owners_file.py`'s
`OP_OWNER` and `OP_FORGET`, with the owners' file as a second argument): they are
set aside from the ledger's transaction into an `OwnerBatch`, written to their own
file in one transaction `FLUSH_S` after the first of a batch (the writer waits for
input no longer than that), and acknowledged with their frame before they are
written: nobody waits for an owner, and the file is written from this process, so
the gateway spends no SQLite work on them. On EOF what is pending is written.

Run as `python -m gateway.spend.ledger_writer PATH [OWNERS_PATH]`; it imports
nothing heavy.
"""

from __future__ import annotations

import os
import select
import signal
import struct
import sys
from typing import Any

import orjson

from gateway.spend.ledger_sql import apply
from gateway.sqlitefile import connect
from gateway.stored.owners_file import OWNER_OPS, OwnerBatch

HEADER = struct.Struct("!I")
_READ = 1 << 20


def frame(payload: Any) -> bytes:
    body = orjson.dumps(payload)
    return HEADER.pack(len(body)) + body


def split(buffer: bytearray) -> list[Any]:
    """Whole frames at the start of `buffer` (removed from it), decoded."""
    found: list[Any] = []
    offset = 0
    while len(buffer) - offset >= HEADER.size:
        (size,) = HEADER.unpack_from(buffer, offset)
        end = offset + HEADER.size + size
        if end > len(buffer):
            break
        found.append(orjson.loads(bytes(buffer[offset + HEADER.size:end])))
        offset = end
    del buffer[:offset]
    return found


def serve(path: str, stdin: int, stdout: int, owners: OwnerBatch | None = None) -> None:
    conn = connect(path)
    buffer = bytearray()
    try:
        while True:
            if owners is not None and not _readable(stdin, owners.wait_s()):
                owners.flush()  # due, and nothing came meanwhile
                continue
            chunk = os.read(stdin, _READ)
            if not chunk:
                return
            buffer += chunk
            frames = split(buffer)
            if frames:
                _commit(conn, owners, frames, stdout)
            if owners is not None:
                owners.flush(due_only=True)
    finally:
        if owners is not None:
            owners.close()
        conn.close()


def _readable(fd: int, timeout: float | None) -> bool:
    """Whether `fd` has input (or EOF) within `timeout` seconds (None: block in read)."""
    return timeout is None or bool(select.select([fd], [], [], timeout)[0])


def _aside(op: Any, owners: OwnerBatch | None) -> bool:
    """An owner op, for the owners' batch rather than the ledger's transaction."""
    return owners is not None and op[0] in OWNER_OPS


def _commit(conn: Any, owners: OwnerBatch | None, frames: list[Any], stdout: int) -> None:
    ops = [op for _, batch in frames for op in batch]
    ledger = []
    for op in ops:  # owner ops go to their batch, the rest to the ledger's transaction
        if owners is not None and op[0] in OWNER_OPS:
            owners.take(op)
        else:
            ledger.append(op)
    try:
        results = apply(conn, ledger) if ledger else []
    except Exception:  # one bad op must not fail the group: each op again, on its own
        replies = b"".join(_one_by_one(conn, owners, seq, batch) for seq, batch in frames)
    else:
        if len(ledger) < len(ops):  # owner ops answer None, in their places
            done = iter(results)
            results = [None if _aside(op, owners) else next(done) for op in ops]
        out, index = [], 0
        for seq, batch in frames:
            out.append(frame([seq, results[index:index + len(batch)]]))
            index += len(batch)
        replies = b"".join(out)
    view = memoryview(replies)
    while view:
        written = os.write(stdout, view)
        view = view[written:]


def _one_by_one(conn: Any, owners: OwnerBatch | None, seq: int, batch: list[Any]) -> bytes:
    """A frame's ops in a transaction each, after its group commit failed: the reply
    carries every result and, by index, the ops that failed. Owner ops were taken already."""
    results: list[Any] = []
    failures: list[list[Any]] = []
    for index, op in enumerate(batch):
        if _aside(op, owners):
            results.append(None)
            continue
        try:
            results.extend(apply(conn, [op]))
        except Exception as exc:
            results.append(None)
            failures.append([index, f"{type(exc).__name__}: {exc}"])
    if failures and len(failures) == len(batch):
        return frame([seq, None, failures[0][1]])
    return frame([seq, results, failures] if failures else [seq, results])


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print("usage: python -m gateway.spend.ledger_writer PATH [OWNERS_PATH]", file=sys.stderr)
        return 2
    # A terminal's Ctrl-C or hang-up, or a service manager's SIGTERM, reaches the whole
    # process group: the gateway then drains, and its last writes need this process.
    # It exits when the gateway closes the pipe (or dies).
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    owners = OwnerBatch(argv[1]) if len(argv) == 2 else None
    serve(argv[0], sys.stdin.fileno(), sys.stdout.fileno(), owners)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

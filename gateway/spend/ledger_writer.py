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

Run as `python -m gateway.spend.ledger_writer PATH`; it imports nothing heavy.
"""

from __future__ import annotations

import os
import signal
import struct
import sys
from typing import Any

import orjson

from gateway.spend.ledger_sql import apply, connect

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


def serve(path: str, stdin: int, stdout: int) -> None:
    conn = connect(path)
    buffer = bytearray()
    try:
        while True:
            chunk = os.read(stdin, _READ)
            if not chunk:
                return
            buffer += chunk
            frames = split(buffer)
            if frames:
                _commit(conn, frames, stdout)
    finally:
        conn.close()


def _commit(conn: Any, frames: list[Any], stdout: int) -> None:
    ops = [op for _, batch in frames for op in batch]
    try:
        results = apply(conn, ops)
    except Exception:  # one bad op must not fail the group: each op again, on its own
        replies = b"".join(_one_by_one(conn, seq, batch) for seq, batch in frames)
    else:
        out, index = [], 0
        for seq, batch in frames:
            out.append(frame([seq, results[index:index + len(batch)]]))
            index += len(batch)
        replies = b"".join(out)
    view = memoryview(replies)
    while view:
        written = os.write(stdout, view)
        view = view[written:]


def _one_by_one(conn: Any, seq: int, batch: list[Any]) -> bytes:
    """A frame's ops in a transaction each, after its group commit failed: the reply
    carries every result and, by index, the ops that failed."""
    results: list[Any] = []
    failures: list[list[Any]] = []
    for index, op in enumerate(batch):
        try:
            results.extend(apply(conn, [op]))
        except Exception as exc:
            results.append(None)
            failures.append([index, f"{type(exc).__name__}: {exc}"])
    if failures and len(failures) == len(batch):
        return frame([seq, None, failures[0][1]])
    return frame([seq, results, failures] if failures else [seq, results])


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m gateway.spend.ledger_writer PATH", file=sys.stderr)
        return 2
    # A terminal's Ctrl-C or hang-up, or a service manager's SIGTERM, reaches the whole
    # process group: the gateway then drains, and its last writes need this process.
    # It exits when the gateway closes the pipe (or dies).
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    serve(argv[0], sys.stdin.fileno(), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

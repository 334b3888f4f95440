"""The ledger writer: a child process that owns every write to the SQLite ledger.

Why a process and not a thread: a writer thread has to take the GIL for every
batch and every statement, and under load the event loop holds it, so each
hand-over costs forced GIL switches on the request path. A child process
shares no GIL: the gateway writes length-prefixed frames to its stdin and reads
acknowledgements from its stdout, both non-blocking on the event loop.

Protocol (orjson): request frame `[seq, [op, ...]]`, reply frame
`[seq, [result, ...]]` or `[seq, null, "error"]`. Every frame read by one
`read()` is committed in one transaction (group commit), and only then
acknowledged, so an acknowledged write is in the WAL. On EOF (the gateway
closed it, or was killed) the writer commits what it has read and exits.

Run as `python -m gateway.spend.ledger_writer PATH`; it imports nothing heavy.
"""

from __future__ import annotations

import os
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
    except Exception as exc:  # the whole group fails; the gateway logs it
        replies = b"".join(frame([seq, None, f"{type(exc).__name__}: {exc}"]) for seq, _ in frames)
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


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m gateway.spend.ledger_writer PATH", file=sys.stderr)
        return 2
    serve(argv[0], sys.stdin.fileno(), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

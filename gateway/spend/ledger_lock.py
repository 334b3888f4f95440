"""One storage owner per SQLite ledger, and who owns a journal row.

With SQLite each gateway counts budgets in its own memory, so two gateways on
one file would each let through a full budget. The first to start takes an OS
lock (`flock`) on a file beside the ledger (`<ledger>.lock`) and holds it for
its whole life; the kernel drops it when the process dies, however it dies. A
second gateway finds it taken and refuses to start, naming the file and the
holder's pid. `serve --workers N` takes it in the parent, and the workers
inherit the locked descriptor (they share budgets as 1/N shares).

The lock also answers whether a journal row's owner still runs. Every holder
writes a fresh session id into the lock file; each row's owner token starts
with it (`session:host:pid:start`). Whoever holds the lock knows that every
other session is over, so their pending rows are charged at once, even when the
crashed process is an unreaped zombie, its pid was reused, or it ran in a
container with another host name. A row of this session belongs to a sibling
worker, which is alive while its process runs and is not a zombie.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the config imports spend modules
    from gateway.config import StorageConfig

ENV_LOCK_FD = "GATEWAY_LEDGER_LOCK_FD"  # set by `serve --workers` for its workers
LOCK_SUFFIX = ".lock"
_PROC = Path("/proc/self/stat")


class LedgerInUse(RuntimeError):
    """Another gateway process holds this ledger."""

    def __init__(self, ledger: str, pid: int | None) -> None:
        holder = f"process {pid}" if pid else "another process"
        super().__init__(
            f"the spend ledger {os.path.abspath(ledger)} is in use by another gateway "
            f"({holder} holds {os.path.abspath(ledger + LOCK_SUFFIX)}). Two gateways on one "
            "SQLite file would each enforce every budget in full. Stop that gateway, give this "
            "one its own storage.sqlite_path, run several processes with `serve --workers N`, "
            "or share budgets across gateways with storage.backend: redis.")
        self.ledger = ledger
        self.pid = pid


@dataclass
class LedgerLock:
    """The held lock: its descriptor and the session id written into the lock file."""

    fd: int
    session: str
    inherited: bool  # a `--workers` parent holds it; this process must not close it

    def release(self) -> None:
        if not self.inherited:
            with contextlib.suppress(OSError):
                os.close(self.fd)  # closing the descriptor drops the flock


def acquire(ledger: str, environ: Mapping[str, str]) -> LedgerLock:
    """The ledger's lock: inherited from a `--workers` parent, else taken now (or
    LedgerInUse)."""
    path = ledger + LOCK_SUFFIX
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    inherited = _inherited(path, environ)
    if inherited is not None:
        return inherited
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _holder_pid(fd)
        os.close(fd)
        raise LedgerInUse(ledger, pid) from None
    except BaseException:
        os.close(fd)
        raise
    session = secrets.token_hex(8)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} {session}\n".encode(), 0)
    return LedgerLock(fd, session, inherited=False)


def hold_for_workers(storage: StorageConfig) -> dict[str, int]:
    """In the `serve --workers` parent: take the SQLite ledger's lock for the workers, who
    inherit it (as {ENV_LOCK_FD: fd}); nothing with Redis. Held until the parent exits."""
    if storage.backend == "redis" and storage.redis_url:
        return {}
    return {ENV_LOCK_FD: acquire(storage.sqlite_path, {}).fd}


def _inherited(path: str, environ: Mapping[str, str]) -> LedgerLock | None:
    """The parent's locked descriptor, when it is this very lock file."""
    raw = environ.get(ENV_LOCK_FD, "")
    if not raw.isdigit():
        return None
    fd = int(raw)
    try:
        held, here = os.fstat(fd), os.stat(path)
    except OSError:
        return None
    if (held.st_dev, held.st_ino) != (here.st_dev, here.st_ino):
        return None
    _, _, session = os.pread(fd, 256, 0).decode("ascii", "replace").partition(" ")
    return LedgerLock(fd, session.strip(), inherited=True)


def _holder_pid(fd: int) -> int | None:
    text = os.pread(fd, 256, 0).decode("ascii", "replace").split()
    return int(text[0]) if text and text[0].isdigit() else None


# --- journal row owners ----------------------------------------------------------------


def owner_token(session: str) -> str:
    pid = os.getpid()
    return f"{session}:{socket.gethostname()}:{pid}:{process_start(pid)}"


def owner_alive(owner: str, session: str) -> bool:
    """Whether the gateway process that wrote a pending row may still settle it. Called
    by the lock's holder: an owner of another session is gone."""
    parts = owner.split(":")
    if len(parts) != 4 or parts[0] != session:
        return False
    _, host, pid_text, started = parts
    if host != socket.gethostname() or not pid_text.isdigit():
        return True  # pragma: no cover - one session never spans hosts
    return process_running(int(pid_text), started)


def process_running(pid: int, started: str) -> bool:
    """The process runs (a zombie has exited: it only waits to be reaped) and is the
    one that started at `started` (not a later process given the same pid)."""
    if not _PROC.exists():  # no /proc (macOS): whether the pid exists is all we know
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True
    stat = _stat(pid)
    if stat is None:
        return False
    state, start = stat
    return state not in ("Z", "X") and (not started or start == started)


def process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot: pid + this is unique per boot."""
    stat = _stat(pid)
    return stat[1] if stat is not None else ""


def _stat(pid: int) -> tuple[str, str] | None:
    """(state, start time) from /proc/<pid>/stat; None when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # the name, in parentheses, may hold spaces
    return fields[0], fields[19]

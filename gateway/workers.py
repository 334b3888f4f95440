"""`llm-gateway serve --workers N`: N gateway processes on one port (SO_REUSEPORT).

The parent binds nothing: it starts N copies of `python -m gateway serve` with
GATEWAY_WORKER_INDEX set, each of which binds the port with SO_REUSEPORT (the
kernel spreads connections over them), forwards SIGTERM/SIGINT/SIGHUP to them,
restarts nothing, and exits when all of them have, with the first non-zero
status (or 0).

Telemetry stays correct by construction: each worker has its own
`service.instance.id` (the base id with `-w<index>`), so OTLP series never
collide; and `/metrics` on the main port, whichever worker answers, returns
that worker's fresh exposition plus the latest one each other worker wrote to
the shared run directory (every second and on shutdown), every series
labelled `worker="<index>"`. `sum(gateway_requests_total)` is then the total.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType

_log = logging.getLogger("gateway.workers")

ENV_INDEX = "GATEWAY_WORKER_INDEX"
ENV_COUNT = "GATEWAY_WORKER_COUNT"
ENV_DIR = "GATEWAY_WORKER_DIR"
ENV_PARENT_FD = "GATEWAY_WORKER_PARENT_FD"
WORKER_LABEL = "worker"
WRITE_INTERVAL_S = 1.0


def worker_index(environ: Mapping[str, str]) -> int | None:
    """This process's worker index, or None outside `--workers`."""
    raw = environ.get(ENV_INDEX)
    return int(raw) if raw is not None and raw.isdigit() else None


# --- the parent ---------------------------------------------------------------------


def run_workers(count: int, worker_args: Sequence[str], *, shared_fds: Mapping[str, int] | None = None
                ) -> int:
    """Start `count` workers (`python -m gateway serve <worker_args>`) and wait for them.
    `shared_fds`: descriptors the workers inherit, each under its environment variable
    (the ledger's lock, held by this process for all of them)."""
    shared = dict(shared_fds or {})
    run_dir = tempfile.mkdtemp(prefix="llm-gateway-workers-")
    # Each worker watches the read end: when the parent dies without a chance to
    # forward a signal (SIGKILL), its workers see EOF and shut down.
    watch_read, watch_write = os.pipe()
    children: list[subprocess.Popen[bytes]] = []
    base_id = os.environ.get("GATEWAY_INSTANCE_ID") or uuid.uuid4().hex  # workers: <base>-w<i>
    try:
        for index in range(count):
            env = dict(os.environ)
            env["GATEWAY_INSTANCE_ID"] = base_id
            env.update({ENV_INDEX: str(index), ENV_COUNT: str(count), ENV_DIR: run_dir,
                        ENV_PARENT_FD: str(watch_read)})
            env.update({name: str(fd) for name, fd in shared.items()})
            # A process group of its own: a terminal's Ctrl-C reaches the parent only,
            # which forwards it once (a second SIGINT would cut the workers' drain short).
            children.append(subprocess.Popen(
                [sys.executable, "-m", "gateway", "serve", *worker_args], env=env,
                pass_fds=(watch_read, *shared.values()), process_group=0))
        os.close(watch_read)
        _log.info("started %d workers: %s", count, ", ".join(str(c.pid) for c in children))
        return _wait(children)
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
        with contextlib.suppress(OSError):
            os.close(watch_write)
        shutil.rmtree(run_dir, ignore_errors=True)


def _wait(children: list[subprocess.Popen[bytes]]) -> int:
    def forward(signum: int, frame: FrameType | None) -> None:
        for child in children:
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward)
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        codes = [child.wait() for child in children]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    failed = [code for code in codes if code != 0]
    return failed[0] if failed else 0


def watch_parent(environ: Mapping[str, str],
                 on_orphaned: Callable[[], None] | None = None) -> None:
    """In a worker: SIGTERM ourselves when the parent's end of the watch pipe closes."""
    raw = environ.get(ENV_PARENT_FD)
    if raw is None or not raw.isdigit():
        return
    fd = int(raw)

    def wait_for_eof() -> None:
        with contextlib.suppress(OSError):
            while os.read(fd, 1):
                pass
        _log.warning("the parent process is gone; shutting down")
        (on_orphaned or (lambda: os.kill(os.getpid(), signal.SIGTERM)))()

    threading.Thread(target=wait_for_eof, name="worker-parent-watch", daemon=True).start()


# --- /metrics across workers ---------------------------------------------------------


def label_exposition(text: str, worker: str) -> str:
    """Every sample line of a Prometheus text exposition with `worker="<worker>"` added."""
    label = f'{WORKER_LABEL}="{worker}"'
    out = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            brace = line.find("{")
            space = line.find(" ")
            if brace != -1 and (space == -1 or brace < space):
                line = f"{line[:brace + 1]}{label},{line[brace + 1:]}"
            elif space != -1:
                line = f"{line[:space]}{{{label}}}{line[space:]}"
        out.append(line)
    return "\n".join(out) + "\n"


def merge_expositions(texts: Sequence[str]) -> str:
    """One exposition from several: each metric family once (its HELP and TYPE from
    the first text that has it), with the samples of every text under it."""
    families: dict[str, tuple[list[str], list[str]]] = {}
    for text in texts:
        current: list[str] | None = None
        for line in text.splitlines():
            if not line:
                continue
            if line.startswith("# HELP ") or line.startswith("# TYPE "):
                name = line.split(" ", 3)[2]
                meta, samples = families.setdefault(name, ([], []))
                if not any(m.startswith(line[:7]) for m in meta):
                    meta.append(line)
                current = samples
            elif line.startswith("#"):
                continue
            elif current is not None:
                current.append(line)
            else:
                families.setdefault(line.split("{", 1)[0].split(" ", 1)[0], ([], []))[1].append(line)
    lines: list[str] = []
    for meta, samples in families.values():
        lines += meta
        lines += samples
    return "\n".join(lines) + "\n"


class WorkerExposition:
    """One worker's share of `/metrics`: writes its own, reads the others'."""

    def __init__(self, directory: str, index: int, own: Callable[[], bytes]) -> None:
        self.directory = Path(directory)
        self.index = index
        self._own = own
        self._path = self.directory / f"worker-{index}.prom"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def own_text(self) -> str:
        return label_exposition(self._own().decode("utf-8"), str(self.index))

    def write(self) -> str:
        """Write this worker's labelled exposition atomically; returns it."""
        text = self.own_text()
        tmp = self._path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(text, "utf-8")
        os.replace(tmp, self._path)
        return text

    def merged(self) -> bytes:
        """This worker's fresh series followed by every other worker's latest."""
        texts = [self.write()]
        for path in sorted(self.directory.glob("worker-*.prom")):
            if path != self._path:
                with contextlib.suppress(OSError):
                    texts.append(path.read_text("utf-8"))
        return merge_expositions(texts).encode("utf-8")

    def start(self, interval_s: float = WRITE_INTERVAL_S) -> None:
        """Write now (other workers' /metrics then know this one exists), then every
        `interval_s` in a daemon thread."""
        def loop() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.write()
                except Exception:
                    _log.exception("could not write this worker's metrics to %s", self._path)

        with contextlib.suppress(OSError):
            self.write()
        self._thread = threading.Thread(target=loop, name="worker-metrics-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the periodic writer and write one last time (the final counts)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        with contextlib.suppress(OSError):
            self.write()


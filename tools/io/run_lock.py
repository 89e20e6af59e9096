"""One writer per run: an OS file lock in the run directory, with who holds it and since when.

The lock is an flock (via filelock): the operating system drops it when its process dies, so a
lock left by a killed run is taken over by the next one, and its holder record overwritten.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from postlab.tools.io.atomic import write_json_atomic

LOCK_FILE = ".run.lock"
HOLDER_FILE = "lock.json"


class RunLocked(RuntimeError):
    """Another process is running this run."""


def _holder(run_dir: Path) -> str:
    try:
        holder = json.loads((run_dir / HOLDER_FILE).read_text())
        return f"pid {holder['pid']} on {holder['host']} since {holder['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@contextmanager
def hold_run(run_dir: Path) -> Iterator[None]:
    """Hold the run's lock for the duration, or raise RunLocked naming the holder."""
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(run_dir / LOCK_FILE), timeout=0)
    try:
        lock.acquire()
    except Timeout as error:
        raise RunLocked(
            f"run {run_dir.name} is in use by {_holder(run_dir)}; wait for it to finish or "
            "stop that process, then resume"
        ) from error
    try:
        write_json_atomic(
            run_dir / HOLDER_FILE,
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "since": time.strftime("%Y-%m-%dT%H:%M:%S"),
            },
        )
        yield
    finally:
        (run_dir / HOLDER_FILE).unlink(missing_ok=True)
        lock.release()


def check_free(run_dir: Path) -> None:
    """Raise RunLocked when another process holds the run (a probe: takes nothing)."""
    if not (run_dir / LOCK_FILE).exists():
        return
    with hold_run(run_dir):
        pass

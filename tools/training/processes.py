"""Process groups of training workers: stopping them, and finding ones a killed run left behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from postlab.tools.io.pids import process_running
from postlab.tools.training.warm_start import LAUNCHER_MODULE

# Seconds between SIGTERM and SIGKILL when a process group is stopped.
KILL_GRACE_S = 5.0
WORKER_MODULE = "postlab.tools.training.worker"
PID_FILE = "worker.pid"


def kill_group(proc: subprocess.Popen, grace_s: float = KILL_GRACE_S) -> None:
    """Stop a worker and everything it started: SIGTERM the group, then SIGKILL what is left."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace_s)
    # Grandchildren (wandb's service, dataloader workers) may outlive the leader.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace_s)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def works_in(pid: int, out_dir: Path) -> bool:
    """Whether `pid` is a training worker (started cold, or forked warm) for `out_dir`: every
    worker runs in its output folder."""
    cmdline = _cmdline(pid)
    if WORKER_MODULE not in cmdline and LAUNCHER_MODULE not in cmdline:
        return False
    try:
        return os.readlink(f"/proc/{pid}/cwd") == str(Path(out_dir).resolve())
    except OSError:
        return False


def end_orphaned_worker(out_dir: Path, grace_s: float = KILL_GRACE_S) -> int | None:
    """End a worker still training into `out_dir` for a process that no longer exists.

    A run killed mid-training leaves its worker running in its own session (so that a crash of
    the graph cannot take training down with it); on resume that worker must not race a new one
    writing the same folder. Returns the pid ended, or None.
    """
    pid_file = out_dir / PID_FILE
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    # The pid may have been reused by an unrelated process: only a worker for this folder counts.
    if not process_running(pid) or not works_in(pid, out_dir):
        pid_file.unlink(missing_ok=True)
        return None
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while process_running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return pid

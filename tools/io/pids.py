"""Whether a process is still running, by its pid."""

from __future__ import annotations

import psutil


def process_running(pid: int) -> bool:
    """Whether `pid` names a running process (another user's counts; a zombie does not)."""
    try:
        # A zombie has exited; only its parent can still reap it.
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, ValueError):  # gone, or no pid at all (a negative number)
        return False
    except psutil.AccessDenied:
        return True

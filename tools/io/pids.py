"""Whether a process is still running, by its pid."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def process_running(pid: int) -> bool:
    """Whether `pid` names a running process (another user's counts; a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie has exited; only its parent can still reap it.
    status = Path(f"/proc/{pid}/status")
    with contextlib.suppress(OSError):
        return "State:\tZ" not in status.read_text()
    return True

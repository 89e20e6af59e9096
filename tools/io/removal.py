"""Removing large files and folders off the caller's clock: each is renamed aside at once, so
nothing sees it half gone, and deleted on a thread. Freeing a checkpoint's or an optimiser
state's blocks takes 0.1 to 0.25 s of kernel time here, which the lab need not wait for.
"""

from __future__ import annotations

import contextlib
import shutil
import uuid
from pathlib import Path

from postlab.tools.io.background import BackgroundWork

# Names of entries set aside for removal; one a killed process left behind starts the same way.
ASIDE_PREFIX = ".removing-"
_REMOVALS = BackgroundWork("postlab-removal")


def remove_aside(path: Path) -> None:
    """Rename `path` (a file or a folder) aside now and delete it on a thread."""
    path = Path(path)
    aside = path.with_name(f"{ASIDE_PREFIX}{path.name}-{uuid.uuid4().hex[:12]}")
    try:
        path.rename(aside)
    except FileNotFoundError:
        return
    except OSError:
        # A rename can still be refused (a read-only parent, a mount point): delete in place.
        _delete(path)
        return
    _REMOVALS.start(_delete, aside)


def wait_for_removals() -> None:
    """Wait until everything set aside by this process is deleted."""
    _REMOVALS.wait()


def remove_left_aside(folder: Path) -> list[str]:
    """Delete what earlier processes set aside under `folder`'s subfolders and never finished
    deleting (they were killed); the names removed."""
    wait_for_removals()
    left = sorted(Path(folder).glob(f"*/{ASIDE_PREFIX}*"))
    for path in left:
        _delete(path)
    return [path.name for path in left]


def _delete(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

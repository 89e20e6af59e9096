"""Where a warm launcher keeps its socket and temporary files, and the sweep of folders whose
launcher is gone (killed with its lab's whole process group, it could not remove its own)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import psutil

# The longest Unix socket path a bind takes everywhere (sun_path: 104 bytes on macOS, 108 on
# Linux); a deeper temporary folder would leave every worker to start cold.
MAX_SOCKET_PATH = 103
# Where the launcher's folder goes when the temporary folder is too deep for its socket.
_SHORT_TMP = "/tmp"
_FOLDER_PREFIX = "postlab-launcher-"
# In a launcher's folder: its process id, so a later lab can tell a folder whose launcher died.
_PID_FILE = "pid"
SOCKET_NAME = "socket"
# The launcher's TMPDIR: what its libraries create at import (wandb stages media there) goes
# with its folder, since the launcher is killed when it stops and their clean-ups never run.
TMP_NAME = "tmp"


def _serves(folder: Path) -> bool:
    """Whether the launcher that made `folder` still runs: its pid's command line names the
    folder's socket."""
    try:
        pid = int((folder / _PID_FILE).read_text())
        command = psutil.Process(pid).cmdline()
    except (OSError, ValueError, psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.Error:  # another user's process, say: not ours to judge
        return True
    return str(folder / SOCKET_NAME) in command


def remove_dead_launcher_folders(base: Path) -> list[Path]:
    """Remove the folders under `base` of this user's launchers that are gone; those removed."""
    removed = []
    for folder in base.glob(f"{_FOLDER_PREFIX}*"):
        try:
            mine = folder.is_dir() and folder.stat().st_uid == os.getuid()
        except OSError:
            continue
        # A folder with no pid file is being made, or is an older version's: left alone.
        if mine and (folder / _PID_FILE).is_file() and not _serves(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def new_launcher_folder() -> Path:
    """A new folder (with its temporary folder) for a launcher, shallow enough to bind in; the
    folders of launchers that are gone are swept first."""
    for base in dict.fromkeys((tempfile.gettempdir(), _SHORT_TMP)):
        if os.path.isdir(base):
            remove_dead_launcher_folders(Path(base))
    folder = Path(tempfile.mkdtemp(prefix=_FOLDER_PREFIX))
    too_deep = len(os.fsencode(folder / SOCKET_NAME)) > MAX_SOCKET_PATH
    if too_deep and os.path.isdir(_SHORT_TMP):
        folder.rmdir()
        folder = Path(tempfile.mkdtemp(prefix=_FOLDER_PREFIX, dir=_SHORT_TMP))
    (folder / TMP_NAME).mkdir()
    return folder


def record_launcher(folder: Path, pid: int) -> None:
    """Note which process serves `folder`, for a later sweep."""
    (folder / _PID_FILE).write_text(str(pid))

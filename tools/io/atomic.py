"""Atomic file writes: readers see the old content or the new, never half of it."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once at import: os.umask can only be read by setting it, and a file another thread
# created during that instant would get mode 0666.
_UMASK = _umask()
# The modes a plain `open()` and `mkdir()` give under this process's umask.
SHARED_MODE = 0o666 & ~_UMASK
SHARED_DIR_MODE = 0o777 & ~_UMASK


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` to write; it replaces `path` when the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        # mkstemp makes files private (0600); a run's files get the mode any other file would.
        os.chmod(tmp, SHARED_MODE)
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def staging_dir(target: Path, tag: str = "tmp") -> Path:
    """An empty folder beside `target` to fill and rename into place (one filesystem, so the
    rename is atomic), with the mode a plain `mkdir` gives."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.{tag}-", dir=target.parent))
    # mkdtemp makes folders private (0700): a checkpoint or dataset is read like any run file.
    os.chmod(staging, SHARED_DIR_MODE)
    return staging


def share_files(folder: Path) -> None:
    """Give every file under `folder` the mode a plain `open()` gives (libraries that write
    through private temporary files leave theirs at 0600)."""
    for path in folder.rglob("*"):
        os.chmod(path, SHARED_DIR_MODE if path.is_dir() else SHARED_MODE)


def write_text_atomic(path: Path, text: str) -> Path:
    """Write a file so readers see the old or the new content, never half of it."""
    with replacing(path) as tmp, open(tmp, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    return path


def write_json_atomic(path: Path, payload: Any) -> Path:
    """Atomically write JSON (indented, keys in insertion order)."""
    return write_text_atomic(path, json.dumps(payload, indent=2, default=str) + "\n")

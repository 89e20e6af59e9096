"""Atomic file writes: readers see the old content or the new, never half of it."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _shared_mode() -> int:
    """The mode a plain `open()` gives a new file under this process's umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


# Read once at import: os.umask can only be read by setting it, and a file another thread
# created during that instant would get mode 0666.
SHARED_MODE = _shared_mode()


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

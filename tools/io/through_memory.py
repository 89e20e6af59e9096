"""Large files written into memory first and copied to their folder by the kernel.

On the 2-core machines this lab is measured on, `save_pretrained` writing a 540 MB checkpoint
straight into the run folder took 1.3 to 1.5 s a save (4.2 s over the demo's three), while
writing it into a memory-backed folder took 0.2 s and the kernel's copy from there to the
same disk (`sendfile`) 0.2 s (`benchmarks/checkpoint_write.py`). Where a direct write is
already fast the detour costs about 0.1 s; it is taken only while the files leave most of the
machine's memory free, and `POSTLAB_WRITE_THROUGH_MEMORY=0` turns it off.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

# A folder backed by memory (tmpfs) on Linux, where such a folder exists.
MEMORY_DIR = Path("/dev/shm")
MEMORY_FILESYSTEMS = ("tmpfs",)
# Files may take at most this share of the memory the kernel reports available: a tmpfs holds
# its pages until they are deleted, and the process writing them may need the rest.
MEMORY_SHARE = 0.25
# Set to 0 to write large files straight into their folder.
THROUGH_MEMORY_ENV = "POSTLAB_WRITE_THROUGH_MEMORY"
# A folder in memory is named for the process that writes it: what a killed process left there
# holds memory until it is deleted, and a later write deletes it once that process is gone and
# the folder has not changed for ORPHAN_AGE_S (a process in another pid namespace sharing this
# folder would look gone while its write, seconds long, goes on).
HELD_PREFIX = "postlab-"
ORPHAN_AGE_S = 600.0


def memory_room(memory_dir: Path = MEMORY_DIR) -> int:
    """Bytes that may be written through `memory_dir` now (0 where it is not memory-backed)."""
    if os.environ.get(THROUGH_MEMORY_ENV) == "0" or not _memory_backed(memory_dir):
        return 0
    try:
        stats = os.statvfs(memory_dir)
    except OSError:
        return 0
    free = stats.f_bavail * stats.f_frsize
    return int(min(free, MEMORY_SHARE * _available_memory()))


@contextlib.contextmanager
def written_through_memory(
    target_dir: Path, nbytes: int, memory_dir: Path = MEMORY_DIR
) -> Iterator[Path]:
    """A folder to write about `nbytes` into that end up in `target_dir` (which must exist):
    a memory-backed one copied over when the block ends, where there is room, else
    `target_dir` itself. The memory folder is gone afterwards, whether the block failed or not."""
    if nbytes > memory_room(memory_dir):
        yield target_dir
        return
    remove_orphans(memory_dir)
    prefix = f"{HELD_PREFIX}{os.getpid()}-"
    with tempfile.TemporaryDirectory(prefix=prefix, dir=memory_dir) as held:
        yield Path(held)
        copy_tree(Path(held), target_dir)


def copy_tree(source: Path, target_dir: Path) -> None:
    """Copy the files under `source` into `target_dir`, keeping the target's own modes
    (`shutil.copyfile` copies by `sendfile` on Linux, inside the kernel)."""
    for path in sorted(source.rglob("*")):
        destination = target_dir / path.relative_to(source)
        if path.is_dir():
            destination.mkdir(exist_ok=True)
        else:
            shutil.copyfile(path, destination)


def remove_orphans(memory_dir: Path = MEMORY_DIR) -> list[str]:
    """Delete the folders that processes no longer running left in `memory_dir`; their names."""
    removed = []
    for left in memory_dir.glob(f"{HELD_PREFIX}*"):
        pid = left.name.removeprefix(HELD_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _running(int(pid)) and _unchanged_for(left, ORPHAN_AGE_S):
            shutil.rmtree(left, ignore_errors=True)
            removed.append(left.name)
    return removed


def _unchanged_for(folder: Path, seconds: float) -> bool:
    try:
        return time.time() - folder.stat().st_mtime > seconds
    except OSError:
        return False


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: running, and its folder is not ours to delete
    return True


def _memory_backed(folder: Path) -> bool:
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return False
    for line in mounts:
        fields = line.split()
        if len(fields) > 2 and fields[1] == str(folder):
            return fields[2] in MEMORY_FILESYSTEMS and os.access(folder, os.W_OK)
    return False


def _available_memory() -> int:
    try:
        lines = Path("/proc/meminfo").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0

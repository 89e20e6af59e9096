"""Large files written into memory first and copied to their folder by the kernel.

On the 2-core machines this lab is measured on, `save_pretrained` writing a 540 MB checkpoint
straight into the run folder took 1.3 to 1.5 s a save (4.2 s over the demo's three), while
writing it into a memory-backed folder took 0.2 s and the kernel's copy from there to the
same disk (`sendfile`) 0.2 s (`benchmarks/checkpoint_write.py`). Where a direct write is
already fast the detour costs about 0.1 s; it is taken only while the files leave most of the
memory free (the machine's, and the process's cgroup's where it has a limit), a memory folder
that fills up is given up for a straight write, and `POSTLAB_WRITE_THROUGH_MEMORY=0` turns it
off.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from postlab.tools.io.pids import process_running

# A folder backed by memory (tmpfs) on Linux, where such a folder exists.
MEMORY_DIR = Path("/dev/shm")
MEMORY_FILESYSTEMS = ("tmpfs",)
# Files may take at most this share of the memory available: a tmpfs holds its pages until
# they are deleted (charged to the writer's cgroup), and the process writing them needs the rest.
MEMORY_SHARE = 0.25
# Where cgroups keep a process's memory limit and use (`/proc/self/cgroup` names its folder):
# the files' names under cgroup v2 and under v1's memory controller.
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_V2_FILES = ("memory.max", "memory.current")
CGROUP_V1_FILES = ("memory.limit_in_bytes", "memory.usage_in_bytes")
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
    available = min(psutil.virtual_memory().available, _cgroup_headroom())
    return int(min(free, MEMORY_SHARE * available))


def write_through_memory(
    target_dir: Path, nbytes: int, write: Callable[[Path], None], memory_dir: Path = MEMORY_DIR
) -> bool:
    """Have `write` put about `nbytes` of files into a folder whose files end up in
    `target_dir` (which must exist): a memory-backed one copied over afterwards, where there
    is room, else `target_dir` itself; whether memory was used. A memory folder that fills up
    (another process took the room) is given up and `write` runs again on `target_dir`; the
    memory folder is gone afterwards, whether `write` failed or not."""
    if nbytes > memory_room(memory_dir):
        write(target_dir)
        return False
    remove_orphans(memory_dir)
    with tempfile.TemporaryDirectory(prefix=f"{HELD_PREFIX}{os.getpid()}-", dir=memory_dir) as held:
        try:
            write(Path(held))
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise
            shutil.rmtree(held, ignore_errors=True)
            write(target_dir)
            return False
        copy_tree(Path(held), target_dir)
    return True


def copy_tree(source: Path, target_dir: Path) -> None:
    """Copy the files, folders and links under `source` into `target_dir`, keeping the target's
    own modes (`shutil.copyfile` copies by `sendfile` on Linux, inside the kernel)."""
    for path in sorted(source.rglob("*")):
        destination = target_dir / path.relative_to(source)
        if path.is_symlink():
            os.symlink(os.readlink(path), destination)
        elif path.is_dir():
            destination.mkdir(exist_ok=True)
        else:
            shutil.copyfile(path, destination)


def remove_orphans(memory_dir: Path = MEMORY_DIR) -> list[str]:
    """Delete this user's folders in `memory_dir` that processes no longer running left; the
    names of those deleted."""
    removed = []
    for left in memory_dir.glob(f"{HELD_PREFIX}*"):
        pid = left.name.removeprefix(HELD_PREFIX).split("-", 1)[0]
        if pid.isdigit() and _orphaned(left, int(pid)):
            shutil.rmtree(left, ignore_errors=True)
            if not left.exists():
                removed.append(left.name)
    return removed


def _orphaned(folder: Path, pid: int) -> bool:
    try:
        stats = folder.stat()
    except OSError:
        return False
    unchanged = time.time() - stats.st_mtime > ORPHAN_AGE_S
    return stats.st_uid == os.getuid() and unchanged and not process_running(pid)


def _memory_backed(folder: Path) -> bool:
    try:
        mounts = psutil.disk_partitions(all=True)
    except OSError:
        return False
    backed = any(m.mountpoint == str(folder) and m.fstype in MEMORY_FILESYSTEMS for m in mounts)
    return backed and os.access(folder, os.W_OK)


def _cgroup_headroom() -> float:
    """What this process's cgroup may still use before its memory limit (infinite without one)."""
    try:
        groups = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return float("inf")
    headroom = float("inf")
    for line in groups:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and not controllers:  # cgroup v2
            folder, files = CGROUP_ROOT / path.lstrip("/"), CGROUP_V2_FILES
        elif "memory" in controllers.split(","):  # cgroup v1's memory controller
            folder, files = CGROUP_ROOT / "memory" / path.lstrip("/"), CGROUP_V1_FILES
        else:
            continue
        try:
            limit, used = ((folder / name).read_text().strip() for name in files)
            if limit != "max":
                headroom = min(headroom, max(0, int(limit) - int(used)))
        except (OSError, ValueError):
            continue
    return headroom

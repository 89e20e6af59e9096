"""Checkpoints written through memory: the same files as a straight write, nothing left over."""

import errno
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from postlab.tools.io import through_memory
from postlab.tools.io.through_memory import (
    HELD_PREFIX,
    MEMORY_DIR,
    ORPHAN_AGE_S,
    THROUGH_MEMORY_ENV,
    memory_room,
    write_through_memory,
)
from postlab.tools.models.resolution import save_checkpoint

needs_memory_dir = pytest.mark.skipif(
    memory_room() == 0, reason="no memory-backed folder with room on this machine"
)


@pytest.fixture(scope="module")
def loaded(tiny_model):
    """The tiny model and its tokenizer, loaded once for the tests that save them."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_model), AutoTokenizer.from_pretrained(
        tiny_model
    )


def _held_in_memory() -> set[str]:
    return {p.name for p in MEMORY_DIR.glob("postlab-*")} if MEMORY_DIR.is_dir() else set()


def _files(folder):
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mode)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@needs_memory_dir
def test_a_checkpoint_written_through_memory_equals_one_written_straight(
    loaded, tmp_path, monkeypatch
):
    model, tokenizer = loaded
    before = _held_in_memory()
    copies = []
    copy_tree = through_memory.copy_tree
    monkeypatch.setattr(through_memory, "copy_tree", lambda *a: copies.append(a) or copy_tree(*a))
    through = save_checkpoint(model, tokenizer, tmp_path / "through" / "checkpoint")
    assert len(copies) == 1 and str(copies[0][0]).startswith(str(MEMORY_DIR))

    monkeypatch.setenv(THROUGH_MEMORY_ENV, "0")
    straight = save_checkpoint(model, tokenizer, tmp_path / "straight" / "checkpoint")
    assert len(copies) == 1

    written = _files(through)
    assert "model.safetensors" in written
    assert written == _files(straight)
    assert (through.stat().st_mode & 0o777) == (straight.stat().st_mode & 0o777)
    assert _held_in_memory() == before


def _write_weights(folder):
    (folder / "model.safetensors").write_bytes(b"\1" * 1024)


def test_files_larger_than_the_room_in_memory_are_written_straight(tmp_path, monkeypatch):
    written = []
    # More than the machine's memory: the room itself moves with what other processes (a
    # parallel test's training worker) hold, so "the room plus one" measured first can fit.
    used = write_through_memory(tmp_path, psutil.virtual_memory().total + 1, written.append)
    assert not used and written == [tmp_path]
    # A folder that is not a memory-backed mount is never used as one.
    assert memory_room(tmp_path) == 0
    monkeypatch.setenv(THROUGH_MEMORY_ENV, "0")
    assert memory_room() == 0


@needs_memory_dir
def test_a_copy_that_fails_leaves_no_half_checkpoint_and_nothing_in_memory(
    loaded, tmp_path, monkeypatch
):
    model, tokenizer = loaded
    before = _held_in_memory()
    copied = []

    copyfile = shutil.copyfile

    def copy_until_the_disk_fills(source, destination):
        if copied:
            raise OSError(errno.ENOSPC, "No space left on device", str(destination))
        copied.append(destination)
        copyfile(source, destination)

    monkeypatch.setattr(through_memory.shutil, "copyfile", copy_until_the_disk_fills)
    target = tmp_path / "run" / "checkpoint"
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(model, tokenizer, target)
    assert copied
    assert not target.exists()
    assert list(target.parent.iterdir()) == []
    assert _held_in_memory() == before


@needs_memory_dir
def test_a_write_removes_what_a_killed_writer_left_in_memory_and_nothing_else(tmp_path):
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    orphan = MEMORY_DIR / f"{HELD_PREFIX}{ended.pid}-left"
    recent = MEMORY_DIR / f"{HELD_PREFIX}{ended.pid}-recent"
    running = MEMORY_DIR / f"{HELD_PREFIX}{os.getpid()}-running"
    try:
        for folder in (orphan, recent, running):
            folder.mkdir()
            (folder / "model.safetensors").write_bytes(b"\0" * 1024)
        old = time.time() - ORPHAN_AGE_S - 60
        for folder in (orphan, running):
            os.utime(folder, (old, old))
        assert write_through_memory(tmp_path, 1024, _write_weights)
        assert not orphan.exists()
        # A folder of an ended process that changed lately may be another namespace's write.
        assert recent.exists()
        assert (running / "model.safetensors").read_bytes() == b"\0" * 1024
        assert (tmp_path / "model.safetensors").read_bytes() == b"\1" * 1024
    finally:
        for folder in (orphan, recent, running):
            shutil.rmtree(folder, ignore_errors=True)


@needs_memory_dir
def test_a_memory_folder_that_fills_up_is_given_up_for_a_straight_write(tmp_path):
    before = _held_in_memory()
    folders = []

    def write_unless_memory_is_full(folder):
        folders.append(folder)
        if str(folder).startswith(str(MEMORY_DIR)):
            (folder / "model.safetensors").write_bytes(b"\0" * 512)
            raise OSError(errno.ENOSPC, "No space left on device", str(folder))
        _write_weights(folder)

    assert not write_through_memory(tmp_path, 1024, write_unless_memory_is_full)
    assert len(folders) == 2 and folders[1] == tmp_path
    assert (tmp_path / "model.safetensors").read_bytes() == b"\1" * 1024
    assert _held_in_memory() == before

    # Any other failure is the caller's to see, and leaves nothing in memory either.
    def refuse(folder):
        raise OSError(errno.EACCES, "Permission denied", str(folder))

    with pytest.raises(OSError, match="Permission denied"):
        write_through_memory(tmp_path, 1024, refuse)
    assert _held_in_memory() == before


@needs_memory_dir
def test_a_cgroup_memory_limit_bounds_the_room(tmp_path, monkeypatch):
    lines = Path("/proc/self/cgroup").read_text().splitlines()
    own = next((line[3:] for line in lines if line.startswith("0::")), None)
    if own is None:
        pytest.skip("no cgroup v2 entry for this process")
    folder = tmp_path / own.lstrip("/")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "memory.max").write_text("max\n")
    (folder / "memory.current").write_text("1000\n")
    monkeypatch.setattr(through_memory, "CGROUP_ROOT", tmp_path)
    unlimited = memory_room()
    assert unlimited > 4_000_000
    (folder / "memory.max").write_text(f"{16_000_000 + 1000}\n")
    assert memory_room() <= through_memory.MEMORY_SHARE * 16_000_000

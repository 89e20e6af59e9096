"""Orphaned training workers are found and ended; unrelated processes are left alone."""

import subprocess
import sys
import time
from pathlib import Path

from postlab.tools.training.processes import PID_FILE, WORKER_MODULE, end_orphaned_worker


def _sleeper(*args: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", *args], start_new_session=True
    )
    # Until the child has exec'd, /proc shows the parent's command line.
    deadline = time.monotonic() + 5
    while b"time.sleep" not in Path(f"/proc/{proc.pid}/cmdline").read_bytes():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return proc


def test_orphaned_worker_for_this_folder_is_ended(tmp_path):
    orphan = _sleeper(WORKER_MODULE, str(tmp_path / "spec.json"))
    (tmp_path / PID_FILE).write_text(str(orphan.pid))
    try:
        assert end_orphaned_worker(tmp_path, grace_s=2) == orphan.pid
        assert orphan.wait(timeout=5) is not None
        assert not (tmp_path / PID_FILE).exists()
    finally:
        orphan.kill()


def test_unrelated_process_with_a_reused_pid_is_left_alone(tmp_path):
    bystander = _sleeper("something-else")
    (tmp_path / PID_FILE).write_text(str(bystander.pid))
    try:
        assert end_orphaned_worker(tmp_path, grace_s=1) is None
        assert bystander.poll() is None
        assert not (tmp_path / PID_FILE).exists()
    finally:
        bystander.kill()


def test_missing_or_stale_pid_file(tmp_path):
    assert end_orphaned_worker(tmp_path) is None
    (tmp_path / PID_FILE).write_text("999999999")
    assert end_orphaned_worker(tmp_path) is None

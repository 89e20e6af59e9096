"""Orphaned training workers are found and ended; unrelated processes are left alone."""

import os
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

import pytest

from postlab.tools.tracking.trackers import EvaluationLog
from postlab.tools.training.launcher import changed_sources, source_stamps
from postlab.tools.training.launcher_folders import MAX_SOCKET_PATH, remove_dead_launcher_folders
from postlab.tools.training.processes import (
    KILL_GRACE_S,
    PID_FILE,
    WORKER_MODULE,
    end_orphaned_worker,
    works_in,
)
from postlab.tools.training.warm_start import (
    LAUNCHER_MODULE,
    Launcher,
    WarmProcess,
    import_time_env,
    prewarm,
    start_warm,
)
from postlab.tools.training.worker_end import WorkerEnding, wait_for_exiting_workers
from postlab.tools.training.worker_start import base_env, prewarm_workers, start_python


def _sleeper(*args: str, cwd: Path | None = None) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", *args],
        start_new_session=True,
        cwd=cwd,
    )
    # Until the child has exec'd, /proc shows the parent's command line.
    deadline = time.monotonic() + 5
    while b"time.sleep" not in Path(f"/proc/{proc.pid}/cmdline").read_bytes():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return proc


def test_orphaned_worker_for_this_folder_is_ended(tmp_path):
    orphan = _sleeper(WORKER_MODULE, str(tmp_path / "spec.json"), cwd=tmp_path)
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
    assert not (tmp_path / PID_FILE).exists()


def test_a_worker_of_another_folder_is_left_alone(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "theirs").mkdir()
    theirs = _sleeper(WORKER_MODULE, "spec.json", cwd=tmp_path / "theirs")
    (tmp_path / "mine" / PID_FILE).write_text(str(theirs.pid))
    try:
        assert end_orphaned_worker(tmp_path / "mine", grace_s=1) is None
        assert theirs.poll() is None
    finally:
        theirs.kill()


def test_a_worker_forked_warm_reports_like_a_subprocess_and_is_found_as_an_orphan(tmp_path):
    env = dict(os.environ)
    quick = start_warm("timeit", ["-n", "1", "-r", "1", "pass"], env, str(tmp_path))
    # Its output comes through the pipe and its exit status as Popen gives it.
    assert "1 loop" in quick.stdout.read() and quick.wait(timeout=30) == 0
    stuck = start_warm("timeit", ["-n", "1", "-r", "1", "import time; time.sleep(60)"], env,
                       str(tmp_path))  # fmt: skip
    assert works_in(stuck.pid, tmp_path) and not works_in(stuck.pid, tmp_path / "elsewhere")
    assert stuck.poll() is None
    (tmp_path / PID_FILE).write_text(str(stuck.pid))
    assert end_orphaned_worker(tmp_path, grace_s=2) == stuck.pid
    assert stuck.wait(timeout=10) < 0  # ended by a signal


def test_a_launcher_with_workers_running_is_kept_when_others_are_needed(tmp_path):
    # Long enough to outlive two launchers' imports on a loaded machine; it is killed below.
    sleep = ["-n", "1", "-r", "1", "import time; time.sleep(600)"]
    first = start_warm("timeit", sleep, {**os.environ, "HF_POSTLAB_TEST": "a"}, str(tmp_path))
    for other in ("b", "c"):  # more environments than launchers are kept
        quick = start_warm("timeit", ["-n", "1", "-r", "1", "pass"],
                           {**os.environ, "HF_POSTLAB_TEST": other}, str(tmp_path))  # fmt: skip
        assert quick.wait(timeout=30) == 0
    # The first launcher was kept for its running worker, whose exit status still arrives.
    assert first.poll() is None
    os.killpg(first.pid, 9)
    assert first.wait(timeout=10) == -9


def test_torch_writing_its_cache_folder_does_not_change_which_launcher_serves(monkeypatch):
    from torch._inductor.runtime.cache_dir_utils import cache_dir

    # Set first so the fixture restores whatever was there, not the value torch writes below.
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "unset")
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR")
    before = import_time_env(dict(os.environ))
    # What the lab's first generation does: torch writes its cache folder into os.environ.
    cache_dir()
    assert "TORCHINDUCTOR_CACHE_DIR" in os.environ
    # The launcher started before it still serves the workers started after it.
    assert import_time_env(dict(os.environ)) == before
    # A variable the libraries do read at import still tells launchers apart.
    assert import_time_env({**os.environ, "HF_HOME": "/elsewhere"}) != before


def test_a_launcher_declines_to_fork_once_postlabs_files_change_and_then_leaves(tmp_path):
    # A postlab module the launcher imported at start-up (an editable install edited mid-run):
    # registered by sitecustomize, which the launcher's interpreter runs before anything else.
    probe = tmp_path / "probe.py"
    probe.write_text("VERSION = 1\n")
    (tmp_path / "sitecustomize.py").write_text(
        "import sys, types\n"
        "module = types.ModuleType('postlab.stale_probe')\n"
        f"module.__file__ = {str(probe)!r}\n"
        "sys.modules[module.__name__] = module\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    launcher = Launcher(env)
    try:
        first = launcher.fork("timeit", ["-n", "1", "-r", "1", "pass"], env, str(tmp_path))
        assert first.wait(timeout=60) == 0
        probe.write_text("VERSION = 2\n")
        stamp = probe.stat().st_mtime_ns + 10**9
        os.utime(probe, ns=(stamp, stamp))
        # Declined: the runner starts this worker cold, from the files as they are now.
        with pytest.raises(OSError, match="could not fork safely"):
            launcher.fork("timeit", ["-n", "1", "-r", "1", "pass"], env, str(tmp_path))
        # With no worker of its own left it leaves, so the next worker gets a fresh launcher.
        assert launcher.process.wait(timeout=30) == 0 and not launcher.alive()
        # And it takes its socket's folder with it.
        assert not Path(launcher.path).parent.exists()
    finally:
        launcher.stop()


def test_a_launchers_temporary_files_go_with_it_and_its_workers_use_their_own(tmp_path):
    # wandb makes temporary folders at import: what caches the launcher's folder in tempfile.
    pytest.importorskip("wandb")
    system_tmp, worker_tmp = tmp_path / "system-tmp", tmp_path / "worker-tmp"
    system_tmp.mkdir()
    worker_tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(system_tmp), "HF_POSTLAB_TEST": "temporary-files"}
    launcher = Launcher(env)
    try:
        made = ["-n", "1", "-r", "1", "-s", "import tempfile; print(tempfile.mkdtemp())", "pass"]
        worker = launcher.fork("timeit", made, {**env, "TMPDIR": str(worker_tmp)}, str(tmp_path))
        assert worker.wait(timeout=60) == 0
        assert Path(worker.stdout.readline().strip()).parent == worker_tmp
    finally:
        launcher.stop()
    # wandb stages media in folders it makes at import: they were left in /tmp by every run.
    assert list(system_tmp.iterdir()) == [] and not launcher.folder.exists()


KILLED_LAB = """
import os, sys, time
from postlab.tools.training.warm_start import Launcher

launcher = Launcher(dict(os.environ))
if sys.argv[1] == "serving":
    launcher.fork("timeit", ["-n", "1", "-r", "1", "pass"], dict(os.environ), os.getcwd()).wait(60)
print(launcher.folder, flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("when", ["serving", "importing"])
def test_a_launcher_whose_lab_was_killed_leaves_and_takes_its_folder(tmp_path, when):
    lab = subprocess.Popen(
        [sys.executable, "-c", KILLED_LAB, when], cwd=tmp_path, stdout=subprocess.PIPE, text=True
    )
    try:
        line = lab.stdout.readline().strip()
        assert line, "the lab did not start its launcher"
        folder = Path(line)
        assert folder.is_dir()
    finally:
        lab.kill()
        lab.wait()
    # A killed lab runs no clean-up: the launcher notices its parent is gone within 0.1 s of
    # serving (after its imports, when killed while it was importing).
    deadline = time.monotonic() + 90
    while folder.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not folder.exists()


def test_source_stamps_cover_postlab_modules_only(tmp_path, monkeypatch):
    import types

    probe = tmp_path / "probe.py"
    probe.write_text("A = 1\n")
    for name in ("postlab.stale_probe", "elsewhere_probe"):
        module = types.ModuleType(name)
        module.__file__ = str(probe)
        monkeypatch.setitem(sys.modules, name, module)
    stamps = source_stamps()
    assert str(probe) in stamps and changed_sources(stamps) == []
    monkeypatch.delitem(sys.modules, "postlab.stale_probe")
    assert str(probe) not in source_stamps()
    os.utime(probe, ns=(stamps[str(probe)] + 1, stamps[str(probe)] + 1))
    assert changed_sources(stamps) == [str(probe)]
    probe.unlink()
    assert changed_sources({str(probe): 1}) == [str(probe)]


def test_a_host_holding_more_than_1024_descriptors_still_forks_warm_workers(tmp_path):
    # A long-lived host (a server running many runs) holds descriptors past select()'s limit.
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    env = {**os.environ, "HF_POSTLAB_TEST": "many-descriptors"}
    launcher = Launcher(env)
    try:
        assert max(held) >= 1024
        worker = launcher.fork("timeit", ["-n", "1", "-r", "1", "pass"], env, str(tmp_path))
        assert worker.wait(timeout=60) == 0
    finally:
        launcher.stop()
        for descriptor in held:
            os.close(descriptor)


def test_a_temporary_folder_too_deep_for_a_socket_still_gives_warm_workers(tmp_path, monkeypatch):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    env = {**os.environ, "HF_POSTLAB_TEST": "deep-temporary-folder"}
    launcher = Launcher(env)
    try:
        assert len(os.fsencode(launcher.path)) <= MAX_SOCKET_PATH
        worker = launcher.fork("timeit", ["-n", "1", "-r", "1", "pass"], env, str(tmp_path))
        assert worker.wait(timeout=60) == 0
    finally:
        launcher.stop()
    assert not launcher.folder.exists() and list(deep.iterdir()) == []


def test_folders_of_launchers_that_are_gone_are_removed_and_live_ones_kept(tmp_path):
    # Killed with its lab's whole process group (a scheduler's kill -9), a launcher cleans nothing.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    gone, alive, unknown = (tmp_path / f"postlab-launcher-{name}" for name in ("a", "b", "c"))
    for folder in (gone, alive, unknown):
        (folder / "tmp" / "tmpx-wandb-media").mkdir(parents=True)
    (gone / "pid").write_text(str(dead.pid))
    # A running launcher is known by its command line: the module and its socket's path.
    live = _sleeper(LAUNCHER_MODULE, str(alive / "socket"))
    try:
        (alive / "pid").write_text(str(live.pid))
        assert remove_dead_launcher_folders(tmp_path) == [gone]
        assert alive.is_dir() and unknown.is_dir() and not gone.exists()
    finally:
        live.kill()
        live.wait()
    # Its pid now names no process (or another one): the folder goes.
    assert remove_dead_launcher_folders(tmp_path) == [alive]


def test_a_python_module_forks_warm_only_from_a_launcher_already_running(tmp_path):
    once = ["-n", "1", "-r", "1", "pass"]
    # No launcher serves this environment: the process starts cold rather than start one.
    with open(tmp_path / "cold.txt", "wb") as output:
        cold = start_python("timeit", once, {"HF_POSTLAB_TEST": "none"}, tmp_path, output.fileno())
    assert isinstance(cold, subprocess.Popen) and cold.wait(timeout=60) == 0
    assert "1 loop" in (tmp_path / "cold.txt").read_text()
    # One still importing is not waited for either: a cold start is sooner.
    importing = {"HF_POSTLAB_TEST": "importing"}
    prewarm({**base_env(), **importing})
    with open(tmp_path / "early.txt", "wb") as output:
        early = start_python("timeit", once, importing, tmp_path, output.fileno())
    assert isinstance(early, subprocess.Popen) and early.wait(timeout=60) == 0
    prewarm_workers()
    # Once it listens, it serves.
    assert start_warm("timeit", once, base_env(), str(tmp_path)).wait(timeout=120) == 0
    with open(tmp_path / "warm.txt", "wb") as output:
        warm = start_python("timeit", once, {}, tmp_path, output.fileno())
    # Forked: its output goes to the file given, as a cold process's does.
    assert isinstance(warm, WarmProcess) and warm.stdout is None
    assert warm.wait(timeout=60) == 0 and "1 loop" in (tmp_path / "warm.txt").read_text()
    # A stuck evaluation log forked warm is killed at its timeout like a cold one.
    errors = tempfile.TemporaryFile()  # noqa: SIM115 - outcome() closes it
    stuck = start_python("timeit", ["-n", "1", "-r", "1", "import time; time.sleep(60)"], {},
                         tmp_path, errors.fileno())  # fmt: skip
    assert isinstance(stuck, WarmProcess)
    logging = EvaluationLog("wandb", stuck, None, errors)
    assert logging.outcome(timeout_s=0.5) == "wandb logging failed: still running after 0.5 s"
    assert stuck.returncode == -9


def test_a_worker_that_reported_exits_on_a_thread_and_its_end_is_logged_before_the_next(tmp_path):
    # Exiting frees a worker's memory before its output closes: the lab need not wait for it.
    script = "import time; print('done', flush=True); time.sleep(1.5); print('last words')"
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    pid_file, temporary = tmp_path / PID_FILE, tmp_path / "worker-tmp"
    pid_file.write_text(str(proc.pid))
    temporary.mkdir()
    log_path = tmp_path / "train.log"
    ending = WorkerEnding(proc, open(log_path, "w"), deque(), pid_file, temporary)  # noqa: SIM115
    try:
        ending.next_line(timeout=10)
        started = time.monotonic()
        ending.finish_in_background()
        assert time.monotonic() - started < 0.5 and proc.poll() is None
        wait_for_exiting_workers()
        assert proc.poll() == 0
        assert log_path.read_text() == "done\nlast words\n[postlab] worker exit code 0\n"
        assert not pid_file.exists() and not temporary.exists()
    finally:
        proc.kill()


def test_a_worker_stopped_by_an_error_in_the_lab_is_killed_at_once(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    log_path = tmp_path / "train.log"
    ending = WorkerEnding(proc, open(log_path, "w"), deque(), tmp_path / PID_FILE, tmp_path / "t")  # noqa: SIM115
    started = time.monotonic()
    ending.finish(wait=False)
    assert proc.poll() is not None and time.monotonic() - started < KILL_GRACE_S
    assert "exit code" not in log_path.read_text()

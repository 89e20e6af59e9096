"""The end of one training worker's process, seen from the lab: its last lines, its exit status,
its pid file and temporary folder. A worker that has reported its result is let exit on a thread.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import subprocess
import threading
from collections import deque
from pathlib import Path

from postlab.tools.io.background import BackgroundWork
from postlab.tools.training.processes import KILL_GRACE_S, kill_group

# Threads waiting for workers that reported done to exit (see WorkerEnding.finish_in_background).
_EXITING = BackgroundWork("postlab-worker-exit")


def wait_for_exiting_workers() -> None:
    """Wait until every worker that reported its result has exited and its files are gone."""
    _EXITING.wait()


class WorkerEnding:
    """The end of one worker's process: its last lines, its exit status, its pid file and
    temporary folder, and the log they go to. Its output is read from the start, and taken
    line by line with `next_line`."""

    def __init__(self, proc, log, tail: deque[str], pid_file: Path, temporary: Path) -> None:
        self.proc = proc
        self.log = log
        self.tail = tail
        self.pid_file = pid_file
        self.temporary = temporary
        self._lines: queue.Queue = queue.Queue()
        self._drained = False
        threading.Thread(target=_pump, args=(proc.stdout, self._lines), daemon=True).start()

    def next_line(self, timeout: float) -> str | None:
        """The worker's next line of output, logged; None where its output ends; queue.Empty
        when none came within `timeout` seconds."""
        line = self._lines.get(timeout=timeout)
        if line is None:
            self._drained = True
        else:
            self.write(line)
        return line

    def write(self, line: str) -> None:
        """Log one line of the worker's output and keep it in the tail."""
        self.log.write(line)
        # Flushed per line so `tail -f train.log` follows a run as it happens.
        self.log.flush()
        self.tail.append(line.rstrip("\n"))

    def finish(self, wait: bool = True) -> None:
        """Let the worker exit (or stop it), log its last lines and exit code, remove its files."""
        try:
            if wait:
                self._await_exit()
        finally:
            if self.proc.poll() is None:
                kill_group(self.proc)
            with contextlib.suppress(FileNotFoundError):
                self.pid_file.unlink()
            shutil.rmtree(self.temporary, ignore_errors=True)
            self.log.close()

    def finish_in_background(self) -> None:
        """Finish on a thread; wait_for_exiting_workers joins it."""
        _EXITING.start(self.finish)

    def _await_exit(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout=KILL_GRACE_S)
            except subprocess.TimeoutExpired:
                kill_group(self.proc)
        else:
            # The leader is gone; whatever it left behind in its group goes too.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        # Lines still in flight after a kill belong in the log too (after the end of the
        # output, nothing is: waiting for more would only cost the timeout).
        with contextlib.suppress(queue.Empty):
            while not self._drained:
                self.next_line(timeout=0.2)
        self.log.write(f"[postlab] worker exit code {self.proc.returncode}\n")


def _pump(stream, lines: queue.Queue) -> None:
    try:
        for line in stream:
            lines.put(line)
    finally:
        lines.put(None)

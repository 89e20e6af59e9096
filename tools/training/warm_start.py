"""Warm starts for training workers, the lab's side: start a launcher (launcher.py) that has
imported the training libraries once, ask it to fork each worker, and hold the worker as the
runner holds a `subprocess.Popen`, so an iteration no longer pays ~5 s of imports.

A request is the write end of a pipe (the worker's stdout and stderr) and a JSON line with the
worker's module, arguments, environment and working folder; the launcher answers the pid, then
the exit status. A forked worker is the one a cold start would run: the same code on the same
interpreter, imported under the same environment (a launcher serves only requests whose
import-time environment matches its own; another one starts otherwise).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

from postlab.tools.training.launcher_folders import (
    SOCKET_NAME,
    TMP_NAME,
    new_launcher_folder,
    record_launcher,
)

# Set to 0 to start every worker cold (a plain subprocess), e.g. to compare the two.
WARM_ENV = "POSTLAB_WARM_WORKERS"
LAUNCHER_MODULE = "postlab.tools.training.launcher"
# Variables that libraries read when imported: a launcher only serves the values it started with.
_IMPORT_TIME_PREFIXES = (
    "HF_",
    "HUGGINGFACE_",
    "TRANSFORMERS_",
    "TORCH",
    "PYTORCH_",
    "OMP_",
    "MKL_",
    "CUDA_",
    "TOKENIZERS_",
    "DATASETS_",
    "TRL_",
    "PYTHON",
    "XDG_CACHE_HOME",
    "LD_",
)
_READY_TIMEOUT_S = 120.0
# Launchers kept at once (each holds the libraries' memory); one with workers running is kept.
MAX_LAUNCHERS = 2


# Variables under those prefixes that are read on use, not at import. torch writes
# TORCHINDUCTOR_CACHE_DIR into the lab's own environment when it first loads inductor (during
# the baseline), which made every run's first worker start a second launcher cold.
_READ_ON_USE = frozenset({"TORCHINDUCTOR_CACHE_DIR"})


def import_time_env(env: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """The part of an environment the preloaded libraries read at import."""
    return tuple(
        sorted(
            (k, v)
            for k, v in env.items()
            if k.startswith(_IMPORT_TIME_PREFIXES) and k not in _READ_ON_USE
        )
    )


class WarmProcess:
    """A forked worker as the runner sees it: pid, stdout, poll, wait and returncode, as a
    `subprocess.Popen` started in its own session would offer them."""

    def __init__(
        self,
        pid: int,
        stdout: Any,
        status: socket.socket,
        received: bytes,
        on_end: Callable[[], None],
    ) -> None:
        self.pid = pid
        self.stdout = stdout
        self.returncode: int | None = None
        self._status = status
        # What arrived with the pid: the exit status, when the worker ended at once.
        self._buffer = received
        self._on_end = on_end

    def _read(self, timeout: float | None) -> None:
        self._status.settimeout(timeout)
        try:
            while b"\n" not in self._buffer:
                chunk = self._status.recv(64)
                if not chunk:  # the launcher died: its child's status is lost with it
                    self._buffer = b"-9\n"
                    break
                self._buffer += chunk
        finally:
            with contextlib.suppress(OSError):
                self._status.settimeout(None)
        self.returncode = int(self._buffer.split(b"\n", 1)[0])
        self._status.close()
        self._on_end()

    def poll(self) -> int | None:
        """The exit status, or None while the worker runs."""
        if self.returncode is None:
            with contextlib.suppress(TimeoutError, BlockingIOError):
                self._read(0.0)
        return self.returncode

    def kill(self) -> None:
        """Kill the worker's session (its own, as the launcher started it), as Popen.kill would
        the process."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the worker to end; TimeoutExpired as Popen raises it."""
        if self.returncode is None:
            try:
                self._read(timeout)
            except (TimeoutError, BlockingIOError) as error:
                raise subprocess.TimeoutExpired(LAUNCHER_MODULE, timeout or 0.0) from error
        return self.returncode


class Launcher:
    """A started launcher: its process, its socket and the environment it imported under."""

    def __init__(self, env: dict[str, str], tokenizer_dirs: tuple[str, ...] = ()) -> None:
        self.key = import_time_env(env)
        # Workers forked and not yet ended: stopping the launcher would lose their exit status.
        self.running = 0
        self._count = threading.Lock()
        self.folder = new_launcher_folder()
        self.path = str(self.folder / SOCKET_NAME)
        self.process = subprocess.Popen(
            [sys.executable, "-m", LAUNCHER_MODULE, self.path, *tokenizer_dirs],
            env={**env, "TMPDIR": str(self.folder / TMP_NAME)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        record_launcher(self.folder, self.process.pid)
        self.ready = False

    def listening(self, wait_s: float = 0.0) -> bool:
        """Whether the launcher has imported everything and listens, waiting up to `wait_s` for
        its word; one that answers anything else is stopped (OSError)."""
        if self.ready:
            return True
        # A selector, not select(): a host process may hold descriptors past select's 1024.
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(wait_s):
                return False
        line = self.process.stdout.readline()
        if line.strip() != "ready":
            self.stop()
            raise OSError(f"the warm worker launcher did not start ({line.strip() or 'no answer'})")
        self.ready = True
        return True

    def _wait_ready(self) -> None:
        """Block until the launcher listens; one silent for the whole wait is stopped."""
        if not self.listening(_READY_TIMEOUT_S):
            self.stop()
            raise OSError("the warm worker launcher did not start (no answer)")

    def fork(
        self, module: str, args: list[str], env: dict[str, str], cwd: str, output: int | None = None
    ) -> WarmProcess:
        """Start `module`'s main with `args` in a forked child; its handle. Its stdout and
        stderr are a pipe (the handle's `stdout`), or the open file descriptor `output`."""
        self._wait_ready()
        if output is None:
            read_end, write_end = os.pipe()
        else:
            read_end, write_end = None, os.dup(output)
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            connection.connect(self.path)
            socket.send_fds(connection, [b"w"], [write_end])
            request = {"module": module, "args": args, "env": env, "cwd": cwd}
            connection.sendall(json.dumps(request).encode() + b"\n")
            answer = b""
            while b"\n" not in answer:
                chunk = connection.recv(64)
                if not chunk:
                    raise OSError("the warm worker launcher closed the connection")
                answer += chunk
        except BaseException:
            connection.close()
            _close(read_end)
            raise
        finally:
            os.close(write_end)
        head, _, rest = answer.partition(b"\n")
        pid = int(head)
        if pid <= 0:
            connection.close()
            _close(read_end)
            raise OSError("the warm worker launcher could not fork safely")
        stdout = None
        if read_end is not None:
            stdout = open(read_end, encoding="utf-8", errors="replace", buffering=1)  # noqa: SIM115
        with self._count:
            self.running += 1
        return WarmProcess(pid, stdout, connection, rest, self._ended)

    def _ended(self) -> None:
        with self._count:
            self.running -= 1

    def alive(self) -> bool:
        """Whether the launcher still runs."""
        return self.process.poll() is None

    def stop(self) -> None:
        """End the launcher (its running children go on: they are their own sessions)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


_launchers: dict[tuple, Launcher] = {}
_lock = threading.Lock()


def warm_enabled() -> bool:
    """Whether workers start warm here (POSIX with fork and file-descriptor passing)."""
    return os.environ.get(WARM_ENV, "1") != "0" and hasattr(socket, "send_fds")


def _launcher(
    env: dict[str, str], start: bool = True, tokenizer_dirs: tuple[str, ...] = ()
) -> Launcher:
    key = import_time_env(env)
    with _lock:
        launcher = _launchers.get(key)
        if launcher is not None and not launcher.alive():
            _launchers.pop(key).stop()
            launcher = None
        # Asked not to start one, a launcher still importing does not count either: a process
        # started cold is sooner than its imports.
        if not start and (launcher is None or not launcher.listening()):
            raise OSError("no warm launcher is ready for this environment")
        if launcher is None:
            idle = [k for k, other in _launchers.items() if other.running == 0]
            while len(_launchers) >= MAX_LAUNCHERS and idle:
                _launchers.pop(idle.pop(0)).stop()
            if len(_launchers) >= MAX_LAUNCHERS:
                raise OSError("every warm launcher has workers running")
            launcher = _launchers[key] = Launcher(env, tokenizer_dirs)
        return launcher


def prewarm(env: dict[str, str], tokenizer_dirs: tuple[str, ...] = ()) -> None:
    """Start the launcher for this environment now, without waiting: its imports (and the
    tokenizers in `tokenizer_dirs`, for its workers) load while the caller does other work (a
    lab scores its base model first)."""
    with contextlib.suppress(OSError):
        _launcher(env, tokenizer_dirs=tokenizer_dirs)


def start_warm(
    module: str,
    args: list[str],
    env: dict[str, str],
    cwd: str,
    output: int | None = None,
    start_launcher: bool = True,
) -> WarmProcess:
    """Fork a worker from the launcher for this environment, starting one when needed (or
    only from one already listening, when a cold start costs less than a launcher's imports);
    an OSError when none can serve it (the caller then starts the worker cold)."""
    return _launcher(env, start_launcher).fork(module, args, env, cwd, output)


def _close(descriptor: int | None) -> None:
    if descriptor is not None:
        os.close(descriptor)


@atexit.register
def _stop_launchers() -> None:
    for launcher in list(_launchers.values()):
        launcher.stop()

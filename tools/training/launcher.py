"""The warm launcher process (`python -m postlab.tools.training.launcher SOCKET`): it imports
the training libraries once, then forks one training worker per request from the lab
(warm_start.py holds the lab's side and the protocol).

A forked child starts its own session (a process group the runner can stop as one), takes the
request's pipe as stdout and stderr, its environment and its folder, and runs the module's
`main`. The launcher answers the child's pid, then its exit status, and exits when the process
that started it does.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import select
import shutil
import signal
import socket
import sys
import tempfile
import threading
import traceback

from postlab.tools.io.heap import imports_uncollected
from postlab.tools.tracking.trackers import WANDB_INIT_IMPORTS
from postlab.tools.training.preloaded import preload_tokenizer

# What a training worker imports before its first step: the expensive part of starting one.
# transformers and TRL load their trainers lazily, and the tracker is imported when training
# begins (wandb's import was 2 s of each iteration's first step): preloaded too.
PRELOAD = (
    "torch",
    "transformers",
    "datasets",
    "peft",
    "trl",
    "postlab.tools.training.setup",
    "transformers.trainer",
    "transformers.integrations.integration_utils",
    "trl.trainer.sft_trainer",
)
# A tracker a run may not use: a failure to import it must not cost the launcher; with it what
# wandb.init imports when it opens a run (0.35 s of each iteration's first step).
OPTIONAL_PRELOAD = ("wandb", *WANDB_INIT_IMPORTS)
# How often the launcher checks that its lab lives and reaps children without an exit descriptor.
_REAP_INTERVAL_S = 0.1
# postlab's own modules, imported here once: a worker forked after their files change on disk
# (an upgrade or an edit of an editable install mid-run) would mix old modules with new ones.
WATCHED_PREFIX = "postlab."


def source_stamps() -> dict[str, int]:
    """The modification time of each postlab module file this process has imported."""
    stamps = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if name.startswith(WATCHED_PREFIX) and path:
            with contextlib.suppress(OSError):
                stamps[path] = os.stat(path).st_mtime_ns
    return stamps


def changed_sources(stamps: dict[str, int]) -> list[str]:
    """The files among `stamps` whose modification time is no longer the one recorded."""
    changed = []
    for path, stamp in stamps.items():
        try:
            if os.stat(path).st_mtime_ns != stamp:
                changed.append(path)
        except OSError:
            changed.append(path)
    return changed


def _child(pipe: int, request: dict, server: socket.socket, connection: socket.socket) -> None:
    code = 1
    try:
        server.close()
        connection.close()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.setsid()
        os.dup2(pipe, 1)
        os.dup2(pipe, 2)
        os.close(pipe)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        sys.stdout = open(1, "w", encoding="utf-8", errors="replace", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", encoding="utf-8", errors="replace", buffering=1, closefd=False)  # noqa: SIM115
        os.environ.clear()
        os.environ.update(request["env"])
        # The launcher's temporary folder was cached at its imports; the worker has its own.
        tempfile.tempdir = None
        sys.argv = [request["module"], *request["args"]]
        returned = importlib.import_module(request["module"]).main(request["args"])
        code = 0 if returned is None else returned
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:  # noqa: BLE001 - the child must exit, whatever happened
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code if isinstance(code, int) else 1)


def _serve(path: str, tokenizer_dirs: list[str]) -> None:
    # Ctrl-C reaches the lab's whole process group: the lab decides what stops, not the launcher.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Read before the imports: a lab killed while they run must not go unnoticed.
    parent = os.getppid()
    waiting: dict[int, socket.socket] = {}
    try:
        _preload_and_serve(path, parent, waiting, tokenizer_dirs)
    finally:
        # Workers of a killed lab finish on their own; what they staged in this folder's
        # temporary files (wandb's, made at import) must outlive them.
        for pid in waiting:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        # Its lab removes the launcher's folder (socket and temporary files) when it stops it;
        # a lab that was killed cannot.
        shutil.rmtree(os.path.dirname(path), ignore_errors=True)


def _preload_and_serve(
    path: str, parent: int, waiting: dict[int, socket.socket], tokenizer_dirs: list[str]
) -> None:
    # stdout answers the lab ("ready"): what a library prints while imported goes elsewhere.
    # Frozen once imported: forked workers neither walk these objects nor copy their pages.
    with contextlib.redirect_stdout(sys.stderr), imports_uncollected():
        for name in PRELOAD:
            importlib.import_module(name)
        for name in OPTIONAL_PRELOAD:
            with contextlib.suppress(Exception):
                importlib.import_module(name)
        # Best effort: a worker whose tokenizer was not loaded here loads it itself.
        for folder in tokenizer_dirs:
            with contextlib.suppress(Exception):
                preload_tokenizer(folder)
    stamps = source_stamps()
    home = os.getcwd()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen()
    print("ready", flush=True)
    # Once postlab's files change, every request is declined (the runner starts it cold) and the
    # launcher leaves when its last worker has ended, so the next request starts a fresh one.
    stale = False
    # A descriptor per child that becomes readable when it exits (Linux 5.3+), so its status
    # goes out at once rather than at the next poll.
    exits: set[int] = set()
    while os.getppid() == parent and not (stale and not waiting):
        readable, _, _ = select.select([server, *exits], [], [], _REAP_INTERVAL_S)
        for ended in exits.intersection(readable):
            os.close(ended)
            exits.discard(ended)
        if server in readable:
            connection, _ = server.accept()
            _, fds, _, _ = socket.recv_fds(connection, 1, 1)
            request = json.loads(connection.makefile("rb").readline())
            try:
                # A thread would not survive the fork: the runner starts this one cold.
                if threading.active_count() > 1:
                    raise OSError("threads running")
                stale = stale or bool(changed_sources(stamps))
                if stale:
                    raise OSError("postlab's files changed since they were imported")
                # Born in its folder: a worker is known by where it works from its first moment.
                os.chdir(request["cwd"])
            except OSError:
                connection.sendall(b"0\n")
                connection.close()
                os.close(fds[0])
                continue
            pid = os.fork()
            if pid == 0:
                _child(fds[0], request, server, connection)
            os.chdir(home)
            os.close(fds[0])
            connection.sendall(f"{pid}\n".encode())
            waiting[pid] = connection
            with contextlib.suppress(AttributeError, OSError):  # older kernels: the poll alone
                exits.add(os.pidfd_open(pid))
        for pid in list(waiting):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                connection = waiting.pop(pid)
                with contextlib.suppress(OSError):
                    connection.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
                connection.close()
    server.close()


if __name__ == "__main__":
    _serve(sys.argv[1], sys.argv[2:])

"""One learning-rate schedule across a lineage of runs, and the optimiser state they hand on.

An iteration that continues its parent takes the next stretch of the parent's schedule and
starts from the parent's Adam moments, so a chain of continuations trains like one long run
(one warm-up, one decay) instead of re-warming and re-decaying every few steps.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any, NoReturn

from postlab.tools.io.atomic import SHARED_MODE, replacing
from postlab.tools.io.removal import remove_aside
from postlab.tools.io.through_memory import write_through_memory

try:
    import fcntl
except ImportError:  # not POSIX: states are written in the foreground and never waited for
    fcntl = None

# Schedules a run can resume part-way (each a function of the step within the whole schedule).
RESUMABLE_SCHEDULES = ("cosine", "linear", "constant")
# Adam's moments of a run, beside its checkpoint: what a continuation resumes from.
OPTIMIZER_STATE_FILE = "optimizer.pt"
# Beside a state a background writer is still writing: the writer holds an exclusive lock on it
# until the state is in place, and readers wait for that lock.
WRITING_SUFFIX = ".writing"
# Beside a state a background writer failed to write, hidden from the state's own name: why, for
# the continuation that finds no state (the writer's output goes nowhere).
FAILED_SUFFIX = ".failed"
# How long a reader waits for a background writer (a gigabyte takes seconds on a slow disk).
STATE_WAIT_S = 600.0


def warmup_steps(total_steps: int, warmup_ratio: float) -> int:
    """Warm-up steps of a schedule `total_steps` long (the same rounding as a plain run)."""
    return math.ceil(total_steps * warmup_ratio)


def lr_multiplier(step: int, total_steps: int, warmup: int, shape: str) -> float:
    """The fraction of the peak learning rate at `step` of a schedule `total_steps` long."""
    if step < warmup:
        return step / max(1, warmup)
    if shape == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    if shape == "linear":
        return 1.0 - progress
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def continuing(
    trainer_cls: type,
    offset: int,
    total_steps: int,
    warmup: int,
    shape: str,
    optimizer_state: str | None,
) -> type:
    """A subclass of a TRL trainer that runs steps offset.. of a longer schedule and, when given,
    starts from a saved optimiser state (Trainer's documented override points)."""

    class Continuing(trainer_cls):
        def create_optimizer(self, model=None):
            optimizer = super().create_optimizer(model)
            loading = time.monotonic()
            state = take_optimizer_state(optimizer_state) if optimizer_state else None
            if state is not None:
                # The moments carry over, the settings do not: a saved state holds the peak rate
                # (`initial_lr`) its schedule was made with, which the scheduler below would keep,
                # so a stretch whose peak was raised or halved would train at its parent's.
                own = [
                    {key: value for key, value in group.items() if key != "params"}
                    for group in optimizer.param_groups
                ]
                optimizer.load_state_dict(state)
                for group, settings in zip(optimizer.param_groups, own, strict=True):
                    group.pop("initial_lr", None)
                    group.update(settings)
                self.resumed_optimizer = True
            elif optimizer_state:
                # The stretch still runs on its schedule, from fresh moments; the log says so.
                why = optimizer_state_failure(optimizer_state) or "not found"
                print(
                    f"optimiser state {optimizer_state} is missing ({why}): fresh moments",
                    flush=True,
                )
            self.optimizer_load_s = time.monotonic() - loading
            return optimizer

        def create_scheduler(self, num_training_steps: int, optimizer=None):
            if self.lr_scheduler is None:
                from torch.optim.lr_scheduler import LambdaLR

                self.lr_scheduler = LambdaLR(
                    optimizer or self.optimizer,
                    lambda step: lr_multiplier(offset + step, total_steps, warmup, shape),
                )
                self._created_lr_scheduler = True
            return self.lr_scheduler

    Continuing.__name__ = Continuing.__qualname__ = f"Continuing{trainer_cls.__name__}"
    return Continuing


# States being read ahead of the trainer, by path (a worker reads at most one).
_prefetched: dict[str, Future] = {}


def _read_optimizer_state(path: str) -> dict[str, Any] | None:
    if not await_optimizer_state(Path(path)):
        return None
    import torch

    return torch.load(path, weights_only=True)


def prefetch_optimizer_state(path: str) -> None:
    """Start reading the optimiser state at `path` in a thread, for `take_optimizer_state`.

    Filling a gigabyte of fresh memory with Adam's moments takes ~0.6 s on a small VM, and the
    read leaves the interpreter's lock while it waits on the kernel, so it goes on beside the
    worker's single-threaded setup (tokenizer, model, dataset) instead of after it.
    """
    if path in _prefetched:
        return
    future: Future = Future()

    def read() -> None:
        try:
            future.set_result(_read_optimizer_state(path))
        except BaseException as error:  # noqa: BLE001 - handed to the taker, raised there
            future.set_exception(error)

    _prefetched[path] = future
    threading.Thread(target=read, name="optimizer-state-prefetch", daemon=True).start()


def take_optimizer_state(path: str) -> dict[str, Any] | None:
    """The optimiser state at `path` (None when it is missing), read ahead if it was prefetched;
    a failed read raises here, where a plain read would have."""
    future = _prefetched.pop(path, None)
    return future.result() if future is not None else _read_optimizer_state(path)


def save_optimizer_state(optimizer: Any, out_dir: Path, background: bool = False) -> bool:
    """Save an optimiser's state beside a run's checkpoint, atomically; whether a background
    writer does it.

    With `background`, a forked writer saves it while the caller goes on and ends (Adam's
    moments are twice the model: seconds of disk a continuation only needs iterations later);
    `await_optimizer_state` waits for it. Only for a process holding its tensors in host memory;
    in the foreground where fork or locks are missing or a non-daemon thread runs (a fork copies
    no thread, so a lock one held would never be released in the writer; the daemons a worker
    keeps, tqdm's monitor and huggingface_hub's telemetry, hold none the writer takes).
    """
    path = Path(out_dir) / OPTIMIZER_STATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    # An earlier attempt's state, or why it failed, must never pass for this one's.
    path.unlink(missing_ok=True)
    _failure_note(path).unlink(missing_ok=True)
    others = [t for t in threading.enumerate() if t is not threading.current_thread()]
    forkable = fcntl is not None and hasattr(os, "fork") and all(t.daemon for t in others)
    if not (background and forkable):
        _write_state(optimizer, path)
        return False
    marker = _writing_marker(path)
    marker.touch(mode=SHARED_MODE)
    ready, told = os.pipe()
    # Nothing buffered before the fork may be printed twice.
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        writer = os.fork()
    except OSError:
        writer = None
    if writer == 0:
        os.close(ready)
        _write_and_exit(optimizer, path, told)
    os.close(told)
    # Returns once the writer holds the marker's lock (its own, as network file systems need):
    # no reader can come between.
    answer = os.read(ready, 1) if writer is not None else b""
    os.close(ready)
    if answer != b"1":
        _write_state(optimizer, path)
        marker.unlink(missing_ok=True)
    return answer == b"1"


def _write_state(optimizer: Any, path: Path) -> None:
    import torch

    state = optimizer.state_dict()
    tensors = [v for entry in state["state"].values() for v in entry.values() if torch.is_tensor(v)]
    nbytes = sum(t.numel() * t.element_size() for t in tensors)
    with replacing(path) as tmp:
        # The background writer shares the cores with the lab's next steps: through memory it
        # needs 1.2 s of processor time for the demo's 1 GB, straight 3.0 s (through_memory.py).
        write_through_memory(
            tmp.parent, nbytes, lambda folder: torch.save(state, folder / tmp.name)
        )


def _write_and_exit(optimizer: Any, path: Path, told: int) -> NoReturn:
    code = 1
    try:
        # Out of the worker's process group, which the runner kills once the worker has ended,
        # and off its pipe, whose end the runner waits for.
        os.setsid()
        quiet = os.open(os.devnull, os.O_RDWR)
        for stream in (0, 1, 2):
            os.dup2(quiet, stream)
        lock = os.open(_writing_marker(path), os.O_WRONLY)
        fcntl.flock(lock, fcntl.LOCK_EX)
        os.write(told, b"1")
        os.close(told)
        _write_state(optimizer, path)
        code = 0
    except BaseException as error:  # noqa: BLE001 - no one sees this process fail: the note says it
        with contextlib.suppress(OSError):
            _failure_note(path).write_text(f"{type(error).__name__}: {error}"[:500])
    finally:
        # The state is in place (or failed) before the marker goes; the lock goes with the exit.
        with contextlib.suppress(OSError):
            _writing_marker(path).unlink()
        os._exit(code)


def _writing_marker(path: Path) -> Path:
    return path.with_name(path.name + WRITING_SUFFIX)


def _failure_note(path: Path) -> Path:
    # Named as a partial file is, so a sweep of the folder takes it with them.
    return path.with_name(f".{path.name}{FAILED_SUFFIX}")


def optimizer_state_failure(path: str | Path) -> str | None:
    """Why a background writer left no state at `path` (a full disk, say); None when none failed."""
    try:
        return _failure_note(Path(path)).read_text().strip() or None
    except OSError:
        return None


def await_optimizer_state(path: Path, timeout_s: float = STATE_WAIT_S) -> bool:
    """Wait while a background writer still writes the state at `path`; whether it is there."""
    path = Path(path)
    try:
        lock = os.open(_writing_marker(path), os.O_RDONLY)
    except FileNotFoundError:
        return path.is_file()
    if fcntl is None:
        os.close(lock)
        return path.is_file()
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.05)
    finally:
        os.close(lock)
    return path.is_file()


def prune_optimizer_states(models_dir: Path, keep: set[Path]) -> list[str]:
    """Delete saved optimiser states outside the iteration folders in `keep`; the folders named.

    A state still being written there is waited for first (it would land after the sweep), and
    what a killed writer left (its marker, a partial temporary file) goes too.
    """
    kept = {Path(folder).resolve() for folder in keep}
    removed = []
    for folder in sorted(p for p in Path(models_dir).glob("*") if p.is_dir()):
        if folder.resolve() in kept:
            continue
        state = folder / OPTIMIZER_STATE_FILE
        marker = _writing_marker(state)
        if marker.exists():
            await_optimizer_state(state)
            marker.unlink(missing_ok=True)
        for partial in folder.glob(f".{OPTIMIZER_STATE_FILE}.*"):
            partial.unlink(missing_ok=True)
        if state.is_file():
            remove_aside(state)
            removed.append(folder.name)
    return removed

"""Running a TrainingSpec: a TRL job in a subprocess, streamed, bounded, failures as data.

One concern, the parent's side of one training process (prepare, start, stream, time out,
kill, classify); the worker's side lives in worker.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from postlab.records.artifacts import FailureInfo, TrainingResult
from postlab.records.outcomes import finite_number
from postlab.tools.io.atomic import write_text_atomic
from postlab.tools.models.resolution import is_checkpoint_dir
from postlab.tools.tracking.trackers import tracker_env
from postlab.tools.training.devices import visible_gpus
from postlab.tools.training.failures import (
    EXIT_OK,
    LOG_FILE,
    RESULT_FILE,
    SPEC_FILE,
    WORKER_REPORT_FILE,
    classify_failure,
    normalize_error,
    parse_event,
)
from postlab.tools.training.processes import (
    KILL_GRACE_S,
    PID_FILE,
    WORKER_MODULE,
    end_orphaned_worker,
    kill_group,
)
from postlab.tools.training.spec import TrainingSpec, check_spec
from postlab.tools.training.warm_start import WarmProcess, prewarm, start_warm, warm_enabled

# Seconds to wait for the pipe to close after the worker exits (a grandchild may hold it open).
_EOF_GRACE_S = 5.0
_TAIL_LINES = 400
# The worker's temporary files (datasets' map caches among them) live in its iteration folder and
# go when it ends: a worker forked warm leaves by os._exit, so its libraries' exit-time clean-ups
# never run, and a killed worker runs none either.
WORKER_TMP_DIR = "tmp"


def _cached_result(out_dir: Path, signature: str) -> TrainingResult | None:
    path = out_dir / RESULT_FILE
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(raw, dict) or raw.get("status") != "ok":
        return None
    if raw.get("spec_signature") != signature:
        return None
    checkpoint = raw.get("checkpoint")
    if not checkpoint or not is_checkpoint_dir(Path(checkpoint)):
        return None
    try:
        return TrainingResult.model_validate(raw)
    except ValidationError:
        return None


def worker_command(spec: TrainingSpec, spec_path: Path) -> list[str]:
    """The command that runs the worker: one process, or torchrun's data-parallel group."""
    worker = ["-m", WORKER_MODULE, str(spec_path)]
    if spec.num_processes == 1:
        return [sys.executable, *worker]
    launcher = ["-m", "torch.distributed.run", "--nproc_per_node", str(spec.num_processes)]
    # A free port per launch: two runs on one machine must not join each other's group.
    rendezvous = ["--master_addr", "127.0.0.1", "--master_port", str(free_port())]
    return [sys.executable, *launcher, *rendezvous, *worker]


def free_port() -> int:
    """A TCP port on the loopback nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _base_env() -> dict[str, str]:
    env = dict(os.environ)
    env["TOKENIZERS_PARALLELISM"] = "false"
    env["PYTHONUNBUFFERED"] = "1"
    # Progress bars redraw with carriage returns, which would flood the line-oriented log.
    env["TQDM_DISABLE"] = "1"
    env["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    return env


def _worker_env(spec: TrainingSpec, out_dir: Path) -> dict[str, str]:
    env = _base_env()
    log_dir = Path(spec.tracker_dir) if spec.tracker_dir else out_dir
    env.update(tracker_env(spec.tracker, log_dir, spec.tracker_project))
    env["TMPDIR"] = str(out_dir / WORKER_TMP_DIR)
    if spec.threads is not None:
        # Thread pools size themselves at import time, before the worker can call set_num_threads.
        env["OMP_NUM_THREADS"] = str(spec.threads_per_process)
        env["MKL_NUM_THREADS"] = str(spec.threads_per_process)
    return env


def _forks_warm() -> bool:
    # CUDA must not be forked: on a GPU every worker starts cold.
    return warm_enabled() and not visible_gpus()


def prewarm_workers() -> None:
    """Start the warm launcher now when workers here will fork from it, so its imports overlap
    other work; a no-op where workers start cold."""
    if _forks_warm():
        prewarm(_base_env())


def _start_worker(
    spec: TrainingSpec, spec_path: Path, env: dict[str, str], out_dir: Path
) -> subprocess.Popen | WarmProcess:
    """The worker's process, in its own session and working in its output folder: forked warm
    for one CPU process (imports already done), else started cold."""
    # Unsloth must patch before transformers is imported: it starts cold.
    if spec.num_processes == 1 and not spec.use_unsloth and _forks_warm():
        with contextlib.suppress(OSError):  # no launcher here: the cold start still works
            return start_warm(WORKER_MODULE, [str(spec_path)], env, str(out_dir))
    return subprocess.Popen(
        worker_command(spec, spec_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=out_dir,
        start_new_session=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        bufsize=1,
    )


def _pump(stream, lines: queue.Queue) -> None:
    try:
        for line in stream:
            lines.put(line)
    finally:
        lines.put(None)


def run_training(
    spec: TrainingSpec,
    on_progress: Callable[[dict], None] | None = None,
    log_path: Path | None = None,
) -> TrainingResult:
    """Run one training spec in a subprocess; never raises for a failed run."""
    started = time.monotonic()
    out_dir = Path(spec.output_dir).expanduser().resolve()
    signature = spec.signature()
    log_file = Path(log_path) if log_path is not None else out_dir / LOG_FILE

    def finish(result: TrainingResult) -> TrainingResult:
        result.wall_s = round(time.monotonic() - started, 3)
        with contextlib.suppress(OSError):
            write_text_atomic(out_dir / RESULT_FILE, result.model_dump_json(indent=2))
        return result

    def failed(info: FailureInfo, metrics: dict[str, float] | None = None) -> TrainingResult:
        return finish(
            TrainingResult(
                status="failed",
                failure=info,
                metrics=metrics or {},
                log_path=str(log_file),
                spec_signature=signature,
            )
        )

    cached = _cached_result(out_dir, signature)
    if cached is not None:
        return cached

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        log_file.parent.mkdir(parents=True, exist_ok=True)
        worker_spec = spec.model_copy(update={"output_dir": str(out_dir)})
        spec_path = out_dir / SPEC_FILE
        write_text_atomic(spec_path, worker_spec.model_dump_json(indent=2))
        # A worker left running by a killed run would race this one for the same folder.
        end_orphaned_worker(out_dir)
        (out_dir / WORKER_TMP_DIR).mkdir(exist_ok=True)
        for stale in (RESULT_FILE, WORKER_REPORT_FILE, PID_FILE):
            with contextlib.suppress(FileNotFoundError):
                (out_dir / stale).unlink()
    except OSError as error:
        text = f"cannot prepare output_dir {str(out_dir)!r}: {error}"
        return failed(
            FailureInfo(kind="bad_config", message=text, normalized=normalize_error(text))
        )

    problems = check_spec(spec)
    if problems:
        text = "bad training spec: " + "; ".join(problems)
        with contextlib.suppress(OSError):
            log_file.write_text(text + "\n")
        return failed(
            FailureInfo(kind="bad_config", message=text, normalized=normalize_error(text))
        )

    def forward(event: dict) -> None:
        if on_progress is None:
            return
        try:
            on_progress(event)
        except Exception as error:  # noqa: BLE001 - a broken observer must not stop training
            log.write(f"[postlab] on_progress raised {type(error).__name__}: {error}\n")

    tail: deque[str] = deque(maxlen=_TAIL_LINES)
    partial: dict[str, float] = {}
    rewards: list[float] = []
    timed_out = False
    with open(log_file, "w", encoding="utf-8", errors="replace") as log:
        try:
            proc = _start_worker(spec, spec_path, _worker_env(spec, out_dir), out_dir)
        except OSError as error:
            text = f"cannot start the training worker: {error}"
            log.write(text + "\n")
            return failed(FailureInfo(kind="crash", message=text, normalized=normalize_error(text)))
        pid_file = out_dir / PID_FILE
        try:
            pid_file.write_text(str(proc.pid))
            warm = isinstance(proc, WarmProcess)
            forward(
                {"event": "started", "pid": proc.pid, "max_steps": spec.max_steps, "warm": warm}
            )
            lines: queue.Queue = queue.Queue()
            reader = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
            reader.start()
            deadline = started + spec.timeout_s
            exited_at: float | None = None
            drained = False
            # Lines are handled on this thread so that on_progress runs in the caller's context.
            while True:
                now = time.monotonic()
                if now >= deadline:
                    timed_out = True
                    note = f"[postlab] timeout after {spec.timeout_s:g} s: killing the worker"
                    log.write(note + "\n")
                    tail.append(note)
                    kill_group(proc)
                    break
                try:
                    line = lines.get(timeout=min(0.5, deadline - now))
                except queue.Empty:
                    if proc.poll() is not None:
                        exited_at = exited_at or now
                        if now - exited_at > _EOF_GRACE_S:
                            break
                    continue
                if line is None:
                    drained = True
                    break
                log.write(line)
                # Flushed per line so `tail -f train.log` follows a run as it happens.
                log.flush()
                line = line.rstrip("\n")
                tail.append(line)
                event = parse_event(line)
                if event is None:
                    continue
                if event.get("event") == "progress":
                    for key, name in (("step", "steps"), ("loss", "final_loss")):
                        value = finite_number(event.get(key))
                        if value is not None:
                            partial[name] = value
                    reward = finite_number(event.get("reward"))
                    if reward is not None:
                        rewards.append(reward)
                forward(event)
            if proc.poll() is None:
                try:
                    proc.wait(timeout=KILL_GRACE_S)
                except subprocess.TimeoutExpired:
                    kill_group(proc)
            else:
                # The leader is gone; whatever it left behind in its group goes too.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
            # Lines still in flight after a kill belong in the log too (after the end of the
            # output, nothing is: waiting for more would only cost the timeout).
            while not drained:
                try:
                    line = lines.get(timeout=0.2)
                except queue.Empty:
                    break
                if line is None:
                    break
                log.write(line)
                # Flushed per line so `tail -f train.log` follows a run as it happens.
                log.flush()
                tail.append(line.rstrip("\n"))
            log.write(f"[postlab] worker exit code {proc.returncode}\n")
        finally:
            if proc.poll() is None:
                kill_group(proc)
            with contextlib.suppress(FileNotFoundError):
                pid_file.unlink()
            shutil.rmtree(out_dir / WORKER_TMP_DIR, ignore_errors=True)

    if rewards:
        partial["mean_reward"] = sum(rewards) / len(rewards)
        partial["final_reward"] = rewards[-1]
    worker = _read_worker_report(out_dir / WORKER_REPORT_FILE)
    if (
        not timed_out
        and worker is not None
        and worker.get("status") == "ok"
        and worker.get("checkpoint")
        and is_checkpoint_dir(Path(worker["checkpoint"]))
    ):
        metrics = {**partial, **_float_metrics(worker.get("metrics"))}
        return finish(
            TrainingResult(
                status="ok",
                checkpoint=str(worker["checkpoint"]),
                metrics=metrics,
                log_path=str(log_file),
                spec_signature=signature,
            )
        )
    returncode = proc.returncode
    tail_text = "\n".join(tail)
    if returncode == EXIT_OK and not timed_out:
        tail_text += "\nworker exited without reporting a saved checkpoint"
    metrics = {**partial, **_float_metrics((worker or {}).get("metrics"))}
    return failed(classify_failure(returncode, tail_text, timed_out), metrics)


def _read_worker_report(path: Path) -> dict | None:
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return raw if isinstance(raw, dict) else None


def _float_metrics(raw: Any) -> dict[str, float]:
    if not isinstance(raw, dict):
        return {}
    return {str(k): v for k, v in ((k, finite_number(v)) for k, v in raw.items()) if v is not None}

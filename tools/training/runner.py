"""Running a TrainingSpec: a TRL job in a subprocess, streamed, bounded, failures as data.

One concern, the parent's side of one training process (prepare, stream, time out, kill,
classify); how its process starts lives in worker_start.py, how it ends in worker_end.py, the
worker's side in worker.py.
"""

from __future__ import annotations

import contextlib
import json
import queue
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
from postlab.tools.training.disk_room import room_shortfall
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
    PID_FILE,
    end_orphaned_worker,
    kill_group,
)
from postlab.tools.training.spec import TrainingSpec, check_spec
from postlab.tools.training.warm_start import WarmProcess
from postlab.tools.training.worker_end import WorkerEnding, wait_for_exiting_workers
from postlab.tools.training.worker_start import remove_left_temporaries, start_worker

# Seconds to wait for the pipe to close after the worker exits (a grandchild may hold it open).
_EOF_GRACE_S = 5.0
_TAIL_LINES = 400


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


def run_training(
    spec: TrainingSpec,
    on_progress: Callable[[dict], None] | None = None,
    log_path: Path | None = None,
) -> TrainingResult:
    """Run one training spec in a subprocess; never raises for a failed run."""
    # One worker at a time: the last one's memory (a GPU's too) is free before the next starts.
    wait_for_exiting_workers()
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
        remove_left_temporaries(out_dir)
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

    shortfall = room_shortfall(spec, out_dir)
    if shortfall:
        with contextlib.suppress(OSError):
            log_file.write_text(shortfall + "\n")
        return failed(
            FailureInfo(kind="disk", message=shortfall, normalized=normalize_error(shortfall))
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
    reported_done = False
    log = open(log_file, "w", encoding="utf-8", errors="replace")  # noqa: SIM115 - may outlive this call
    try:
        proc, temporary = start_worker(spec, spec_path, out_dir)
    except OSError as error:
        text = f"cannot start the training worker: {error}"
        log.write(text + "\n")
        log.close()
        return failed(FailureInfo(kind="crash", message=text, normalized=normalize_error(text)))
    pid_file = out_dir / PID_FILE
    ending = WorkerEnding(proc, log, tail, pid_file, temporary)
    try:
        pid_file.write_text(str(proc.pid))
        warm = isinstance(proc, WarmProcess)
        forward({"event": "started", "pid": proc.pid, "max_steps": spec.max_steps, "warm": warm})
        deadline = started + spec.timeout_s
        exited_at: float | None = None
        # Lines are handled on this thread so that on_progress runs in the caller's context.
        while True:
            now = time.monotonic()
            if now >= deadline:
                timed_out = True
                ending.write(f"[postlab] timeout after {spec.timeout_s:g} s: killing the worker\n")
                kill_group(proc)
                break
            try:
                line = ending.next_line(timeout=min(0.5, deadline - now))
            except queue.Empty:
                if proc.poll() is not None:
                    exited_at = exited_at or now
                    if now - exited_at > _EOF_GRACE_S:
                        break
                continue
            if line is None:
                break
            event = parse_event(line.rstrip("\n"))
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
            if event.get("event") == "done":
                # The worker has written its report; all it has left is to exit.
                reported_done = True
                break
        worker = _read_worker_report(out_dir / WORKER_REPORT_FILE)
        succeeded = (
            not timed_out
            and worker is not None
            and worker.get("status") == "ok"
            and worker.get("checkpoint")
            and is_checkpoint_dir(Path(worker["checkpoint"]))
        )
    except BaseException:
        ending.finish(wait=False)
        raise
    if reported_done and succeeded:
        # Exiting frees the worker's memory first (about 0.07 s a GB here), and only then closes
        # its output and reports its status: the lab goes on meanwhile.
        ending.finish_in_background()
    else:
        ending.finish()
    if rewards:
        partial["mean_reward"] = sum(rewards) / len(rewards)
        partial["final_reward"] = rewards[-1]
    if succeeded:
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

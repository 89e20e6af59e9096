"""Training subprocess: `python -m postlab.tools.training.worker SPEC_JSON` runs one TRL job."""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from postlab.tools.io.atomic import share_files, write_json_atomic
from postlab.tools.io.rundir import CHECKPOINT_DIR
from postlab.tools.models.resolution import save_checkpoint as save_atomically
from postlab.tools.tracking.trackers import start_tracker_service
from postlab.tools.training.failures import (
    EXIT_BAD_CONFIG,
    EXIT_CRASH,
    EXIT_NAN,
    EXIT_OK,
    EXIT_OOM,
    WORKER_REPORT_FILE,
)
from postlab.tools.training.schedule import prefetch_optimizer_state, save_optimizer_state
from postlab.tools.training.setup import TRAINER_SUBDIR, ConfigError, build_trainer
from postlab.tools.training.spec import TrainingSpec, check_spec, resolve_use_unsloth
from postlab.tools.training.worker_events import (
    Diverged,
    is_main_process,
    json_safe,
    make_first_callback,
    make_progress_callback,
    print_event,
)


def _write_report(path: Path, payload: dict[str, Any]) -> None:
    if not is_main_process():
        return
    write_json_atomic(path, {k: json_safe(v) for k, v in payload.items()})


def save_merged_checkpoint(model, tokenizer, out_dir: Path) -> Path:
    """Merge any LoRA adapter and save a plain checkpoint to out_dir/checkpoint atomically."""
    from peft import PeftModel

    if isinstance(model, PeftModel):
        model = model.merge_and_unload()
    return save_atomically(model, tokenizer, out_dir / CHECKPOINT_DIR)


def save_sharded_checkpoint(trainer, tokenizer, out_dir: Path) -> Path:
    """Gather an FSDP run's full weights (all ranks take part) into out_dir/checkpoint; only
    rank 0 writes, first to a staging folder, so the checkpoint is whole or absent."""
    staging = out_dir / ".checkpoint.fsdp"
    trainer.save_model(str(staging))
    target = out_dir / CHECKPOINT_DIR
    if is_main_process():
        tokenizer.save_pretrained(staging)
        (staging / "training_args.bin").unlink(missing_ok=True)
        share_files(staging)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    return target


def _metrics(record: dict[str, Any], train_metrics: dict[str, Any], steps: int) -> dict[str, Any]:
    losses = record.get("losses", [])
    summary = {**record.get("summary", {}), **train_metrics}
    runtime = float(summary.get("train_runtime", 0.0))
    metrics: dict[str, Any] = {
        "train_loss": float(summary.get("train_loss", sum(losses) / len(losses) if losses else 0)),
        "final_loss": losses[-1] if losses else float("nan"),
        "steps": steps,
        "runtime_s": runtime,
        "step_time_s": runtime / steps if steps else 0.0,
    }
    rewards = record.get("rewards", [])
    if rewards:
        metrics["mean_reward"] = sum(rewards) / len(rewards)
        metrics["final_reward"] = rewards[-1]
    return metrics


def _is_oom(error: BaseException) -> bool:
    if isinstance(error, MemoryError):
        return True
    text = f"{type(error).__name__}: {error}".lower()
    return "outofmemoryerror" in text or "out of memory" in text or "can't allocate" in text


def _fail(out_dir: Path | None, kind: str, phase: str, message: str, code: int) -> int:
    print_event({"event": "error", "kind": kind, "phase": phase, "message": message})
    if out_dir is not None:
        with contextlib.suppress(OSError):
            _write_report(
                out_dir / WORKER_REPORT_FILE,
                {"status": "failed", "kind": kind, "phase": phase, "message": message},
            )
    return code


def main(argv: list[str] | None = None) -> int:
    """Run the spec at argv[0]; the exit code tells the parent how it ended."""
    argv = sys.argv[1:] if argv is None else argv
    started = time.monotonic()
    if len(argv) != 1:
        print("usage: python -m postlab.tools.training.worker SPEC_JSON", file=sys.stderr)
        return _fail(None, "bad_config", "config", "usage: train_worker SPEC_JSON", EXIT_BAD_CONFIG)
    out_dir: Path | None = None
    try:
        raw = json.loads(Path(argv[0]).read_text())
        if isinstance(raw, dict) and isinstance(raw.get("output_dir"), str):
            out_dir = Path(raw["output_dir"])
        spec = TrainingSpec.model_validate(raw)
        problems = check_spec(spec)
        if problems:
            raise ConfigError("; ".join(problems))
    except (OSError, json.JSONDecodeError, ValidationError, ConfigError) as error:
        message = f"bad training spec: {type(error).__name__}: {error}"
        print(message, flush=True)
        return _fail(out_dir, "bad_config", "config", message, EXIT_BAD_CONFIG)

    out_dir = Path(spec.output_dir)
    phase = "setup"
    try:
        start_tracker_service(spec.tracker)
        import torch

        if spec.threads is not None:
            torch.set_num_threads(spec.threads_per_process)
        if spec.optimizer_state:
            prefetch_optimizer_state(spec.optimizer_state)
        use_unsloth = resolve_use_unsloth(spec)
        if use_unsloth:
            # Unsloth patches transformers and TRL, so it must be imported before them.
            import unsloth  # noqa: F401
        import datasets
        from transformers import set_seed

        # Keep map() caches out of the dataset directory, which other runs may share.
        datasets.disable_caching()
        set_seed(spec.seed)
        record: dict[str, Any] = {}
        callback = make_progress_callback(spec.max_steps, started, record)
        trainer, tokenizer = build_trainer(spec, callback, use_unsloth)
        # Between the first callback's start and ours (the last) the trackers' callbacks open
        # their runs: wandb's takes about 0.9 s, inside the trainer's own training time.
        trainer.callback_handler.callbacks.insert(0, make_first_callback(record))
        setup_s = time.monotonic() - started
        print_event({"event": "setup", "setup_s": round(setup_s, 3)})

        phase = "train"
        output = trainer.train()
        steps = int(trainer.state.global_step)

        phase = "save"
        saving = time.monotonic()
        if spec.sharding == "fsdp":
            # Every rank holds a shard: gathering the weights is collective, rank 0 writes them.
            checkpoint = save_sharded_checkpoint(trainer, tokenizer, out_dir)
        if not is_main_process():
            # Data-parallel replicas hold the same weights: rank 0 saves and reports them.
            return EXIT_OK
        if spec.sharding != "fsdp":
            checkpoint = save_merged_checkpoint(trainer.model, tokenizer, out_dir)
        checkpoint_s = time.monotonic() - saving
        metrics = _metrics(record, dict(output.metrics or {}), steps)
        # Where the process's time went beyond the training loop (benchmarks/demo_time.py).
        metrics["setup_s"] = setup_s
        if "callbacks_starting" in record and "callbacks_started" in record:
            metrics["tracker_start_s"] = record["callbacks_started"] - record["callbacks_starting"]
        metrics["checkpoint_save_s"] = checkpoint_s
        metrics["optimizer_load_s"] = float(getattr(trainer, "optimizer_load_s", 0.0))
        metrics["resumed_optimizer"] = float(getattr(trainer, "resumed_optimizer", False))
        metrics["processes"] = float(trainer.args.world_size)
        # Rows a pass and passes a step, as fitted to memory (their product is the step's batch).
        metrics["micro_batch"] = float(trainer.args.per_device_train_batch_size)
        metrics["accumulation"] = float(trainer.args.gradient_accumulation_steps)
        # The sequence length trained at: the spec's, raised to hold the longest row.
        metrics["max_length"] = float(getattr(trainer.args, "max_length", None) or spec.max_length)
        wandb = sys.modules.get("wandb")
        if wandb is not None and wandb.run is not None:
            with contextlib.suppress(Exception):
                wandb.finish()
        if spec.save_optimizer:
            # After the tracker's threads have ended: moments in host memory are written by a
            # forked writer while the lab goes on.
            background = spec.num_processes == 1 and not torch.cuda.is_available()
            saving = time.monotonic()
            forked = save_optimizer_state(trainer.optimizer, out_dir, background=background)
            metrics["optimizer_save_s"] = time.monotonic() - saving
            print(f"optimiser state: {'a background writer' if forked else 'written'}", flush=True)
        with contextlib.suppress(OSError):
            (out_dir / TRAINER_SUBDIR).rmdir()
        metrics["process_s"] = time.monotonic() - started
        _write_report(
            out_dir / WORKER_REPORT_FILE,
            {
                "status": "ok",
                "checkpoint": str(checkpoint.resolve()),
                "metrics": metrics,
                "spec_signature": spec.signature(),
            },
        )
        print_event({"event": "done", "checkpoint": str(checkpoint.resolve()), **metrics})
        return EXIT_OK
    except Diverged as error:
        return _fail(out_dir, "nan", phase, str(error), EXIT_NAN)
    except BaseException as error:  # noqa: BLE001 - every ending must become an exit code
        if isinstance(error, KeyboardInterrupt | SystemExit):
            raise
        traceback.print_exc()
        sys.stdout.flush()
        message = f"{type(error).__name__}: {error}"
        if _is_oom(error):
            return _fail(
                out_dir, "oom", phase, f"out of memory during {phase}: {message}", EXIT_OOM
            )
        if phase == "setup" and isinstance(
            error, ValueError | TypeError | KeyError | FileNotFoundError | ImportError
        ):
            return _fail(out_dir, "bad_config", phase, message, EXIT_BAD_CONFIG)
        return _fail(out_dir, "crash", phase, message, EXIT_CRASH)


if __name__ == "__main__":
    sys.exit(main())

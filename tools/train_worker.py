"""Training subprocess: `python -m postlab.tools.train_worker SPEC_JSON` runs one TRL job."""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from postlab.tools.failures import (
    EVENT_MARKER,
    EXIT_BAD_CONFIG,
    EXIT_CRASH,
    EXIT_NAN,
    EXIT_OK,
    EXIT_OOM,
)
from postlab.tools.models import save_checkpoint as save_atomically
from postlab.tools.training import TrainingSpec, check_spec, resolve_use_unsloth

# Test hook: poison the weights before the first step so the loss really becomes NaN.
INJECT_NAN_ENV = "POSTLAB_TEST_INJECT_NAN"
_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class ConfigError(ValueError):
    """A spec or dataset that cannot be trained as asked."""


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


def emit(event: dict[str, Any]) -> None:
    """Print one JSON event line for the parent process."""
    clean = {k: _json_safe(v) for k, v in event.items()}
    print(EVENT_MARKER + json.dumps(clean, allow_nan=False), flush=True)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def write_atomic_json(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON to `path` through a temp file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", dir=path.parent)
    with os.fdopen(fd, "w") as handle:
        json.dump({k: _json_safe(v) for k, v in payload.items()}, handle, indent=2)
    os.replace(tmp, path)


def make_progress_callback(max_steps: int, started: float, record: dict[str, Any]):
    """A TrainerCallback that prints progress events and stops on a NaN or infinite loss."""
    from transformers import TrainerCallback

    class ProgressCallback(TrainerCallback):
        def on_step_begin(self, args, state, control, model=None, **kwargs):
            if (
                state.global_step == 0
                and os.environ.get(INJECT_NAN_ENV) == "1"
                and model is not None
            ):
                import torch

                with torch.no_grad():
                    model.get_input_embeddings().weight.fill_(float("nan"))

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            if "train_loss" in logs or "train_runtime" in logs:
                record["summary"] = dict(logs)
                return
            if "loss" not in logs:
                return
            loss = float(logs["loss"])
            event = {
                "event": "progress",
                "step": state.global_step,
                "max_steps": state.max_steps or max_steps,
                "loss": loss,
                "learning_rate": logs.get("learning_rate"),
                "grad_norm": logs.get("grad_norm"),
                "elapsed_s": round(time.monotonic() - started, 3),
            }
            if logs.get("reward") is not None:
                event["reward"] = float(logs["reward"])
                record.setdefault("rewards", []).append(event["reward"])
            record.setdefault("losses", []).append(loss)
            emit(event)
            if not math.isfinite(loss):
                raise Diverged(f"loss is {loss} at step {state.global_step}: training diverged")

    return ProgressCallback()


def load_dataset_dir(path: str):
    """Load a `save_to_disk` dataset (a DatasetDict yields its train split)."""
    from datasets import DatasetDict, load_from_disk

    data = load_from_disk(path)
    if isinstance(data, DatasetDict):
        if "train" not in data:
            raise ConfigError(f"dataset {path!r} has splits {list(data)} but no 'train' split")
        data = data["train"]
    return data


def check_columns(method: str, columns: list[str]) -> None:
    """Raise ConfigError when a dataset lacks the columns the method needs."""
    if method == "sft":
        ok = {"prompt", "completion"} <= set(columns) or "messages" in columns or "text" in columns
        need = "'prompt'+'completion', 'messages' or 'text'"
    else:
        ok = {"prompt", "answer"} <= set(columns)
        need = "'prompt' and 'answer'"
    if not ok:
        raise ConfigError(f"{method} dataset needs columns {need}; it has {columns}")


def make_task_reward(task_name: str | None, task_dir: str | None):
    """A GRPO reward function scoring each completion with the task's verifier."""
    from postlab.tools.tasks import load_task

    task = load_task(task_name, task_dir=task_dir)

    def task_reward(completions, answer, **kwargs) -> list[float]:
        scores = []
        for completion, expected in zip(completions, answer, strict=True):
            if isinstance(completion, list):
                # Conversational completions are message lists; the reply is the last message.
                text = completion[-1].get("content", "") if completion else ""
            else:
                text = completion
            scores.append(float(task.reward(str(text), str(expected))))
        return scores

    return task_reward


def load_model(spec: TrainingSpec, use_unsloth: bool):
    """Load the base model and tokenizer; with Unsloth the LoRA adapter is attached here."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    if use_unsloth:
        from unsloth import FastLanguageModel

        model, tokenizer = FastLanguageModel.from_pretrained(
            model_name=spec.base_model,
            max_seq_length=spec.max_length + spec.max_completion_length,
            dtype=dtype,
            load_in_4bit=False,
            full_finetuning=spec.adapter == "full",
        )
        if spec.adapter == "lora":
            model = FastLanguageModel.get_peft_model(
                model,
                r=spec.lora_r,
                lora_alpha=spec.lora_alpha,
                lora_dropout=spec.lora_dropout,
                target_modules=_LORA_TARGETS,
                use_gradient_checkpointing="unsloth",
                random_state=spec.seed,
            )
    else:
        model = AutoModelForCausalLM.from_pretrained(spec.base_model, dtype=dtype)
        tokenizer = AutoTokenizer.from_pretrained(spec.base_model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def common_args(spec: TrainingSpec, cuda: bool, bf16: bool, report_to: str) -> dict[str, Any]:
    """TrainingArguments shared by SFT and GRPO."""
    return {
        "output_dir": str(Path(spec.output_dir) / "trainer"),
        "max_steps": spec.max_steps,
        "per_device_train_batch_size": spec.batch_size,
        "gradient_accumulation_steps": spec.grad_accum,
        "learning_rate": spec.learning_rate,
        "lr_scheduler_type": spec.lr_scheduler,
        # transformers 5 folded warmup_ratio into warmup_steps; an int keeps the meaning explicit.
        "warmup_steps": math.ceil(spec.max_steps * spec.warmup_ratio),
        "weight_decay": spec.weight_decay,
        "logging_steps": 1,
        "logging_strategy": "steps",
        # The default filter replaces NaN losses by the running mean, hiding divergence.
        "logging_nan_inf_filter": False,
        "save_strategy": "no",
        "report_to": report_to,
        "run_name": spec.run_name or Path(spec.output_dir).name,
        "seed": spec.seed,
        "data_seed": spec.seed,
        "use_cpu": not cuda,
        "bf16": bf16,
        "fp16": False,
        # TRL turns checkpointing on by default; on CPU the recomputation only costs time.
        "activation_checkpointing": cuda,
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
    }


def build_trainer(spec: TrainingSpec, callback, use_unsloth: bool):
    """Load model and data and construct the TRL trainer for the spec."""
    import torch

    dataset = load_dataset_dir(spec.dataset_path)
    check_columns(spec.method, list(dataset.column_names))
    if len(dataset) == 0:
        raise ConfigError(f"dataset {spec.dataset_path!r} is empty")
    model, tokenizer = load_model(spec, use_unsloth)
    cuda = torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported()
    report_to = _report_to()
    peft_config = None
    if spec.adapter == "lora" and not use_unsloth:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=spec.lora_r,
            lora_alpha=spec.lora_alpha,
            lora_dropout=spec.lora_dropout,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        )
    args = common_args(spec, cuda, bf16, report_to)
    if spec.method == "sft":
        from trl import SFTConfig, SFTTrainer

        config = SFTConfig(
            **args,
            max_length=spec.max_length,
            completion_only_loss=True if "prompt" in dataset.column_names else None,
            packing=False,
        )
        return SFTTrainer(
            model=model,
            args=config,
            train_dataset=dataset,
            processing_class=tokenizer,
            callbacks=[callback],
            peft_config=peft_config,
        ), tokenizer

    from trl import GRPOConfig, GRPOTrainer

    tokenizer.padding_side = "left"
    config = GRPOConfig(
        **args,
        num_generations=spec.num_generations,
        max_completion_length=spec.max_completion_length,
        beta=spec.beta,
        temperature=spec.temperature,
        log_completions=False,
    )
    reward = make_task_reward(spec.task, spec.task_dir)
    return GRPOTrainer(
        model=model,
        reward_funcs=[reward],
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[callback],
        peft_config=peft_config,
    ), tokenizer


def _report_to() -> str:
    if os.environ.get("WANDB_MODE") == "disabled" or os.environ.get("WANDB_DISABLED") == "true":
        return "none"
    import importlib.util

    return "wandb" if importlib.util.find_spec("wandb") is not None else "none"


def save_merged_checkpoint(model, tokenizer, out_dir: Path) -> Path:
    """Merge any LoRA adapter and save a plain checkpoint to out_dir/checkpoint atomically."""
    from peft import PeftModel

    if isinstance(model, PeftModel):
        model = model.merge_and_unload()
    return save_atomically(model, tokenizer, out_dir / "checkpoint")


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
    emit({"event": "error", "kind": kind, "phase": phase, "message": message})
    if out_dir is not None:
        with contextlib.suppress(OSError):
            write_atomic_json(
                out_dir / "result.json",
                {"status": "failed", "kind": kind, "phase": phase, "message": message},
            )
    return code


def main(argv: list[str] | None = None) -> int:
    """Run the spec at argv[0]; the exit code tells the parent how it ended."""
    argv = sys.argv[1:] if argv is None else argv
    started = time.monotonic()
    if len(argv) != 1:
        print("usage: python -m postlab.tools.train_worker SPEC_JSON", file=sys.stderr)
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
        import torch

        if spec.threads is not None:
            torch.set_num_threads(spec.threads)
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
        emit({"event": "setup", "setup_s": round(time.monotonic() - started, 3)})

        phase = "train"
        output = trainer.train()
        steps = int(trainer.state.global_step)

        phase = "save"
        checkpoint = save_merged_checkpoint(trainer.model, tokenizer, out_dir)
        metrics = _metrics(record, dict(output.metrics or {}), steps)
        with contextlib.suppress(Exception):
            import wandb

            if wandb.run is not None:
                wandb.finish()
        write_atomic_json(
            out_dir / "result.json",
            {
                "status": "ok",
                "checkpoint": str(checkpoint.resolve()),
                "metrics": metrics,
                "spec_signature": spec.signature(),
            },
        )
        emit({"event": "done", "checkpoint": str(checkpoint.resolve()), **metrics})
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

"""What a training worker tells the lab while it trains: JSON event lines on its stdout, from
transformers callbacks that also stop a diverged run and time the callbacks' own start."""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

from postlab.tools.training.failures import EVENT_MARKER

# Test hook: poison the weights before the first step so the loss really becomes NaN.
INJECT_NAN_ENV = "POSTLAB_TEST_INJECT_NAN"


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


def is_main_process() -> bool:
    """Whether this process speaks for the run (rank 0 of a data-parallel group, or alone)."""
    return int(os.environ.get("RANK", "0")) == 0


def print_event(event: dict[str, Any]) -> None:
    """Print one JSON event line for the parent process (rank 0 only: one stream per run)."""
    if not is_main_process():
        return
    clean = {k: json_safe(v) for k, v in event.items()}
    print(EVENT_MARKER + json.dumps(clean, allow_nan=False), flush=True)


def json_safe(value: Any) -> Any:
    """A value JSON can carry: non-finite floats become null, inside lists and dicts too."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def make_progress_callback(max_steps: int, started: float, record: dict[str, Any]):
    """A TrainerCallback that prints progress events and stops on a NaN or infinite loss."""
    from transformers import TrainerCallback

    class ProgressCallback(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            record["callbacks_started"] = time.monotonic()

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
            print_event(event)
            if not math.isfinite(loss):
                raise Diverged(f"loss is {loss} at step {state.global_step}: training diverged")

    return ProgressCallback()


def make_first_callback(record: dict[str, Any]):
    """A TrainerCallback to run before all others: it marks when their starts begin."""
    from transformers import TrainerCallback

    class FirstCallback(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            record["callbacks_starting"] = time.monotonic()

    return FirstCallback()

"""Held-out evaluation: batched greedy generation, strict and lenient scores, failure samples."""

from __future__ import annotations

import json
import shlex
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, Field

from postlab.records.artifacts import FailureSample
from postlab.tools.models.resolution import load_tokenizer
from postlab.tools.tasks.catalog import Example, Task


class EvaluationError(RuntimeError):
    """A checkpoint that could not be evaluated (missing, unloadable, or the command failed)."""


class EvalResult(BaseModel):
    """Scores of one checkpoint on a task's held-out split; fractions in [0, 1]."""

    model_path: str
    task: str
    n: int
    strict: float
    lenient: float
    error_categories: dict[str, int] = Field(default_factory=dict)
    failures: list[FailureSample] = Field(default_factory=list)
    missed_prompts: list[str] = Field(default_factory=list)
    wall_s: float = 0.0


def categorize(completion: str, strict: bool, lenient: bool) -> str:
    """Name the kind of miss: correct, format (right answer, wrong shape), empty, or wrong."""
    if strict:
        return "correct"
    if lenient:
        return "format"
    if not completion.strip():
        return "empty"
    return "wrong"


def generate(
    model_path: str | Path,
    prompts: list[str],
    max_new_tokens: int,
    batch_size: int = 32,
    on_batch: Callable[[int, int], None] | None = None,
) -> list[str]:
    """Greedy completions of chat prompts, batched, with the model's chat template."""
    import torch
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    model.eval()
    completions: list[str] = []
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]
        encoded = tokenizer.apply_chat_template(
            [[{"role": "user", "content": prompt}] for prompt in batch],
            add_generation_prompt=True,
            return_tensors="pt",
            padding=True,
            return_dict=True,
        )
        with torch.inference_mode():
            output = model.generate(
                **encoded,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
        prompt_length = encoded["input_ids"].shape[1]
        completions.extend(
            tokenizer.decode(row[prompt_length:], skip_special_tokens=True) for row in output
        )
        if on_batch:
            on_batch(len(completions), len(prompts))
    return completions


def score(
    task: Task,
    examples: list[Example],
    completions: list[str],
    model_path: str,
    failure_samples: int = 8,
    wall_s: float = 0.0,
) -> EvalResult:
    """Verify completions against answers and collect error categories and failure samples."""
    categories: Counter[str] = Counter()
    failures: list[FailureSample] = []
    missed: list[str] = []
    strict_hits = lenient_hits = 0
    for example, completion in zip(examples, completions, strict=True):
        verdict = task.verify(completion, example.answer)
        strict_hits += verdict.strict
        lenient_hits += verdict.lenient
        category = categorize(completion, verdict.strict, verdict.lenient)
        categories[category] += 1
        if category != "correct":
            missed.append(example.prompt)
        if category != "correct" and len(failures) < failure_samples:
            failures.append(
                FailureSample(
                    prompt=example.prompt,
                    answer=example.answer,
                    completion=completion,
                    category=category,
                )
            )
    n = len(examples)
    return EvalResult(
        model_path=str(model_path),
        task=task.name,
        n=n,
        strict=strict_hits / n if n else 0.0,
        lenient=lenient_hits / n if n else 0.0,
        error_categories=dict(categories),
        failures=failures,
        missed_prompts=missed,
        wall_s=wall_s,
    )


def evaluate_checkpoint(
    model_path: str | Path,
    task: Task,
    limit: int | None = None,
    batch_size: int = 32,
    on_batch: Callable[[int, int], None] | None = None,
) -> EvalResult:
    """Score a checkpoint on the task's fixed held-out split (or its first `limit` items)."""
    path = Path(model_path)
    if not (path / "config.json").is_file():
        raise EvaluationError(f"no checkpoint at {path} (config.json missing)")
    examples = task.eval_examples()[:limit] if limit else task.eval_examples()
    started = time.monotonic()
    try:
        completions = generate(
            path,
            [example.prompt for example in examples],
            task.max_new_tokens,
            batch_size,
            on_batch,
        )
    except (OSError, ValueError, RuntimeError) as error:
        raise EvaluationError(f"could not evaluate {path}: {error}") from error
    return score(task, examples, completions, str(path), wall_s=time.monotonic() - started)


def run_external_evaluation(command: str, model_path: str, timeout_s: float = 3600) -> dict:
    """Run an evaluation command following the PostTrainBench contract and read its metrics JSON."""
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "metrics.json"
        argv = shlex.split(command) + [
            "--model-path",
            model_path,
            "--json-output-file",
            str(output),
        ]
        try:
            completed = subprocess.run(
                argv, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise EvaluationError(f"evaluation command failed to run: {error}") from error
        if completed.returncode != 0:
            tail = (completed.stderr or completed.stdout)[-800:]
            raise EvaluationError(f"evaluation command exited {completed.returncode}: {tail}")
        try:
            return json.loads(output.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise EvaluationError(
                f"evaluation command wrote no valid metrics JSON: {error}"
            ) from error

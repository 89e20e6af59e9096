"""Training and evaluation throughput against bare TRL and plain batched generation.

    python benchmarks/throughput.py [--quick] [--model M] [--task T] [--out DIR]

Side by side in one run, so a noisy machine slows both alike:
- training: postlab's worker (`run_training`) vs `bare_trl.py` on the same spec and data, SFT
  full and SFT LoRA at equal settings (goal ≥ 0.95) and at TRL's defaults (bf16 autocast and
  activation checkpointing on a CPU), DPO (pairs of the reference over a wrong number) and
  GRPO (the task's verifier as reward) at equal settings; samples/s from each trainer's own
  runtime (model loading excluded), the ratio and both final losses;
- evaluation: the Evaluator's `evaluate_checkpoint` vs a plain loop of batched greedy
  `generate` in prompt order on the same prompts and token limit; items/s including the model
  load and the ratio (goal ≥ 0.9).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from measure import RESULTS, write_result

from postlab.tools.data.training_sets import build_training_set
from postlab.tools.evaluation.generation import load_for_generation
from postlab.tools.evaluation.scoring import evaluate_checkpoint
from postlab.tools.models.resolution import DEFAULT_MODEL, resolve_model
from postlab.tools.tasks.catalog import load_task
from postlab.tools.training.runner import run_training
from postlab.tools.training.spec import TrainingSpec

BARE_TRL = Path(__file__).with_name("bare_trl.py")


EQUAL_AND_DEFAULTS = (("equal settings", []), ("TRL defaults", ["--trl-defaults"]))


def worker_against_bare(spec: TrainingSpec, what: str, folder: Path, settings=EQUAL_AND_DEFAULTS):
    """One worker run and a bare TRL run per setting on the same spec: samples/s and losses."""
    result = run_training(spec)
    if result.status != "ok":
        raise SystemExit(f"worker failed: {result.failure}")
    spec_file = folder / f"spec-{Path(spec.output_dir).name}.json"
    spec_file.write_text(spec.model_dump_json())
    samples = spec.max_steps * spec.batch_size
    worker_rate = samples / result.metrics["runtime_s"]
    rows = []
    for label, flags in settings:
        bare = json.loads(
            subprocess.run(
                [sys.executable, str(BARE_TRL), str(spec_file), *flags],
                capture_output=True, text=True, check=True,
            ).stdout.strip().splitlines()[-1]
        )  # fmt: skip
        rows.append(
            {
                "what": what,
                "postlab": worker_rate,
                "reference": bare["samples_per_s"],
                "ratio": worker_rate / bare["samples_per_s"],
                "unit": f"samples/s (bare TRL, {label})",
                "postlab_final_loss": result.metrics.get("final_loss"),
                "reference_final_loss": bare["final_loss"],
            }
        )
    return rows


def training_rows(task, base: str, steps: int, folder: Path) -> list[dict]:
    """Worker vs bare TRL: SFT full and LoRA on one dataset, then DPO and GRPO (full)."""
    card = build_training_set(task, "sft", steps * 8, seed=0, out_dir=folder / "data")
    rows = []
    for adapter, rate in (("full", 5e-5), ("lora", 2e-4)):
        spec = TrainingSpec(
            method="sft", adapter=adapter, base_model=base, dataset_path=card.path,
            output_dir=str(folder / f"worker-{adapter}"), max_steps=steps, batch_size=8,
            learning_rate=rate, task=task.name, tracker="none",
        )  # fmt: skip
        rows += worker_against_bare(spec, f"SFT {adapter}, {steps} steps × 8", folder)
    pairs = build_training_set(
        task, "preference", steps * 8, seed=0, out_dir=folder / "pairs", rows_from=wrong_by_one
    )
    dpo = TrainingSpec(
        method="dpo", adapter="full", base_model=base, dataset_path=pairs.path,
        output_dir=str(folder / "worker-dpo"), max_steps=steps, batch_size=8,
        learning_rate=5e-7, beta=0.1, task=task.name, tracker="none",
    )  # fmt: skip
    rows += worker_against_bare(dpo, f"DPO full, {steps} steps × 8", folder, EQUAL_AND_DEFAULTS[:1])
    prompts = build_training_set(task, "grpo", steps * 2, seed=0, out_dir=folder / "prompts")
    grpo = TrainingSpec(
        method="grpo", adapter="full", base_model=base, dataset_path=prompts.path,
        output_dir=str(folder / "worker-grpo"), max_steps=steps, batch_size=8,
        num_generations=4, max_completion_length=16, learning_rate=1e-6, task=task.name,
        tracker="none",
    )  # fmt: skip
    rows += worker_against_bare(
        grpo, f"GRPO full, {steps} steps × 8 completions", folder, EQUAL_AND_DEFAULTS[:1]
    )
    return rows


def wrong_by_one(examples) -> tuple[list[dict], dict]:
    """Preference pairs without sampling: the reference answer over the number one above it."""
    rows = []
    for example in examples:
        prompt = [{"role": "user", "content": example.prompt}]
        wrong = str(int(example.answer) + 1) if example.answer.lstrip("-").isdigit() else "?"
        rows.append(
            {
                "prompt": prompt,
                "chosen": [{"role": "assistant", "content": example.answer}],
                "rejected": [{"role": "assistant", "content": wrong}],
            }
        )
    return rows, {}


def plain_generate(path: str, prompts: list[str], max_new_tokens: int) -> list[str]:
    """Batched greedy generation in prompt order: what a user would write by hand."""
    import torch

    model, tokenizer = load_for_generation(path)
    texts = []
    for start in range(0, len(prompts), 32):
        chunk = prompts[start : start + 32]
        encoded = tokenizer.apply_chat_template(
            [[{"role": "user", "content": p}] for p in chunk], add_generation_prompt=True,
            return_tensors="pt", padding=True, return_dict=True,
        )  # fmt: skip
        with torch.inference_mode():
            output = model.generate(
                **encoded, max_new_tokens=max_new_tokens, do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )  # fmt: skip
        width = encoded["input_ids"].shape[1]
        texts += [tokenizer.decode(row[width:], skip_special_tokens=True) for row in output]
    return texts


def evaluation_row(task, base: str) -> dict:
    """The Evaluator vs plain batched generate on the task's validation and test prompts."""
    prompts = [e.prompt for e in task.validation_examples() + task.test_examples()]
    # Untimed: the first load in a process pays the imports; whichever ran first paid them alone.
    load_for_generation(base)
    started = time.perf_counter()
    evaluate_checkpoint(base, task, splits=("validation", "test"))
    ours = len(prompts) / (time.perf_counter() - started)
    started = time.perf_counter()
    plain_generate(base, prompts, task.max_new_tokens)
    plain = len(prompts) / (time.perf_counter() - started)
    return {
        "what": f"evaluation, {len(prompts)} items",
        "postlab": ours,
        "reference": plain,
        "ratio": ours / plain,
        "unit": "items/s (plain generate)",
    }


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--task", default="addition_2d")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    base = resolve_model(args.model).path
    task = load_task(args.task)
    steps = 10 if args.quick else 40
    with tempfile.TemporaryDirectory(prefix="postlab-throughput-") as folder:
        rows = [evaluation_row(task, base), *training_rows(task, base, steps, Path(folder))]
    notes = (
        f"{args.model} on {args.task}, CPU threads as the machine gives them; training rates "
        "exclude model loading, evaluation rates include it."
    )
    columns = [
        "what", "postlab", "reference", "ratio", "unit", "postlab_final_loss",
        "reference_final_loss",
    ]  # fmt: skip
    print(write_result("throughput", rows, columns, notes, args.out))


if __name__ == "__main__":
    main()

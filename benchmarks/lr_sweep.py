"""Validation accuracy of plain full SFT on tasks across learning rates and step counts.

The evidence behind the learning-rate rules in `tools/training/recipes.py`: one run per
(task, learning rate), from the base model, scored on the validation split. `--test` scores the
test split too, beside it, for comparison with the test scores `lab_vs_naive.py` reports (naive
SFT runs at the spec's default rate); `--task-dirs` sweeps task folders instead of bundled tasks.

    python benchmarks/lr_sweep.py [--tasks a,b | --task-dirs D1,D2] [--lrs 3e-5,1e-4]
                                  [--steps 20] [--limit 60 | --limit 0 for every item] [--test]
                                  [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from lab_vs_naive import plain_sft

from postlab.records.outcomes import binomial_stderr
from postlab.tools.evaluation.scoring import evaluate_checkpoint
from postlab.tools.models.resolution import DEFAULT_MODEL, resolve_model
from postlab.tools.tasks.catalog import load_task
from postlab.tools.tasks.folders import load_task_dir


def sweep_point(
    task,
    base: str,
    lr: float,
    steps: int,
    limit: int | None,
    out: Path,
    test: bool = False,
    seed: int = 0,
) -> dict:
    """Train once at `lr` for `steps` and score validation (and test, when asked)."""
    result = plain_sft(task, base, steps, out, learning_rate=lr, seed=seed)
    if result.status != "ok":
        return {"lr": lr, "score": None, "error": result.failure.kind}
    splits = ("validation", "test") if test else ("validation",)
    scored = evaluate_checkpoint(result.checkpoint, task, splits, limit)
    validation = scored["validation"]
    point = {
        "lr": lr,
        "score": validation.strict,
        "stderr": binomial_stderr(validation.strict, validation.n),
        "collapse": validation.collapse,
    }
    if test:
        point.update(test=scored["test"].strict, test_stderr=binomial_stderr(
            scored["test"].strict, scored["test"].n))  # fmt: skip
    return point


def main() -> None:
    """Sweep and print one JSON line per point, then a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="sort_list,answer_format,addition_3d")
    parser.add_argument("--task-dirs", default="")
    parser.add_argument("--lrs", default="3e-5,6e-5,1.2e-4")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--out", default=None)
    parser.add_argument("--test", action="store_true")
    # The data draws and training seed, as lab_vs_naive.py's --seeds numbers them.
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    limit = args.limit or None
    tasks = (
        [load_task_dir(Path(folder)) for folder in args.task_dirs.split(",")]
        if args.task_dirs
        else [load_task(name) for name in args.tasks.split(",")]
    )
    out = Path(args.out or tempfile.mkdtemp(prefix="postlab-lr-sweep-"))
    base = resolve_model(args.model).path
    rows = []
    for task in tasks:
        for lr in (float(value) for value in args.lrs.split(",")):
            started = time.monotonic()
            point = sweep_point(
                task, base, lr, args.steps, limit, out / task.name, args.test, args.seed
            )
            point.update(
                task=task.name,
                steps=args.steps,
                seed=args.seed,
                wall_s=round(time.monotonic() - started),
            )
            rows.append(point)
            print(json.dumps(point), flush=True)
    (out / "lr_sweep.json").write_text(json.dumps(rows, indent=2))
    print("| task | lr | steps | validation | test |\n| --- | --- | --- | --- | --- |")
    for row in rows:
        score = "failed" if row["score"] is None else f"{row['score']:.2f} ± {row['stderr']:.2f}"
        test = f"{row['test']:.2f} ± {row['test_stderr']:.2f}" if "test" in row else "—"
        print(f"| {row['task']} | {row['lr']:g} | {row['steps']} | {score} | {test} |")
    print(f"written to {out}")


if __name__ == "__main__":
    main()

"""Validation accuracy of plain full SFT on bundled tasks across learning rates and step counts.

The evidence behind the learning-rate rule in `tools/training/recipes.py`: one run per
(task, learning rate), from the base model, scored on the validation split (never test).

    python benchmarks/lr_sweep.py [--tasks a,b] [--lrs 3e-5,1e-4] [--steps 20] [--limit 60]
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


def sweep_point(task, base: str, lr: float, steps: int, limit: int, out: Path) -> dict:
    """Train once at `lr` for `steps` and score validation."""
    result = plain_sft(task, base, steps, out, learning_rate=lr)
    if result.status != "ok":
        return {"lr": lr, "score": None, "error": result.failure.kind}
    scored = evaluate_checkpoint(result.checkpoint, task, ("validation",), limit)["validation"]
    return {
        "lr": lr,
        "score": scored.strict,
        "stderr": binomial_stderr(scored.strict, scored.n),
        "collapse": scored.collapse,
    }


def main() -> None:
    """Sweep and print one JSON line per point, then a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="sort_list,answer_format,addition_3d")
    parser.add_argument("--lrs", default="3e-5,6e-5,1.2e-4")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="postlab-lr-sweep-"))
    base = resolve_model(args.model).path
    rows = []
    for name in args.tasks.split(","):
        task = load_task(name)
        for lr in (float(value) for value in args.lrs.split(",")):
            started = time.monotonic()
            point = sweep_point(task, base, lr, args.steps, args.limit, out / name)
            point.update(task=name, steps=args.steps, wall_s=round(time.monotonic() - started))
            rows.append(point)
            print(json.dumps(point), flush=True)
    (out / "lr_sweep.json").write_text(json.dumps(rows, indent=2))
    print("| task | lr | steps | validation |\n| --- | --- | --- | --- |")
    for row in rows:
        score = "failed" if row["score"] is None else f"{row['score']:.2f} ± {row['stderr']:.2f}"
        print(f"| {row['task']} | {row['lr']:g} | {row['steps']} | {score} |")
    print(f"written to {out}")


if __name__ == "__main__":
    main()

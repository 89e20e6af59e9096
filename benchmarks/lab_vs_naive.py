"""The lab against naive SFT of equal compute, on every bundled task: test scores with errors.

For each task: the base model, one naive full-SFT run with as many optimiser steps as the lab may
spend in all its iterations (same batch, the TrainingSpec's default learning rate, no research,
no validation), and the lab itself with its target at 1.0 (so it stops early only on perfect
validation, never with steps the naive run spent). On a label task the table also shows the
training set's commonest answer given to every test item: what a run that collapsed onto its
prior scores. The last column compares the two arms item by item on the same test items: the
items the lab got right that naive SFT missed (gained) and the other way round (lost), the
paired standard error of the difference, and McNemar's verdict (ahead, level or behind, one-sided
5 % each way; over seeds the changed items are counted together). Writes lab_vs_naive.json (with
every run's missed test prompts), lab_vs_naive.md and lab_vs_naive.png into the output folder
and prints the table.

    python benchmarks/lab_vs_naive.py [--quick] [--tasks a,b] [--task-dirs D1,D2] [--model M]
                                      [--out DIR] [--iterations N] [--steps N] [--seeds K]

--task-dirs runs task folders (train.jsonl, eval.jsonl, ...) instead of the bundled tasks, e.g.
the held-out ones `benchmarks/heldout/make_tasks.py` writes.

--seeds K repeats naive SFT and the lab with seeds 0..K-1 (their data draws and training seeds):
a cell is then the mean over seeds ± the standard error of that mean (the spread between seeds,
and never less than the test items' own binomial error), with every seed's score in the JSON.

--quick: two iterations of 10 steps on 60 test items per task (minutes, not hours); the full run
is six iterations of 40 steps on the whole test split.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path

from postlab.graph.runner import run_lab
from postlab.memory.library import LIBRARY_ENV, LIBRARY_OFF
from postlab.records.outcomes import PairedComparison, binomial_stderr
from postlab.records.run import TRAIN_TIMEOUT_S
from postlab.tools.data.training_sets import build_training_set
from postlab.tools.evaluation.scoring import (
    constant_answer,
    evaluate_checkpoint,
    training_answers,
)
from postlab.tools.models.resolution import DEFAULT_MODEL, resolve_model
from postlab.tools.tasks.catalog import bundled_task_names, load_task
from postlab.tools.tasks.folders import load_task_dir
from postlab.tools.training.runner import run_training
from postlab.tools.training.spec import TrainingSpec

FULL = {"iterations": 6, "steps": 40, "train_size": 800, "limit": None}
# Wall-clock seconds a training run may take per optimiser step: the spec's default limit
# (1800 s) cut the full naive run (240 steps) short on 2 busy cores.
SECONDS_PER_STEP_LIMIT = 30
QUICK = {"iterations": 2, "steps": 10, "train_size": 200, "limit": 60}
BATCH = 8


def _test_score(checkpoint: str, task, limit: int | None) -> dict:
    result = evaluate_checkpoint(checkpoint, task, splits=("test",), limit=limit)["test"]
    return {
        "score": result.strict,
        "stderr": binomial_stderr(result.strict, result.n),
        # Which items it missed: the paired comparison of two arms reads them.
        "n": result.n,
        "missed": result.missed_prompts,
    }


def one_answer(task, limit: int | None) -> dict:
    """Test score of the training set's commonest answer given to every item (label tasks): what
    a run that collapsed onto its prior would score."""
    floor = constant_answer(task, training_answers(task), limit=limit)
    if floor is None or floor.test is None:
        return {"score": None, "stderr": None}
    return {
        "score": floor.test,
        "stderr": binomial_stderr(floor.test, floor.test_n),
        "answer": floor.answer,
    }


def plain_sft(
    task, base: str, steps: int, out: Path, learning_rate: float | None = None, seed: int = 0
):
    """One full-SFT run of `steps` on plain task data (the spec's default rate unless given)."""
    card = build_training_set(task, "sft", steps * BATCH, seed=seed, out_dir=out / "data")
    output = out / (f"lr{learning_rate:g}" if learning_rate else "model")
    return sft_on_rows(task.name, base, card.path, output, steps, learning_rate, seed)


def sft_base_on(task_name: str, rows, out: Path, steps: int):
    """Full SFT of the offline base model for `steps` on `rows` (a `datasets.Dataset`, saved
    to out/data); the checkpoint goes to out/model."""
    rows.save_to_disk(str(out / "data"))
    base = resolve_model(DEFAULT_MODEL).path
    return sft_on_rows(task_name, base, str(out / "data"), out / "model", steps)


def sft_on_rows(
    task_name: str,
    base: str,
    dataset_path: str,
    output: Path,
    steps: int,
    learning_rate: float | None = None,
    seed: int = 0,
    adapter: str = "full",
):
    """SFT of `base` (full unless `adapter` says "lora") for `steps` on saved rows, at the
    benchmarks' batch (the spec's default rate unless given)."""
    rate = {"learning_rate": learning_rate} if learning_rate else {}
    spec = TrainingSpec(
        method="sft",
        adapter=adapter,
        base_model=base,
        dataset_path=dataset_path,
        output_dir=str(output),
        max_steps=steps,
        batch_size=BATCH,
        task=task_name,
        seed=seed,
        timeout_s=max(TRAIN_TIMEOUT_S, steps * SECONDS_PER_STEP_LIMIT),
        **rate,
    )
    return run_training(spec)


def naive_sft(task, base: str, settings: dict, out: Path, seed: int = 0) -> dict:
    """One full-SFT run of the lab's whole step budget on plain task data."""
    steps = settings["iterations"] * settings["steps"]
    result = plain_sft(task, base, steps, out, seed=seed)
    if result.status != "ok":
        return {"score": None, "stderr": None, "error": result.failure.kind}
    return _test_score(result.checkpoint, task, settings["limit"])


def lab(
    task_name: str,
    model: str,
    settings: dict,
    out: Path,
    task_dir: str | None = None,
    seed: int = 0,
    keep_checkpoints: bool = False,
) -> dict:
    """The lab on the task with the same per-iteration steps and iteration cap."""
    where = {"task_dir": task_dir} if task_dir else {"task": task_name}
    output = run_lab(
        {
            **where,
            "model": model,
            "budget": 60,
            "run_dir": str(out),
            "options": {
                "max_iterations": settings["iterations"],
                "train_steps": settings["steps"],
                "train_size": settings["train_size"],
                "batch_size": BATCH,
                "eval_limit": settings["limit"],
                "seed": seed,
                "keep_checkpoints": keep_checkpoints,
                # Equal compute: the lab spends the naive run's steps unless validation is perfect
                # (its default target would stop it early, with steps the naive run used).
                "target_score": 1.0,
                "train_timeout_s": max(TRAIN_TIMEOUT_S, settings["steps"] * SECONDS_PER_STEP_LIMIT),
            },
        }
    )
    summary = json.loads(Path(output["summary_path"]).read_text())
    reported = {"score": summary["best_score"], "stderr": summary["best_stderr"]}
    if summary["best_checkpoint"] is None or summary["best_score"] is None:
        return reported  # no best scored on test: the row shows no score, the others go on
    # Scored again for its misses (greedy decoding: the same answers the lab's own test gave).
    # The summary names a checkpoint within the run folder, the base model by its own path.
    best = out / summary["best_checkpoint"]
    task = load_task(None if task_dir else task_name, task_dir)
    scored = _test_score(str(best), task, settings["limit"])
    if abs(scored["score"] - summary["best_score"]) > 1e-9:
        # The lab's own score stays the result; the misses paired with it are the rescore's.
        print(
            f"{task_name}: the lab's best scored {scored['score']:.4f} again against "
            f"{summary['best_score']:.4f} in its summary",
            flush=True,
        )
        reported["rescored"] = scored["score"]
    return {**scored, **reported}


def paired(naive_runs: list[dict], lab_runs: list[dict]) -> dict | None:
    """The lab against naive SFT item by item, over the seeds both arms scored on the same
    items (a seed either arm failed is left out, as over_seeds leaves a failed run out of its
    arm's mean).
    Pooled seeds count an item once per seed, as if independent: the same items recur and their
    outcomes correlate, so a pooled verdict leans a little towards a difference."""
    pairs = [
        PairedComparison.of(naive["missed"], lab_run["missed"], lab_run["n"])
        for naive, lab_run in zip(naive_runs, lab_runs, strict=True)
        if "missed" in naive and "missed" in lab_run and naive["n"] == lab_run["n"]
    ]
    if not pairs:
        return None
    pooled = PairedComparison.pooled(pairs)
    return {**pooled.model_dump(), "describe": pooled.describe()}


def over_seeds(entries: list[dict]) -> dict:
    """Scores of one arm over seeds: their mean ± the standard error of that mean."""
    scores = [e["score"] for e in entries if e.get("score") is not None]
    if not scores:
        return {"score": None, "stderr": None, "seeds": entries}
    mean = sum(scores) / len(scores)
    # The items' own error, as if each seed were an independent draw of the test set.
    binomial = math.sqrt(sum(e["stderr"] ** 2 for e in entries if e.get("score") is not None))
    spread = 0.0
    if len(scores) > 1:
        variance = sum((s - mean) ** 2 for s in scores) / (len(scores) - 1)
        spread = math.sqrt(variance / len(scores))
    stderr = max(spread, binomial / len(scores))
    return {"score": mean, "stderr": stderr, "seeds": [e.get("score") for e in entries]}


def _cell(entry: dict) -> str:
    if entry.get("score") is None:
        return "—"
    return f"{entry['score']:.2f} ± {entry['stderr']:.2f}"


def write_outputs(rows: list[dict], out: Path, settings: dict) -> str:
    """JSON, a markdown table and a bar plot of the rows; returns the table."""
    (out / "lab_vs_naive.json").write_text(
        json.dumps({"settings": settings, "rows": rows}, indent=2)
    )
    lines = [
        "| task | base | one answer to all | naive SFT | lab | lab − naive | item by item |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lab_score, naive_score = row["lab"].get("score"), row["naive"].get("score")
        gap = f"{lab_score - naive_score:+.2f}" if None not in (lab_score, naive_score) else "—"
        lines.append(
            f"| {row['task']} | {_cell(row['base'])} | {_cell(row.get('one_answer', {}))} | "
            f"{_cell(row['naive'])} | "
            f"{_cell(row['lab'])} | {gap} | {(row.get('paired') or {}).get('describe', '—')} |"
        )
    table = "\n".join(lines)
    (out / "lab_vs_naive.md").write_text(table + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 3.5), dpi=110)
    width = 0.27
    for offset, key in enumerate(("base", "naive", "lab")):
        xs = [i + (offset - 1) * width for i in range(len(rows))]
        scores = [row[key].get("score") or 0.0 for row in rows]
        errors = [row[key].get("stderr") or 0.0 for row in rows]
        axis.bar(xs, scores, width, yerr=errors, label=key)
    axis.set_xticks(range(len(rows)), [row["task"] for row in rows], rotation=20, fontsize=8)
    axis.set_ylabel("test accuracy (strict)")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out / "lab_vs_naive.png")
    return table


def main() -> None:
    """Run base, naive SFT and the lab on each task and write the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tasks", default=",".join(bundled_task_names()))
    parser.add_argument("--task-dirs", default="")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--out", default=None)
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--seeds", type=int, default=1)
    args = parser.parse_args()
    # Comparable runs: no earlier run's measurements weigh on the lab's ranking.
    os.environ.setdefault(LIBRARY_ENV, LIBRARY_OFF)
    settings = dict(QUICK if args.quick else FULL)
    for key in ("iterations", "steps"):
        if getattr(args, key):
            settings[key] = getattr(args, key)
    settings["seeds"] = max(1, args.seeds)
    out = Path(args.out or tempfile.mkdtemp(prefix="postlab-lab-vs-naive-"))
    out.mkdir(parents=True, exist_ok=True)
    base = resolve_model(args.model).path
    rows = []
    folders = [Path(folder) for folder in args.task_dirs.split(",") if folder]
    chosen = [(load_task_dir(f), str(f)) for f in folders] or [
        (load_task(name), None) for name in args.tasks.split(",")
    ]
    for task, task_dir in chosen:
        # A folder by its own name: two folders may hold tasks of one name (a copy without
        # valid.jsonl keeps the original's task.json).
        name = Path(task_dir).name if task_dir else task.name
        started = time.monotonic()
        seeds = range(settings["seeds"])
        # Seed 0 keeps the single-seed folders (naive/, lab/) so earlier outputs compare.
        folder = {seed: "" if seed == 0 else f"-seed{seed}" for seed in seeds}
        naive_runs = [
            naive_sft(task, base, settings, out / name / f"naive{folder[s]}", seed=s) for s in seeds
        ]
        lab_runs = [
            lab(name, args.model, settings, out / name / f"lab{folder[s]}", task_dir, s)
            for s in seeds
        ]
        base_score = _test_score(base, task, settings["limit"])
        row = {
            "task": name,
            "base": {"score": base_score["score"], "stderr": base_score["stderr"]},
            "one_answer": one_answer(task, settings["limit"]),
            "naive": over_seeds(naive_runs),
            "lab": over_seeds(lab_runs),
            "paired": paired(naive_runs, lab_runs),
            "misses": {
                "naive": [r.get("missed") for r in naive_runs],
                "lab": [r.get("missed") for r in lab_runs],
            },
        }
        row["wall_s"] = round(time.monotonic() - started, 1)
        rows.append(row)
        shown = {key: value for key, value in row.items() if key != "misses"}
        print(f"{name}: {json.dumps(shown)}", flush=True)
    print(write_outputs(rows, out, settings))
    print(f"written to {out}")


if __name__ == "__main__":
    main()

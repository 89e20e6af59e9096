"""A standard benchmark as a lab task, judged by lm-evaluation-harness itself.

The harness's own task config renders every prompt and answer (its `doc_to_text`,
`doc_to_choice`, `doc_to_target`), so the lab trains on the benchmark's train split in the
harness's format and validates on its validation split; test is scored by `lm_eval` on the
checkpoint (its metric, its standard error), run as a PostTrainBench-contract judge:

    python -m postlab.tools.benchmarks.harness --benchmark arc_easy [--data DIR]
        --model-path M [--limit N] --json-output-file OUT

`--data DIR` reads a local copy in the benchmark's own format (the Hub layout: parquet, JSON
lines or CSV files named by split, optionally under a folder named after the dataset config)
instead of the Hub.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from postlab.tools.io.atomic import write_text_atomic
from postlab.tools.tasks.folders import META_FILE, TEST_FILE, TRAIN_FILE, VALID_FILE

# Benchmarks known to work end to end: multiple choice (scored by log-likelihood) and gsm8k
# (generated, exact match on the extracted number); any other task of those kinds is accepted.
KNOWN = ("arc_easy", "arc_challenge", "boolq", "hellaswag", "piqa", "openbookqa", "sciq", "gsm8k")
SUPPORTED_OUTPUTS = ("multiple_choice", "generate_until")
# The harness's metric the lab reports per output type, with its standard error; for generated
# answers the first of these filters the task defines (gsm8k: "#### N" exactly, as its paper).
METRICS = {"multiple_choice": "acc", "generate_until": "exact_match"}
GENERATION_FILTERS = ("strict-match", "flexible-extract", "none")
_EXTENSIONS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv"}
_SPLIT_WORDS = {
    "train": ("train",),
    "validation": ("validation", "valid", "dev"),
    "test": ("test",),
}


class BenchmarkError(ValueError):
    """A benchmark the lab cannot run: unknown, not multiple choice, or its data not found."""


@lru_cache(maxsize=1)
def _task_manager():
    """The harness's task index (built once a process: it reads every task config)."""
    from lm_eval.tasks import TaskManager

    return TaskManager()


def _local_files(config: dict[str, Any], data_dir: Path) -> tuple[str, dict[str, list[str]]]:
    """The builder and the files per harness split of a local copy in the Hub's layout."""
    files = [p for p in sorted(data_dir.rglob("*")) if p.suffix in _EXTENSIONS and p.is_file()]
    subset = config.get("dataset_name")
    if subset and any(subset in p.parts for p in files):
        files = [p for p in files if subset in p.parts]
    if not files:
        raise BenchmarkError(f"no parquet, JSON lines or CSV files under {data_dir}")
    builders = {_EXTENSIONS[p.suffix] for p in files}
    if len(builders) > 1:
        raise BenchmarkError(f"{data_dir} mixes file formats ({', '.join(sorted(builders))})")
    by_split: dict[str, list[str]] = {}
    for role in ("train", "validation", "test"):
        name = config.get(f"{'training' if role == 'train' else role}_split")
        if not name:
            continue
        words = (name, *_SPLIT_WORDS[role])
        matched = [str(p) for p in files if any(w in p.stem.lower() for w in words)]
        if matched:
            by_split[name] = matched
    return builders.pop(), by_split


def benchmark_config(name: str, data_dir: Path | None = None) -> dict[str, Any]:
    """The harness's task config for a benchmark, reading a local copy when data_dir is given."""
    manager = _task_manager()
    entry = manager.task_index.get(name)
    if entry is None or not getattr(entry, "cfg", None):
        known = ", ".join(KNOWN)
        raise BenchmarkError(f"unknown benchmark {name!r}; lm-eval tasks such as {known}")
    config = dict(entry.cfg)
    if config.get("output_type") not in SUPPORTED_OUTPUTS:
        raise BenchmarkError(
            f"benchmark {name!r} is {config.get('output_type')}; only multiple-choice and "
            "generated-answer tasks are supported"
        )
    config.pop("tag", None)
    config["task"] = f"postlab_{name}"
    if data_dir is not None:
        builder, files = _local_files(config, data_dir)
        needed = config.get("test_split") or config.get("validation_split")
        if needed not in files:
            raise BenchmarkError(f"{data_dir} has no file for the {needed!r} split")
        config.update(dataset_path=builder, dataset_name=None, dataset_kwargs={"data_files": files})
    return config


def load_benchmark(name: str, data_dir: Path | None = None):
    """The harness's task object for a benchmark (its documents and prompt rendering)."""
    config = benchmark_config(name, data_dir)
    try:
        return _task_manager().load([config])["tasks"][config["task"]]
    except Exception as error:  # noqa: BLE001 - the harness raises many kinds; say which
        raise BenchmarkError(f"could not load benchmark {name!r}: {error}") from error


def _rows(task, docs) -> list[dict[str, str]]:
    rows = []
    generated = task.OUTPUT_TYPE == "generate_until"
    for doc in docs:
        target = task.doc_to_target(doc)
        if generated:
            answer = str(target)
        else:
            choices = task.doc_to_choice(doc)
            answer = str(choices[target if isinstance(target, int) else choices.index(target)])
        rows.append({"prompt": str(task.doc_to_text(doc)).strip(), "answer": answer.strip()})
    return rows


def _lab_metric(task, rows: list[dict[str, str]]) -> str:
    """How the lab's own validation compares answers: numbers for worked solutions ending in a
    number (gsm8k's "… #### 72"), exact text otherwise."""
    if task.OUTPUT_TYPE != "generate_until":
        return "exact"
    numeric = all(re.search(r"-?\d[\d,.]*\s*$", row["answer"]) for row in rows)
    return "numeric" if numeric else "exact"


def _write_jsonl(path: Path, rows: list[dict[str, str]]) -> None:
    write_text_atomic(path, "".join(json.dumps(row) + "\n" for row in rows))


def materialize(name: str, data_dir: Path | None, out_dir: Path) -> Path:
    """Write a benchmark as a task folder (train / valid / eval JSON lines in the harness's
    prompts) and return it; eval.jsonl holds the documents the harness scores."""
    task = load_benchmark(name, data_dir)
    if not task.has_training_docs():
        raise BenchmarkError(f"benchmark {name!r} has no training split to learn from")
    scored = task.test_docs() if task.has_test_docs() else task.validation_docs()
    out_dir.mkdir(parents=True, exist_ok=True)
    train = _rows(task, task.training_docs())
    _write_jsonl(out_dir / TRAIN_FILE, train)
    _write_jsonl(out_dir / TEST_FILE, _rows(task, scored))
    if task.has_test_docs() and task.has_validation_docs():
        _write_jsonl(out_dir / VALID_FILE, _rows(task, task.validation_docs()))
    description = f"lm-eval {name}: the harness's prompts and answers."
    meta = {"name": name, "description": description, "metric": _lab_metric(task, train)}
    write_text_atomic(out_dir / META_FILE, json.dumps(meta))
    return out_dir


def judge_command(name: str, data_dir: Path | None, limited: bool) -> str:
    """The --eval-cmd that makes the harness the judge of a run on this benchmark."""
    argv = [sys.executable, "-m", "postlab.tools.benchmarks.harness", "--benchmark", name]
    if data_dir is not None:
        argv += ["--data", str(data_dir)]
    command = shlex.join(argv) + " --model-path {model} --json-output-file {out}"
    return command + (" --limit {limit}" if limited else "")


def score(name: str, data_dir: Path | None, model_path: str, limit: int | None) -> dict:
    """The harness's score of a checkpoint on the benchmark: accuracy, its stderr, n."""
    from lm_eval import simple_evaluate

    config = benchmark_config(name, data_dir)
    results = simple_evaluate(
        model="hf",
        model_args=f"pretrained={model_path}",
        tasks=[config],
        task_manager=_task_manager(),
        device="cpu" if not _cuda() else "cuda",
        batch_size=8,
        # The lab trains through the chat template; the harness scores through it too.
        apply_chat_template=True,
        limit=limit,
    )
    scores = results["results"][config["task"]]
    key = _metric_key(config, scores)
    metric, _, where = key.partition(",")
    return {
        "accuracy": scores[key],
        "stderr": scores.get(f"{metric}_stderr,{where}"),
        "metric": key,
        "n": results["n-samples"][config["task"]]["effective"],
        "harness": "lm-eval",
        "task": name,
    }


def _metric_key(config: dict[str, Any], scores: dict[str, Any]) -> str:
    """The results key the lab reports: `acc,none`, or exact match under the task's filter."""
    metric = METRICS[config["output_type"]]
    for where in GENERATION_FILTERS if config["output_type"] == "generate_until" else ("none",):
        if f"{metric},{where}" in scores:
            return f"{metric},{where}"
    raise BenchmarkError(f"the harness reported no {metric} for {config['task']}: {sorted(scores)}")


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def main(argv: list[str] | None = None) -> None:
    """The judge in the PostTrainBench contract: score a checkpoint, write the metrics JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmark", required=True)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--model-path", required=True)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--json-output-file", type=Path, required=True)
    args = parser.parse_args(argv)
    metrics = score(args.benchmark, args.data, args.model_path, args.limit)
    args.json_output_file.write_text(json.dumps(metrics))


if __name__ == "__main__":
    main()

"""Task folders: train.jsonl, eval.jsonl (test), optional valid.jsonl and task.json, checked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from postlab.tools.tasks.decontamination import ContaminationIndex
from postlab.tools.tasks.model import (
    Example,
    Task,
    TaskError,
    TaskSpec,
    lend_validation,
    normalize_prompt,
)
from postlab.tools.tasks.verifiers import METRICS, Metric, parse_number

DIR_DEFAULT_METRIC: Metric = "exact"
DIR_DEFAULT_MAX_NEW_TOKENS = 32
# A task folder's files: what readers and writers of the format both name.
TRAIN_FILE = "train.jsonl"
TEST_FILE = "eval.jsonl"
VALID_FILE = "valid.jsonl"
META_FILE = "task.json"
_TASK_JSON_KEYS = {"name", "description", "metric", "max_new_tokens"}


def _read_jsonl(path: Path) -> list[tuple[int, Example]]:
    """(line number, example) for every non-blank line of a prompt/answer JSONL file."""
    if not path.is_file():
        raise TaskError(f"{path}: missing file (a task folder needs train.jsonl and eval.jsonl)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskError(f"{path}: cannot read: {exc}") from exc
    rows: list[tuple[int, Example]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TaskError(f"{path}:{lineno}: invalid JSON: {exc.msg}") from exc
        if not isinstance(obj, dict):
            raise TaskError(f"{path}:{lineno}: expected a JSON object with 'prompt' and 'answer'")
        values = {key: _field(obj, key, path, lineno) for key in ("prompt", "answer")}
        rows.append((lineno, Example(**values)))
    return rows


def _field(obj: dict[str, Any], key: str, path: Path, lineno: int) -> str:
    if key not in obj:
        raise TaskError(f"{path}:{lineno}: missing key {key!r}")
    value = obj[key]
    # Numeric answers are common in hand-written files; bool is an int subclass but never meant.
    if key == "answer" and isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise TaskError(f"{path}:{lineno}: {key!r} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise TaskError(f"{path}:{lineno}: {key!r} is empty")
    return value


def _read_task_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TaskError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskError(f"{path}: cannot read: {exc}") from exc
    if not isinstance(obj, dict):
        raise TaskError(f"{path}: expected a JSON object")
    # A typo such as "metrc" would otherwise silently fall back to exact match.
    unknown = sorted(set(obj) - _TASK_JSON_KEYS)
    if unknown:
        allowed = ", ".join(sorted(_TASK_JSON_KEYS))
        raise TaskError(f"{path}: unknown keys {unknown}; allowed: {allowed}")
    for key in ("name", "description"):
        if key in obj and (not isinstance(obj[key], str) or not obj[key].strip()):
            raise TaskError(f"{path}: {key!r} must be a non-empty string")
    if "metric" in obj and obj["metric"] not in METRICS:
        raise TaskError(
            f"{path}: bad metric {obj['metric']!r}; expected one of {', '.join(METRICS)}"
        )
    if "max_new_tokens" in obj:
        value = obj["max_new_tokens"]
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise TaskError(f"{path}: 'max_new_tokens' must be a positive integer, got {value!r}")
    return obj


def load_task_dir(task_dir: Path) -> Task:
    if not task_dir.is_dir():
        raise TaskError(f"{task_dir}: task folder not found")
    meta = _read_task_json(task_dir / META_FILE)
    eval_path = task_dir / TEST_FILE
    train_rows = _read_jsonl(task_dir / TRAIN_FILE)
    eval_rows = _read_jsonl(eval_path)
    if not eval_rows:
        raise TaskError(f"{eval_path}: eval split is empty")
    metric: Metric = meta.get("metric", DIR_DEFAULT_METRIC)
    if metric == "numeric":
        # Caught at load time: a non-numeric reference would silently score every completion 0.
        for lineno, example in eval_rows:
            if parse_number(example.answer) is None:
                raise TaskError(
                    f"{eval_path}:{lineno}: answer {example.answer!r} is not a number "
                    "(metric is numeric)"
                )
    longest = max(len(example.answer) for _, example in eval_rows)
    # Characters bound tokens from above for typical tokenizers; 32 leaves room for short answers.
    max_new_tokens = meta.get("max_new_tokens", max(DIR_DEFAULT_MAX_NEW_TOKENS, longest + 8))
    spec = TaskSpec(
        name=meta.get("name", task_dir.name),
        description=meta.get("description", f"Task from {task_dir}"),
        metric=metric,
        max_new_tokens=max_new_tokens,
        source="dir",
        task_dir=str(task_dir.resolve()),
    )
    test = [example for _, example in eval_rows]
    pool = [example for _, example in train_rows]
    valid_path = task_dir / VALID_FILE
    lent = not valid_path.is_file()
    if not lent:
        validation = [example for _, example in _read_jsonl(valid_path)]
    else:
        test_keys = {normalize_prompt(example.prompt) for example in test}
        fresh = [example for example in pool if normalize_prompt(example.prompt) not in test_keys]
        validation = lend_validation(fresh, spec.name)
    # Validation is decontaminated against test the way training rows are.
    index = ContaminationIndex(test)
    validation = [example for example in validation if not index.contaminates(example)]
    return Task(
        spec, eval_split=test, train_pool=pool, validation_split=validation, validation_lent=lent
    )

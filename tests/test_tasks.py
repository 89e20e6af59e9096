"""Bundled task generators, eval/train separation, and task-folder loading with its errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from postlab.tools.tasks.catalog import (
    DEFAULT_TASK,
    Example,
    Task,
    TaskError,
    bundled_task_names,
    load_task,
    normalize_prompt,
)

REQUIRED = {"addition_2d", "addition_3d", "unit_conversion", "sort_list", "answer_format"}
ALL = bundled_task_names()


def _keys(examples: list[Example]) -> set[str]:
    return {normalize_prompt(ex.prompt) for ex in examples}


def test_bundled_names_and_default() -> None:
    assert set(ALL) >= REQUIRED
    assert DEFAULT_TASK == "addition_2d"
    task = load_task()
    assert task.name == "addition_2d"
    assert task.metric == "numeric"
    # Room for a short chatty sentence, so the lenient score can find the number in it.
    assert task.max_new_tokens >= 16
    assert task.spec.source == "bundled"
    assert task.spec.task_dir is None


def test_default_prompt_wording() -> None:
    pattern = re.compile(r"What is (\d+) \+ (\d+)\? Reply with the number only\.")
    for ex in load_task().test_examples():
        match = pattern.fullmatch(ex.prompt)
        assert match, ex.prompt
        a, b = int(match[1]), int(match[2])
        assert 10 <= a <= 99 and 10 <= b <= 99
        assert ex.answer == str(a + b)


def test_normalize_prompt() -> None:
    assert normalize_prompt("  What IS\n 2 +\t2? ") == "what is 2 + 2?"


@pytest.mark.parametrize("name", ALL)
def test_eval_split_is_fixed(name: str) -> None:
    first = load_task(name).test_examples()
    again = load_task(name)
    assert again.test_examples() == first
    assert again.test_examples() == first  # cached path too
    assert len(first) == 100
    assert len(_keys(first)) == 100  # distinct questions


@pytest.mark.parametrize("name", ALL)
def test_eval_answers_verify_strictly_against_themselves(name: str) -> None:
    task = load_task(name)
    for ex in task.test_examples():
        assert task.verify(ex.answer, ex.answer).strict, (ex.prompt, ex.answer)
        assert task.reward(ex.answer, ex.answer) == 1.0


@pytest.mark.parametrize("name", ALL)
def test_train_never_intersects_eval(name: str) -> None:
    task = load_task(name)
    eval_keys = _keys(task.test_examples())
    train = task.train_examples(3000, seed=0)
    assert len(train) == 3000
    assert not (_keys(train) & eval_keys)


@pytest.mark.parametrize("name", ALL)
def test_train_seeds(name: str) -> None:
    task = load_task(name)
    a = task.train_examples(50, seed=1)
    assert a == load_task(name).train_examples(50, seed=1)
    assert a != task.train_examples(50, seed=2)
    # A bigger request extends the same stream: the dataset builder relies on it.
    assert task.train_examples(80, seed=1)[:50] == a
    assert task.train_examples(0, seed=1) == []


def test_eval_split_is_machine_independent() -> None:
    # String hashing is randomised per process; the eval split must not depend on it.
    code = (
        "from postlab.tools.tasks.catalog import load_task, bundled_task_names;"
        "print([load_task(n).test_examples()[-1].prompt for n in bundled_task_names()])"
    )
    outputs = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1


def _sample(name: str) -> list[Example]:
    task = load_task(name)
    return task.test_examples() + task.train_examples(300, seed=7)


@pytest.mark.parametrize("name", ["addition_2d", "addition_3d"])
def test_addition_answers(name: str) -> None:
    lo, hi = (10, 99) if name == "addition_2d" else (100, 999)
    for ex in _sample(name):
        a, b = map(int, re.findall(r"\d+", ex.prompt))
        assert lo <= a <= hi and lo <= b <= hi
        assert int(ex.answer) == a + b


def test_sort_list_answers() -> None:
    lengths = set()
    for ex in _sample("sort_list"):
        assert ex.prompt.startswith("Sort these numbers in ascending order: ")
        assert ex.prompt.endswith("Reply with the sorted numbers separated by commas.")
        numbers = [int(x) for x in re.findall(r"\d+", ex.prompt)]
        lengths.add(len(numbers))
        assert all(0 <= x <= 99 for x in numbers)
        assert ex.answer == ", ".join(str(x) for x in sorted(numbers))
    assert lengths == {3, 4, 5}


FACTORS = {("km", "m"): 1000, ("m", "cm"): 100, ("kg", "g"): 1000, ("h", "min"): 60}
FACTORS |= {("min", "s"): 60, ("L", "mL"): 1000}


def test_unit_conversion_answers() -> None:
    pattern = re.compile(r"How many (\w+) are in (\d+) (\w+)\? Reply with the number only\.")
    seen_pairs = set()
    for ex in _sample("unit_conversion"):
        match = pattern.fullmatch(ex.prompt)
        assert match, ex.prompt
        target, value, unit = match[1], int(match[2]), match[3]
        if (unit, target) in FACTORS:  # big -> small
            expected = value * FACTORS[(unit, target)]
        else:  # small -> big, only when it divides evenly
            factor = FACTORS[(target, unit)]
            assert value % factor == 0
            expected = value // factor
        assert ex.answer == str(expected)
        seen_pairs.add((unit, target))
    assert len(seen_pairs) == 12  # every pair, both directions


def test_answer_format_answers() -> None:
    kinds = set()
    for ex in _sample("answer_format"):
        if match := re.fullmatch(r"Is (\d+) even\? Reply with yes or no only\.", ex.prompt):
            kinds.add("parity")
            assert ex.answer == ("yes" if int(match[1]) % 2 == 0 else "no")
            continue
        match = re.fullmatch(
            r"Which is (larger|smaller), (\d+) or (\d+)\? Reply with the number only\.", ex.prompt
        )
        assert match, ex.prompt
        kinds.add(match[1])
        a, b = int(match[2]), int(match[3])
        assert a != b
        assert int(ex.answer) == (max(a, b) if match[1] == "larger" else min(a, b))
    assert kinds == {"parity", "larger", "smaller"}


def test_answer_format_has_a_strict_lenient_gap() -> None:
    task = load_task("answer_format")
    verdict = task.verify("Yes.", "yes")
    assert verdict.lenient and not verdict.strict


def test_multiple_choice_answers() -> None:
    for ex in _sample("multiple_choice_arith"):
        a, b = map(int, re.findall(r"What is (\d+) \+ (\d+)\?", ex.prompt)[0])
        options = dict(re.findall(r"\(([A-D])\) (\d+)", ex.prompt))
        assert list(options) == ["A", "B", "C", "D"]
        assert len(set(options.values())) == 4
        assert int(options[ex.answer]) == a + b
        assert ex.prompt.endswith("Reply with the letter of the correct option only.")


# ---------------------------------------------------------------- task folders


def _write_jsonl(path: Path, rows: list[object]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def _task_dir(
    tmp_path: Path,
    train: list[object] | None = None,
    eval_rows: list[object] | None = None,
    meta: dict | None = None,
    name: str = "capitals",
) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    default_train = [{"prompt": f"Train question {i}?", "answer": str(i)} for i in range(20)]
    default_eval = [{"prompt": f"Eval question {i}?", "answer": str(i)} for i in range(5)]
    _write_jsonl(folder / "train.jsonl", default_train if train is None else train)
    _write_jsonl(folder / "eval.jsonl", default_eval if eval_rows is None else eval_rows)
    if meta is not None:
        (folder / "task.json").write_text(json.dumps(meta), encoding="utf-8")
    return folder


def test_task_dir_defaults(tmp_path: Path) -> None:
    folder = _task_dir(tmp_path)
    task = load_task(task_dir=folder)
    assert isinstance(task, Task)
    assert task.name == "capitals"
    assert task.metric == "exact"
    assert task.max_new_tokens == 32
    assert task.spec.source == "dir"
    assert task.spec.task_dir == str(folder.resolve())
    assert [ex.prompt for ex in task.test_examples()] == [f"Eval question {i}?" for i in range(5)]


def test_task_dir_with_task_json(tmp_path: Path) -> None:
    folder = _task_dir(
        tmp_path,
        meta={"name": "sums", "description": "d", "metric": "numeric", "max_new_tokens": 5},
    )
    task = load_task(task_dir=str(folder))
    assert (task.name, task.description, task.metric, task.max_new_tokens) == (
        "sums",
        "d",
        "numeric",
        5,
    )
    assert task.verify("The answer is 3.", "3").lenient


def test_task_dir_max_new_tokens_grows_with_long_answers(tmp_path: Path) -> None:
    long_answer = "x" * 100
    folder = _task_dir(tmp_path, eval_rows=[{"prompt": "p", "answer": long_answer}])
    assert load_task(task_dir=folder).max_new_tokens >= 100


def test_task_dir_blank_lines_and_numeric_answers(tmp_path: Path) -> None:
    folder = _task_dir(tmp_path)
    (folder / "eval.jsonl").write_text(
        '\n{"prompt": "one plus one", "answer": 2}\n   \n{"prompt": "half", "answer": 0.5}\n\n',
        encoding="utf-8",
    )
    task = load_task(task_dir=folder)
    assert task.test_examples() == [
        Example(prompt="one plus one", answer="2"),
        Example(prompt="half", answer="0.5"),
    ]


def test_task_dir_train_is_filtered_seeded_and_bounded(tmp_path: Path) -> None:
    train = [{"prompt": f"Train question {i}?", "answer": str(i)} for i in range(20)]
    train.append({"prompt": "  EVAL question 3? ", "answer": "3"})  # an eval copy
    folder = _task_dir(tmp_path, train=train)
    task = load_task(task_dir=folder)
    assert task.train_eval_copies == 1
    everything = task.train_examples(1000, seed=0)
    validation = task.validation_examples()
    # A folder without valid.jsonl lends a deterministic third at most of its prompts.
    assert len(validation) == 6 and len(everything) == 20 - 6
    assert validation == load_task(task_dir=folder).validation_examples()
    assert not (_keys(everything) & _keys(task.test_examples()))
    assert not (_keys(everything) & _keys(validation))
    assert not (_keys(validation) & _keys(task.test_examples()))
    first = task.train_examples(7, seed=3)
    assert len(first) == 7
    assert first == load_task(task_dir=folder).train_examples(7, seed=3)
    assert first != task.train_examples(7, seed=4)
    assert [ex.prompt for ex in everything] != [row["prompt"] for row in train[:20]]  # shuffled


def test_bundled_splits_are_disjoint_and_stable() -> None:
    for name in ALL:
        task = load_task(name)
        test, validation = task.test_examples(), task.validation_examples()
        assert len(validation) == len(test) == 100
        assert not (_keys(validation) & _keys(test))
        assert not (_keys(task.train_examples(400, seed=1)) & (_keys(validation) | _keys(test)))
        assert validation == load_task(name).validation_examples()


def test_valid_jsonl_is_decontaminated_against_test(tmp_path: Path) -> None:
    train = [{"prompt": f"Train question {i}?", "answer": str(i)} for i in range(30)]
    folder = _task_dir(tmp_path, train=train)
    test_row = load_task(task_dir=folder).test_examples()[0]
    rows = [
        {"prompt": "Valid question 1?", "answer": "1"},
        {"prompt": test_row.prompt.upper(), "answer": test_row.answer},
    ]
    (folder / "valid.jsonl").write_text("\n".join(json.dumps(row) for row in rows))
    task = load_task(task_dir=folder)
    assert [ex.prompt for ex in task.validation_examples()] == ["Valid question 1?"]
    # With a shipped validation split, every training row stays for training.
    assert len(task.train_examples(1000, seed=0)) == 30


def test_unknown_task_lists_bundled(tmp_path: Path) -> None:
    with pytest.raises(TaskError) as err:
        load_task("nope")
    assert "nope" in str(err.value)
    for name in ALL:
        assert name in str(err.value)


def test_name_and_dir_together(tmp_path: Path) -> None:
    with pytest.raises(TaskError, match="not both"):
        load_task("addition_2d", task_dir=_task_dir(tmp_path))


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(TaskError, match="task folder not found"):
        load_task(task_dir=tmp_path / "absent")


@pytest.mark.parametrize("missing", ["train.jsonl", "eval.jsonl"])
def test_missing_file(tmp_path: Path, missing: str) -> None:
    folder = _task_dir(tmp_path)
    (folder / missing).unlink()
    with pytest.raises(TaskError, match=re.escape(missing) + ".*missing file"):
        load_task(task_dir=folder)


BAD_LINES = [
    ("{not json", "invalid JSON"),
    ('["a list"]', "expected a JSON object"),
    ('{"answer": "1"}', "missing key 'prompt'"),
    ('{"prompt": "p"}', "missing key 'answer'"),
    ('{"prompt": 3, "answer": "1"}', "'prompt' must be a string"),
    ('{"prompt": "p", "answer": ["1"]}', "'answer' must be a string"),
    ('{"prompt": "p", "answer": true}', "'answer' must be a string"),
    ('{"prompt": "  ", "answer": "1"}', "'prompt' is empty"),
]


@pytest.mark.parametrize("file", ["train.jsonl", "eval.jsonl"])
@pytest.mark.parametrize(("line", "message"), BAD_LINES)
def test_bad_line_names_file_and_line(tmp_path: Path, file: str, line: str, message: str) -> None:
    folder = _task_dir(tmp_path)
    good = '{"prompt": "fine", "answer": "1"}'
    # The bad row is on line 4, after a blank line, so the number must count raw lines.
    (folder / file).write_text(f"{good}\n\n{good.replace('fine', 'ok')}\n{line}\n", "utf-8")
    with pytest.raises(TaskError) as err:
        load_task(task_dir=folder)
    text = str(err.value)
    assert f"{file}:4:" in text
    assert message in text


def test_empty_eval_split(tmp_path: Path) -> None:
    folder = _task_dir(tmp_path)
    (folder / "eval.jsonl").write_text("\n  \n", encoding="utf-8")
    with pytest.raises(TaskError, match=r"eval\.jsonl: eval split is empty"):
        load_task(task_dir=folder)


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({"metric": "fuzzy"}, "bad metric 'fuzzy'"),
        ({"metrc": "numeric"}, "unknown keys"),
        ({"max_new_tokens": 0}, "'max_new_tokens' must be a positive integer"),
        ({"max_new_tokens": "8"}, "'max_new_tokens' must be a positive integer"),
        ({"name": ""}, "'name' must be a non-empty string"),
        (["not", "an", "object"], "expected a JSON object"),
    ],
)
def test_bad_task_json(tmp_path: Path, meta: object, message: str) -> None:
    folder = _task_dir(tmp_path)
    (folder / "task.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(TaskError) as err:
        load_task(task_dir=folder)
    assert "task.json" in str(err.value)
    assert message in str(err.value)


def test_task_json_invalid_json_names_line(tmp_path: Path) -> None:
    folder = _task_dir(tmp_path)
    (folder / "task.json").write_text('{\n  "metric": "exact",\n  oops\n}', encoding="utf-8")
    with pytest.raises(TaskError, match=r"task\.json:3: invalid JSON"):
        load_task(task_dir=folder)


def test_numeric_task_rejects_non_numeric_eval_answer(tmp_path: Path) -> None:
    eval_rows = [{"prompt": "a", "answer": "1"}, {"prompt": "b", "answer": "two"}]
    folder = _task_dir(tmp_path, eval_rows=eval_rows, meta={"metric": "numeric"})
    with pytest.raises(TaskError, match=r"eval\.jsonl:2: answer 'two' is not a number"):
        load_task(task_dir=folder)


def test_task_error_is_value_error() -> None:
    assert issubclass(TaskError, ValueError)

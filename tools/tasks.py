"""Tasks: bundled seeded generators and task folders, each with a fixed eval split and verifier."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from postlab.tools.verifiers import METRICS, Metric, Verdict, parse_number
from postlab.tools.verifiers import reward as _reward
from postlab.tools.verifiers import verify as _verify

DEFAULT_TASK = "addition_2d"
EVAL_SIZE = 100
# Part of every bundled eval stream's seed: changing it changes every published eval score.
EVAL_SEED = 20250101
DIR_DEFAULT_METRIC: Metric = "exact"
DIR_DEFAULT_MAX_NEW_TOKENS = 32
_TASK_JSON_KEYS = {"name", "description", "metric", "max_new_tokens"}


class TaskError(ValueError):
    """A task that cannot be loaded: unknown name, missing files or malformed data."""


class Example(BaseModel):
    """One prompt with its reference answer."""

    model_config = ConfigDict(frozen=True)

    prompt: str
    answer: str


class TaskSpec(BaseModel):
    """What a task is: its name, how it is scored and where it comes from."""

    name: str
    description: str
    metric: Metric
    max_new_tokens: int
    source: Literal["bundled", "dir"]
    task_dir: str | None = None


def normalize_prompt(text: str) -> str:
    """Lowercase and collapse whitespace: the key for eval-split filtering and deduplication."""
    return " ".join(text.lower().split())


Generator = Callable[[random.Random], Example]


class Task:
    """A task: a spec plus its fixed eval split, its training stream and its verifier."""

    def __init__(
        self,
        spec: TaskSpec,
        *,
        generator: Generator | None = None,
        eval_split: list[Example] | None = None,
        train_pool: list[Example] | None = None,
    ) -> None:
        """Build from a generator (bundled) or from explicit eval/train lists (task folders)."""
        if (generator is None) == (eval_split is None):
            raise TaskError("a Task needs either a generator or an eval split, not both or neither")
        self.spec = spec
        self._generator = generator
        self._eval: list[Example] | None = list(eval_split) if eval_split is not None else None
        self._eval_keys: frozenset[str] | None = None
        pool = list(train_pool or [])
        keys = self._eval_prompt_keys()
        self._train_pool = [ex for ex in pool if normalize_prompt(ex.prompt) not in keys]
        # Kept so the dataset card can report contamination that was already in the source file.
        self.train_eval_copies = len(pool) - len(self._train_pool)

    def __repr__(self) -> str:
        return f"Task(name={self.name!r}, metric={self.metric!r}, source={self.spec.source!r})"

    @property
    def name(self) -> str:
        """The task's name."""
        return self.spec.name

    @property
    def description(self) -> str:
        """A one-line human description of the task."""
        return self.spec.description

    @property
    def metric(self) -> Metric:
        """The verifier metric used to score completions."""
        return self.spec.metric

    @property
    def max_new_tokens(self) -> int:
        """Generation budget for a completion of this task."""
        return self.spec.max_new_tokens

    def eval_examples(self) -> list[Example]:
        """The fixed held-out split, identical on every call and machine."""
        if self._eval is None:
            assert self._generator is not None
            rng = random.Random(f"postlab/{self.name}/eval/{EVAL_SEED}")
            seen: set[str] = set()
            examples: list[Example] = []
            # Unique prompts, so 100 items really are 100 distinct measurements.
            for _ in range(EVAL_SIZE * 1000):
                example = self._generator(rng)
                key = normalize_prompt(example.prompt)
                if key not in seen:
                    seen.add(key)
                    examples.append(example)
                    if len(examples) == EVAL_SIZE:
                        break
            self._eval = examples
        return list(self._eval)

    def train_examples(self, n: int, seed: int) -> list[Example]:
        """Up to `n` training examples for `seed`, never one whose prompt is in the eval split."""
        if n <= 0:
            return []
        keys = self._eval_prompt_keys()
        if self._generator is None:
            pool = list(self._train_pool)
            random.Random(seed).shuffle(pool)
            return pool[:n]
        # A seed stream distinct from the eval one; a larger n extends the same prefix, which
        # lets the dataset builder ask for more without reshuffling what it already accepted.
        rng = random.Random(f"postlab/{self.name}/train/{seed}")
        examples: list[Example] = []
        # Bounded so a generator whose space the eval split exhausts cannot loop forever.
        for _ in range(n * 50 + 1000):
            example = self._generator(rng)
            if normalize_prompt(example.prompt) not in keys:
                examples.append(example)
                if len(examples) == n:
                    break
        return examples

    def verify(self, completion: str, answer: str) -> Verdict:
        """Strict and lenient verdict for one completion."""
        return _verify(self.metric, completion, answer)

    def reward(self, completion: str, answer: str) -> float:
        """GRPO reward for one completion (1.0 strict, 0.5 lenient only, 0.0 wrong)."""
        return _reward(self.metric, completion, answer)

    def _eval_prompt_keys(self) -> frozenset[str]:
        if self._eval_keys is None:
            self._eval_keys = frozenset(normalize_prompt(ex.prompt) for ex in self.eval_examples())
        return self._eval_keys


# ---------------------------------------------------------------- bundled generators


def _addition(lo: int, hi: int) -> Generator:
    def generate(rng: random.Random) -> Example:
        a, b = rng.randint(lo, hi), rng.randint(lo, hi)
        return Example(prompt=f"What is {a} + {b}? Reply with the number only.", answer=str(a + b))

    return generate


# (larger unit, smaller unit, factor); only integer results are ever asked for.
_UNIT_PAIRS = [
    ("km", "m", 1000),
    ("m", "cm", 100),
    ("kg", "g", 1000),
    ("h", "min", 60),
    ("min", "s", 60),
    ("L", "mL", 1000),
]


def _unit_conversion(rng: random.Random) -> Example:
    big, small, factor = rng.choice(_UNIT_PAIRS)
    k = rng.randint(1, 250)
    # "How many X are in N Y" puts a number inside every 8-word window, so n-gram decontamination
    # sees items that differ; "Convert N Y to X" left "Y to X reply with the number only" as a
    # per-unit template shared by under 10% of eval items, which would flag whole unit pairs.
    if rng.random() < 0.5:
        prompt, answer = f"How many {small} are in {k} {big}?", k * factor
    else:
        prompt, answer = f"How many {big} are in {k * factor} {small}?", k
    return Example(prompt=f"{prompt} Reply with the number only.", answer=str(answer))


def _sort_list(rng: random.Random) -> Example:
    numbers = rng.sample(range(100), rng.randint(3, 5))
    shown = ", ".join(str(x) for x in numbers)
    return Example(
        prompt=(
            f"Sort these numbers in ascending order: {shown}. "
            "Reply with the sorted numbers separated by commas."
        ),
        answer=", ".join(str(x) for x in sorted(numbers)),
    )


def _answer_format(rng: random.Random) -> Example:
    kind = rng.randrange(3)
    if kind == 2:
        n = rng.randint(1, 999)
        return Example(
            prompt=f"Is {n} even? Reply with yes or no only.",
            answer="yes" if n % 2 == 0 else "no",
        )
    a, b = sorted(rng.sample(range(10, 100), 2))
    # The order is a function of the pair, so "31 or 58" and "58 or 31" never split one question
    # across the train and eval splits.
    if (a * 31 + b) % 2:
        a, b = b, a
    word, pick = ("larger", max) if kind == 0 else ("smaller", min)
    return Example(
        prompt=f"Which is {word}, {a} or {b}? Reply with the number only.",
        answer=str(pick(a, b)),
    )


_LETTERS = "ABCD"


def _multiple_choice_arith(rng: random.Random) -> Example:
    a, b = rng.randint(10, 99), rng.randint(10, 99)
    total = a + b
    # Options depend only on (a, b): the same sum always renders the same prompt, so the exact
    # prompt filter keeps a reshuffled copy of an eval question out of training.
    local = random.Random(a * 1000 + b)
    offsets = local.sample([-11, -10, -9, -2, -1, 1, 2, 9, 10, 11], 3)
    options = [total, *(total + d for d in offsets)]
    local.shuffle(options)
    lines = "\n".join(
        f"({letter}) {value}" for letter, value in zip(_LETTERS, options, strict=True)
    )
    return Example(
        prompt=f"What is {a} + {b}?\n{lines}\nReply with the letter of the correct option only.",
        answer=_LETTERS[options.index(total)],
    )


# Token limits leave room for a short sentence, so a chatty reply can still score leniently.
_BUNDLED: dict[str, tuple[str, Metric, int, Generator]] = {
    "addition_2d": (
        "Add two 2-digit numbers; reply with the number only.",
        "numeric",
        24,
        _addition(10, 99),
    ),
    "addition_3d": (
        "Add two 3-digit numbers; reply with the number only.",
        "numeric",
        24,
        _addition(100, 999),
    ),
    "unit_conversion": (
        "Convert between metric/time units with integer results; reply with the number only.",
        "numeric",
        24,
        _unit_conversion,
    ),
    "sort_list": (
        "Sort 3-5 numbers ascending; reply with them comma-separated.",
        "exact",
        32,
        _sort_list,
    ),
    "answer_format": (
        "Compare two numbers or judge parity, replying in exactly the requested format "
        "(a bare number, or lowercase yes/no).",
        "exact",
        16,
        _answer_format,
    ),
    "multiple_choice_arith": (
        "Pick the correct sum among options (A)-(D); reply with the letter only.",
        "choice",
        16,
        _multiple_choice_arith,
    ),
}


def bundled_task_names() -> list[str]:
    """Names of the tasks shipped with postlab."""
    return list(_BUNDLED)


def load_task(name: str | None = None, task_dir: str | Path | None = None) -> Task:
    """A bundled task by name, or a task folder; neither gives the default task."""
    if name is not None and task_dir is not None:
        raise TaskError("give a task name or a task folder, not both")
    if task_dir is not None:
        return _load_task_dir(Path(task_dir))
    name = name or DEFAULT_TASK
    if name not in _BUNDLED:
        known = ", ".join(bundled_task_names())
        raise TaskError(f"unknown task {name!r}; bundled tasks: {known}")
    description, metric, max_new_tokens, generator = _BUNDLED[name]
    spec = TaskSpec(
        name=name,
        description=description,
        metric=metric,
        max_new_tokens=max_new_tokens,
        source="bundled",
    )
    return Task(spec, generator=generator)


# ---------------------------------------------------------------- task folders


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


def _load_task_dir(task_dir: Path) -> Task:
    if not task_dir.is_dir():
        raise TaskError(f"{task_dir}: task folder not found")
    meta = _read_task_json(task_dir / "task.json")
    eval_path = task_dir / "eval.jsonl"
    train_rows = _read_jsonl(task_dir / "train.jsonl")
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
    return Task(
        spec,
        eval_split=[example for _, example in eval_rows],
        train_pool=[example for _, example in train_rows],
    )

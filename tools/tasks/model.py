"""The task model: examples, a spec, fixed test and validation splits, training data, verifier."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict

from postlab.tools.tasks.verifiers import Metric, Verdict
from postlab.tools.tasks.verifiers import reward as _reward
from postlab.tools.tasks.verifiers import verify as _verify

EVAL_SIZE = 100
# Part of every bundled eval stream's seed: changing it changes every published eval score.
EVAL_SEED = 20250101
# Validation: the split every decision reads. At most VALIDATION_SIZE items; a task folder without
# valid.jsonl lends it a deterministic share of its training rows (never under MIN_VALIDATION).
VALIDATION_SIZE = 100
VALIDATION_SHARE = 0.15
MIN_VALIDATION = 8


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


def lend_validation(pool: list[Example], task_name: str) -> list[Example]:
    """A deterministic slice of a training pool for validation, for a task that ships none."""
    unique = list({normalize_prompt(ex.prompt): ex for ex in pool}.values())
    share = max(MIN_VALIDATION, round(VALIDATION_SHARE * len(unique)))
    # Never more than a third of the distinct prompts: training needs most of a small pool.
    size = min(VALIDATION_SIZE, share, len(unique) // 3)
    random.Random(f"postlab/{task_name}/validation").shuffle(unique)
    return unique[:size]


class Task:
    """A task: a spec, its fixed test split, its validation split, training data and verifier.

    Test is scored only to report; validation is what every decision reads. Neither ever feeds
    training, and validation never repeats a test prompt.
    """

    def __init__(
        self,
        spec: TaskSpec,
        *,
        generator: Generator | None = None,
        eval_split: list[Example] | None = None,
        train_pool: list[Example] | None = None,
        validation_split: list[Example] | None = None,
        validation_lent: bool = False,
    ) -> None:
        """Build from a generator (bundled) or from explicit test/train lists (task folders).

        Without an explicit validation split, a listed task lends a deterministic slice of its
        training pool to validation; a generated task draws it from its own seed stream.
        `validation_lent` says an explicit split was sliced from the training file all the same.
        """
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
        self._validation: list[Example] | None = None
        # A slice of the training file shares its answers' skew: it cannot tell whether test does.
        self.validation_lent = validation_lent or (validation_split is None and generator is None)
        if validation_split is not None:
            self._validation = [
                ex for ex in validation_split if normalize_prompt(ex.prompt) not in keys
            ]
        elif generator is None:
            self._validation = lend_validation(self._train_pool, spec.name)
        self._validation_keys = frozenset(
            normalize_prompt(ex.prompt) for ex in self._validation or []
        )
        self._train_pool = [
            ex
            for ex in self._train_pool
            if normalize_prompt(ex.prompt) not in self._validation_keys
        ]

    def __repr__(self) -> str:
        return f"Task(name={self.name!r}, metric={self.metric!r}, source={self.spec.source!r})"

    def with_train_pool(self, pool: list[Example]) -> Task:
        """The same task, test and validation with another training pool."""
        return Task(
            self.spec,
            eval_split=self.test_examples(),
            train_pool=pool,
            validation_split=self.validation_examples(),
            validation_lent=self.validation_lent,
        )

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

    @property
    def train_pool_size(self) -> int | None:
        """Distinct training rows a task folder offers (None: a generator makes any number)."""
        return None if self._generator is not None else len(self._train_pool)

    def test_examples(self) -> list[Example]:
        """The fixed test split, identical on every call and machine: scored to report only."""
        if self._eval is None:
            self._eval = self._draw_unique("eval", EVAL_SIZE, frozenset())
        return list(self._eval)

    def validation_examples(self) -> list[Example]:
        """The validation split every decision reads; never a test prompt, never trained on."""
        if self._validation is None:
            self._validation = self._draw_unique(
                "validation", VALIDATION_SIZE, self._eval_prompt_keys()
            )
            self._validation_keys = frozenset(
                normalize_prompt(example.prompt) for example in self._validation
            )
        return list(self._validation)

    def _draw_unique(self, stream: str, size: int, exclude: frozenset[str]) -> list[Example]:
        """`size` distinct prompts from the generator's fixed `stream`, none of them excluded."""
        assert self._generator is not None
        rng = random.Random(f"postlab/{self.name}/{stream}/{EVAL_SEED}")
        seen: set[str] = set()
        examples: list[Example] = []
        # Unique prompts, so 100 items really are 100 distinct measurements.
        for _ in range(size * 1000):
            example = self._generator(rng)
            key = normalize_prompt(example.prompt)
            if key not in seen and key not in exclude:
                seen.add(key)
                examples.append(example)
                if len(examples) == size:
                    break
        return examples

    def train_examples(self, n: int, seed: int) -> list[Example]:
        """Up to `n` training examples for `seed`, never a test or validation prompt."""
        if n <= 0:
            return []
        self.validation_examples()
        keys = self._eval_prompt_keys() | self._validation_keys
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
            self._eval_keys = frozenset(normalize_prompt(ex.prompt) for ex in self.test_examples())
        return self._eval_keys

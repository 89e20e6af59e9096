"""The task model: examples, a task's spec, its fixed eval split, training stream and verifier."""

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

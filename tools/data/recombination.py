"""New rows from a small folder's own: its answers copy words of their prompts, so swapping
those words on both sides makes a new question with a right answer.

The evidence is the rows themselves, in the spirit of GECA (Andreas, ACL 2020: fragments that
share an environment are interchangeable). A row's slots are its prompt's words of two letters
or more that some answer copies and that are not the task's wording (words whose prompts hold
more than a tenth of the distinct answers). Rows with the same prompt once their slots are
blanked form a group; a group whose every answer copies its slots in the same order and case,
with four different fillings or more, is a rule. "Write 'hot soup' in capital letters" → "HOT
SOUP" is one: any two words give a right row. "Which is larger, cat or mouse?" is not: the
copied slot changes with the words, so no rule holds and nothing is made. A folder is
recombined only when half its rows or more follow a rule. Substitutes come from the folder's
slots and from the model's own whole-word tokens: new words, not only new pairs of known ones
(Yao and Koller 2024: sampling uniformly beat sampling the training distribution for
compositional augmentation).
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from postlab.tools.data.training_sets import example_row
from postlab.tools.tasks.catalog import Example, normalize_prompt

_WORD = re.compile(r"[A-Za-z]+")
# A slot as `_shape` writes it.
_SLOT = re.compile(r"\{\d+:(?:upper|title|lower)\}")
# A word in prompts with more distinct answers than this share of them (and than
# TEMPLATE_MIN_ANSWERS) is the task's wording: a phrase asked three ways has one answer.
TEMPLATE_SHARE = 0.1
TEMPLATE_MIN_ANSWERS = 2
# Different fillings of its slots that must agree before a prompt shape is a rule: two rows of a
# two-way choice agree by chance half the time, four only one time in eight.
MIN_RULE_FILLINGS = 4
# A folder is recombined only when at least this share of its rows follow a rule: new rows copy
# the rules, and a folder mostly outside them is some other task.
MIN_RULE_SHARE = 0.5
# What the lab cites for the recipe (the paper's abstract).
EVIDENCE = (
    "GECA, Andreas 2020: recombining fragments that share contexts cut SCAN errors by up to 87%"
)
# Draws per row asked for before giving up on new prompts (a small space runs out).
_TRIES_PER_ROW = 20


class CopyRow(NamedTuple):
    """A training row under a rule, and its slots in order of first appearance."""

    example: Example
    slots: tuple[str, ...]


class CopyRules(NamedTuple):
    """The rows that follow a copy rule, how many rules, and the folder's slot words."""

    rows: list[CopyRow]
    rules: int
    words: list[str]


def _case(word: str) -> str:
    if len(word) > 1 and word.isupper():
        return "upper"
    return "title" if word[:1].isupper() else "lower"


def _cased(word: str, like: str) -> str:
    return {"upper": word.upper(), "title": word.capitalize()}.get(_case(like), word.lower())


def _shape(text: str, slots: Sequence[str]) -> str:
    """`text` with each slot written as its index and case: what a rule compares."""
    index = {word: i for i, word in enumerate(slots)}

    def blank(match: re.Match) -> str:
        word = match.group()
        i = index.get(word.lower())
        return word if i is None else f"{{{i}:{_case(word)}}}"

    return _WORD.sub(blank, text)


def _substitute(text: str, mapping: dict[str, str]) -> str:
    def swap(match: re.Match) -> str:
        word = match.group()
        new = mapping.get(word.lower())
        return word if new is None else _cased(new, word)

    return _WORD.sub(swap, text)


def copy_rules(examples: Sequence[Example]) -> CopyRules:
    """The rows of `examples` that follow a copy rule (none when no prompt shape agrees)."""
    answers_with: dict[str, set[str]] = defaultdict(set)
    for example in examples:
        for word in {w.lower() for w in _WORD.findall(example.prompt)}:
            answers_with[word].add(example.answer)
    distinct_answers = len({example.answer for example in examples})
    wording = max(TEMPLATE_MIN_ANSWERS, TEMPLATE_SHARE * distinct_answers)
    template = {word for word, seen in answers_with.items() if len(seen) > wording}
    copied: set[str] = set()
    for example in examples:
        prompt_words = {w.lower() for w in _WORD.findall(example.prompt)}
        copied |= {w.lower() for w in _WORD.findall(example.answer)} & prompt_words
    # A one-letter word ("a", "I", the "t" of "don't") shows no case of its own to copy.
    copied = {word for word in copied - template if len(word) > 1}
    groups: dict[str, list[tuple[CopyRow, str]]] = defaultdict(list)
    for example in examples:
        found = (w.lower() for w in _WORD.findall(example.prompt) if w.lower() in copied)
        slots = tuple(dict.fromkeys(found))
        if slots:
            row = CopyRow(example, slots)
            groups[_shape(example.prompt, slots)].append((row, _shape(example.answer, slots)))
    rows: list[CopyRow] = []
    rules = 0
    for members in groups.values():
        shapes = {shape for _, shape in members}
        # Agreement counts between different words only: rows that share their slots agree by
        # coincidence ("yes or no" → "yes" twice). An answer that copies no slot is a fixed reply.
        fillings = {row.slots for row, _ in members}
        copies = len(shapes) == 1 and _SLOT.search(next(iter(shapes))) is not None
        if copies and len(fillings) >= MIN_RULE_FILLINGS:
            rules += 1
            rows.extend(row for row, _ in members)
    return CopyRules(rows, rules, sorted({word for row in rows for word in row.slots}))


def recombinable(rule_rows: int, rows: int) -> bool:
    """Whether a set of `rows` with `rule_rows` of them under a copy rule may be recombined."""
    return rows > 0 and rule_rows >= MIN_RULE_SHARE * rows


def recombined_rows(
    examples: list[Example],
    size: int,
    substitutes: Sequence[str],
    seed: int,
    contaminates: Callable[[Example], bool],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Plain rows of `examples` and new rows up to `size`: rule rows with their slots swapped
    for other words (the folder's and `substitutes`), deduplicated and decontaminated."""
    found = copy_rules(examples)
    if not recombinable(len(found.rows), len(examples)):
        found = CopyRules([], 0, [])
    pool = sorted(set(found.words) | {w.lower() for w in substitutes if w.isalpha()})
    rng = random.Random(seed)
    seen = {normalize_prompt(example.prompt) for example in examples}
    made: list[Example] = []
    counts = dict.fromkeys(("duplicates", "contaminated"), 0)
    wanted = max(0, size - len(examples))
    tries = wanted * _TRIES_PER_ROW if found.rows else 0
    for _ in range(tries):
        if len(made) >= wanted:
            break
        row = rng.choice(found.rows)
        if len(row.slots) > len(pool):
            continue
        mapping = dict(zip(row.slots, rng.sample(pool, len(row.slots)), strict=True))
        new = Example(
            prompt=_substitute(row.example.prompt, mapping),
            answer=_substitute(row.example.answer, mapping),
        )
        key = normalize_prompt(new.prompt)
        if key in seen:
            counts["duplicates"] += 1
        elif contaminates(new):
            counts["contaminated"] += 1
        else:
            seen.add(key)
            made.append(new)
    rows = [example_row(example, "sft") for example in [*examples, *made]]
    stats = {
        "seed_rows": len(examples),
        "rule_rows": len(found.rows),
        "rules": found.rules,
        "folder_words": len(found.words),
        "substitute_words": len(pool) - len(found.words),
        "recombined": len(made),
        **counts,
        "recombined_examples": [f"{e.prompt} → {e.answer}" for e in made[:5]],
    }
    return rows, stats

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
compositional augmentation). Rows whose answers a number rule computes from their prompts'
numbers (number_rules.py) are recombined too: new numbers, the answer the rule gives.
"""

from __future__ import annotations

import math
import random
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from postlab.records.outcomes import FolderSurvey
from postlab.tools.data.known_rows import recall_rows
from postlab.tools.data.number_rules import (
    MIN_RULE_FILLINGS,
    NumberRow,
    NumberRule,
    number_rules,
    redraw,
    rule_row_count,
)
from postlab.tools.data.training_sets import example_row
from postlab.tools.tasks.catalog import Example, normalize_prompt

_WORD = re.compile(r"[A-Za-z]+")
# A slot as `_shape` writes it.
_SLOT = re.compile(r"\{\d+:(?:upper|title|lower)\}")
# A word in prompts with more distinct answers than this share of them (and than
# TEMPLATE_MIN_ANSWERS) is the task's wording: a phrase asked three ways has one answer.
TEMPLATE_SHARE = 0.1
TEMPLATE_MIN_ANSWERS = 2
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
    """Whether a set of `rows` with `rule_rows` of them under a rule may be recombined."""
    return rows > 0 and rule_rows >= MIN_RULE_SHARE * rows


class FolderRules(NamedTuple):
    """A folder's copy rules and number rules among its `rows`, each kept only where it covers
    enough of them."""

    rows: int
    copies: CopyRules
    numbers: list[NumberRule]

    def stats(self) -> dict[str, Any]:
        """What a data card records of them (what the lab's recipe choices read), with the
        folder rows they were sought in."""
        return {
            "seed_rows": self.rows,
            "rule_rows": len(self.copies.rows),
            "number_rule_rows": rule_row_count(self.numbers),
            "number_rules": [_rule_text(rule) for rule in self.numbers],
        }


def _rule_text(rule: NumberRule) -> str:
    """A number rule as a card and a reason name it: its operation, rows and wording, and the
    relations its new numbers keep."""
    kept = "".join(
        f"; {dependent.describe()} in every row, kept" for dependent in rule.bounds.dependents
    )
    wording = " ".join(sorted(rule.wording))
    return f"{rule.operation.describe()} ({len(rule.rows)} rows worded '{wording}'{kept})"


def folder_rules(examples: Sequence[Example]) -> FolderRules:
    """The rules `examples` follow, a kind dropped where too few rows follow it to recombine."""
    copies = copy_rules(examples)
    if not recombinable(len(copies.rows), len(examples)):
        copies = CopyRules([], 0, [])
    numbers = number_rules(examples)
    if not recombinable(rule_row_count(numbers), len(examples)):
        numbers = []
    return FolderRules(len(examples), copies, numbers)


def survey_folder(examples: Sequence[Example], survey_rows: int) -> FolderSurvey:
    """A folder's usable rows (`examples`, as `usable_examples` counts them) and how many of
    the first `survey_rows` of them follow copy rules and number rules, or ask for facts."""
    surveyed = examples[:survey_rows]
    stats = folder_rules(surveyed).stats()
    return FolderSurvey(
        rows=len(examples),
        surveyed_rows=len(surveyed),
        number_rule_rows=stats["number_rule_rows"],
        copy_rule_rows=stats["rule_rows"],
        number_rules=stats["number_rules"],
        recall_rows=recall_rows(surveyed),
    )


def _draw(
    copies: Sequence[CopyRow],
    numbers: Sequence[tuple[NumberRule, NumberRow]],
    pool: Sequence[str],
    rng: random.Random,
) -> Example | None:
    """One new row from a rule row drawn at random: its copied words or its numbers redrawn."""
    pick = rng.randrange(len(copies) + len(numbers))
    if pick >= len(copies):
        rule, row = numbers[pick - len(copies)]
        return redraw(rule, row, rng)
    row = copies[pick]
    if len(row.slots) > len(pool):
        return None
    mapping = dict(zip(row.slots, rng.sample(pool, len(row.slots)), strict=True))
    return Example(
        prompt=_substitute(row.example.prompt, mapping),
        answer=_substitute(row.example.answer, mapping),
    )


def recombined_rows(
    examples: list[Example],
    size: int,
    substitutes: Callable[[], Sequence[str]],
    seed: int,
    contaminates: Callable[[Example], bool],
    schedule_rows: int | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Plain rows of `examples` and new rows up to `size`: copy-rule rows with their slots
    swapped for other words (the folder's and those `substitutes` gives, asked only when a copy
    rule holds), number-rule rows with new numbers, deduplicated and decontaminated.

    A folder under number rules alone gives a stretch its own rows in the share they would
    have among `schedule_rows` (what the stretch's whole schedule reads) drawn from the rules at
    once, each read about once over the schedule rather than once a stretch; copied words keep
    the first `size` folder rows, whose words anchor the ones swapped in."""
    found = folder_rules(examples)
    lent = substitutes() if found.copies.rows else []
    pool = sorted(set(found.copies.words) | {w.lower() for w in lent if w.isalpha()})
    rng = random.Random(seed)
    seen = {normalize_prompt(example.prompt) for example in examples}
    own = list(examples[:size])
    if found.numbers and not found.copies.rows and schedule_rows and schedule_rows > size:
        share = math.ceil(len(examples) * size / schedule_rows)
        own = rng.sample(examples, min(size, max(1, share)))
    made: list[Example] = []
    counts = dict.fromkeys(("duplicates", "contaminated"), 0)
    wanted = max(0, size - len(own))
    numbers = [(rule, row) for rule in found.numbers for row in rule.rows]
    tries = wanted * _TRIES_PER_ROW if found.copies.rows or numbers else 0
    for _ in range(tries):
        if len(made) >= wanted:
            break
        new = _draw(found.copies.rows, numbers, pool, rng)
        if new is None:
            continue
        key = normalize_prompt(new.prompt)
        if key in seen:
            counts["duplicates"] += 1
        elif contaminates(new):
            counts["contaminated"] += 1
        else:
            seen.add(key)
            made.append(new)
    rows = [example_row(example, "sft") for example in [*own, *made]]
    stats = {
        **found.stats(),
        "own_rows": len(own),
        "rules": found.copies.rules,
        "folder_words": len(found.copies.words),
        "substitute_words": len(pool) - len(found.copies.words),
        "recombined": len(made),
        **counts,
        "recombined_examples": [f"{e.prompt} → {e.answer}" for e in made[:5]],
    }
    return rows, stats

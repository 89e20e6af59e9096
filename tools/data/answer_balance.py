"""Training rows in balance: whether training over-represents one answer against validation,
rows that give every answer equal weight, and rows that give a collapsed or unlearned kind of
question more."""

from __future__ import annotations

from collections import Counter

from postlab.records.outcomes import AnswerShift
from postlab.tools.data.self_generated import Rows
from postlab.tools.data.training_sets import example_row
from postlab.tools.evaluation.misses import (
    label_kind,
    label_set,
    normal_answer,
    question_kind,
)
from postlab.tools.tasks.catalog import Example

# A training set whose commonest answer holds at least this share, and this much more of it than
# validation does, can teach that answer as a prior instead of the task (a collapse).
SHIFT_MIN_TRAIN_SHARE = 0.6
SHIFT_MIN_GAP = 0.2
# The share of the rows the collapsed kind of question takes (from about a quarter on
# answer_format). Measured: 240 steps of plain SFT on answer_format with parity questions at 0.6
# of the rows (1,152 rows from 915 distinct questions) scored 0.99 on validation and on test,
# parity learned, where naive SFT's rows (26.5% parity) left every parity question answered
# "yes" (test 0.83).
KIND_SHARE = 0.6


def answer_shift(
    train_answers: list[str], validation_answers: list[str], validation_lent: bool = False
) -> AnswerShift | None:
    """The label training over-represents against validation, when one does.

    A validation split lent from the training file shares its skew whatever test holds: there a
    skewed training set is a shift against an unknown prior (the held-out above_500 folder
    without its valid.jsonl: validation 0.96, test 0.60, no better than naive SFT's constant).
    """
    if not label_set(train_answers) or not label_set(validation_answers):
        return None
    train = Counter(normal_answer(answer) for answer in train_answers)
    validation = Counter(normal_answer(answer) for answer in validation_answers)
    answer, count = train.most_common(1)[0]
    train_share = count / len(train_answers)
    validation_share = validation[answer] / len(validation_answers)
    if train_share < SHIFT_MIN_TRAIN_SHARE:
        return None
    if not validation_lent and train_share - validation_share < SHIFT_MIN_GAP:
        return None
    return AnswerShift(
        answer=answer,
        train_share=round(train_share, 3),
        validation_share=round(validation_share, 3),
        prior_unknown=validation_lent,
    )


def balanced_rows(examples: list[Example]) -> Rows:
    """Plain rows with every reference answer equally often (minority answers repeated).

    A model that gives one answer to every prompt learned the majority answer; rows balanced
    by answer take that shortcut away. Tasks whose answers rarely repeat (arithmetic) have
    nothing to balance and keep their rows as they are.
    """
    groups: dict[str, list[Example]] = {}
    for example in examples:
        groups.setdefault(normal_answer(example.answer), []).append(example)
    before = Counter({answer: len(items) for answer, items in groups.items()})
    if len(groups) > len(examples) // 2 or len(groups) < 2:
        rows = [example_row(e, "sft") for e in examples]
        return rows, {"answers": len(groups), "balanced": False}
    per_answer = max(1, len(examples) // len(groups))
    chosen = _in_turn(list(groups.values()), per_answer * len(groups))
    rows = [example_row(e, "sft") for e in chosen]
    stats = {
        "answers": len(groups),
        "balanced": True,
        "per_answer": per_answer,
        "largest_share_before": round(max(before.values()) / len(examples), 3),
    }
    return rows, stats


def collapsed_kind_rows(examples: list[Example], share: float = KIND_SHARE) -> Rows:
    """Plain rows in which the questions answered by labels (answer_format's "Is 975 even?"
    among its comparisons) take `share` of the rows, their labels equally often.

    A kind of question that gets one label whatever it asks was not given enough of itself to
    learn: its rows are repeated, interleaved by label, and the other questions fill the rest,
    so the set keeps its size. A task without such a kind keeps its rows as they are.
    """
    labels = label_kind([example.answer for example in examples])
    by_label: dict[str, list[Example]] = {label: [] for label in sorted(labels)}
    others: list[Example] = []
    for example in examples:
        answer = normal_answer(example.answer)
        by_label.get(answer, others).append(example)
    if not labels or not others:
        rows = [example_row(e, "sft") for e in examples]
        return rows, {"kind_labels": sorted(labels), "reweighted": False}
    rows, stats = _kind_at_share(list(by_label.values()), others, share)
    return rows, {"kind_labels": sorted(labels), **stats}


def unlearned_kind_rows(
    examples: list[Example], kinds: frozenset[str], share: float = KIND_SHARE
) -> Rows:
    """Plain rows in which the unlearned kinds of question (unit_conversion's conversions by 60)
    take `share` of the rows, each kind in turn; the other questions fill the rest, so the set
    keeps its size. Without such kinds among the examples the rows stay as they are.

    Measured (benchmarks/kind_share.py --task unit_conversion --kind by_sixty): 240 steps of
    plain SFT with its conversions by 60 at 0.6 of the rows scored 0.69 on validation and 0.69
    on test; the same rows at their own share (0.32) scored 0.66 and 0.61.
    """
    by_kind: dict[str, list[Example]] = {kind: [] for kind in sorted(kinds)}
    others: list[Example] = []
    for example in examples:
        by_kind.get(question_kind(example.prompt), others).append(example)
    groups = [items for items in by_kind.values() if items]
    if not groups or not others:
        rows = [example_row(e, "sft") for e in examples]
        return rows, {"kinds": sorted(kinds), "reweighted": False}
    rows, stats = _kind_at_share(groups, others, share)
    return rows, {"kinds": sorted(kinds), **stats}


def _kind_at_share(groups: list[list[Example]], others: list[Example], share: float) -> Rows:
    """A kind's groups taken in turn up to `share` of the rows (repeated where they run out),
    the other questions filling the rest: the set keeps its size, and every stretch of training
    sees the kind at its share."""
    kind = sum(len(items) for items in groups)
    total = kind + len(others)
    wanted = max(kind, round(share * total))
    rest = others[: total - wanted]
    mixed = _spread(_in_turn(groups, wanted), rest)
    stats = {
        "reweighted": True,
        "kind_share_before": round(kind / total, 3),
        "kind_share": round(wanted / len(mixed), 3),
        "kind_distinct": kind,
        "other_rows_dropped": len(others) - len(rest),
    }
    return [example_row(e, "sft") for e in mixed], stats


def _in_turn(groups: list[list[Example]], count: int) -> list[Example]:
    """`count` examples taking each group in turn (a group's own repeated once it runs out), so
    no stretch of training sees one answer only."""
    taken = []
    for i in range(count):
        group = groups[i % len(groups)]
        taken.append(group[i // len(groups) % len(group)])
    return taken


def _spread(first: list[Example], second: list[Example]) -> list[Example]:
    """The two lists merged so each keeps its share of every stretch of the result."""
    placed = [((i + 0.5) / len(first), 0, e) for i, e in enumerate(first)]
    placed += [((j + 0.5) / len(second), 1, e) for j, e in enumerate(second)]
    return [example for _, _, example in sorted(placed, key=lambda item: item[:2])]

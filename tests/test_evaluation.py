"""Evaluation: scoring, error categories, real generation on a tiny model."""

import json
import math

import pytest

from postlab.records.outcomes import PairedComparison, binomial_stderr
from postlab.tools.evaluation.misses import categorize
from postlab.tools.evaluation.scoring import (
    EvaluationError,
    constant_answer,
    evaluate_checkpoint,
    score,
)
from postlab.tools.tasks.catalog import Example, load_task
from postlab.tools.tasks.folders import load_task_dir


def test_score_counts_strict_lenient_and_categories():
    task = load_task("addition_2d")
    examples = [Example(prompt=f"q{i}", answer=str(i)) for i in range(4)]
    completions = ["0", "The answer is 1.", "", "7"]
    result = score(task, examples, completions, "m")
    assert result.strict == 0.25
    assert result.lenient == 0.5
    assert result.error_categories == {"correct": 1, "format": 1, "empty": 1, "wrong": 1}
    assert [f.category for f in result.failures] == ["format", "empty", "wrong"]


def test_lost_carries_and_a_collapse_are_named():
    task = load_task("addition_2d")
    examples = [
        Example(prompt=f"q{i}", answer=str(a)) for i, a in enumerate([102, 55, 70, 81, 99, 64])
    ]
    # 28 + 74 answered 92: a lost carry is off by exactly a power of ten.
    assert categorize("92", False, False, "102") == "off_by_power_of_ten"
    assert categorize("103", False, False, "102") == "wrong"
    collapsed = score(task, examples, ["42"] * 5 + ["64"], "m")
    assert collapsed.collapse == round(5 / 6, 3)
    assert sum(collapsed.error_categories.values()) == 6
    varied = score(task, examples, ["92", "45", "80", "1", "2", "64"], "m")
    # Empty answers everywhere are "empty", not a collapse to a constant answer.
    assert varied.collapse == 0.0 and score(task, examples, [""] * 6, "m").collapse == 0.0
    assert varied.error_categories["off_by_power_of_ten"] == 3


def test_a_confusion_between_labels_is_named_on_classification_tasks():
    task = load_task("answer_format")
    labels = ["animal", "fruit", "tool"] * 4
    examples = [Example(prompt=f"q{i}", answer=a) for i, a in enumerate(labels)]
    completions = ["animal"] * 12
    result = score(task, examples, completions, "m")
    assert result.error_categories == {"correct": 4, "wrong_label": 8}
    assert result.collapse == 1.0
    # A perfect classifier gives each label as often as the split holds it: no collapse, and
    # neither is a skew that stays close to the split's own (7 of 12 "yes" where 6 are).
    binary = [Example(prompt=f"b{i}", answer=a) for i, a in enumerate(["yes", "no"] * 6)]
    assert score(task, binary, [e.answer for e in binary], "m").collapse == 0.0
    assert score(task, binary, ["yes"] * 7 + ["no"] * 5, "m").collapse == 0.0
    assert score(task, binary, ["yes"] * 10 + ["no"] * 2, "m").collapse == round(10 / 12, 3)
    # Free-form answers have no label set: another answer is merely wrong.
    numbers = [Example(prompt=f"q{i}", answer=str(i)) for i in range(6)]
    assert score(task, numbers, ["1"] * 6, "m").error_categories["wrong"] == 5


def test_one_label_for_every_question_of_a_kind_is_named_on_a_mixed_task():
    task = load_task("answer_format")
    numbers = [Example(prompt=f"Which is larger, {n} or 9?", answer=str(n)) for n in range(10, 34)]
    parity = [Example(prompt=f"Is {n} even?", answer=["yes", "no"][n % 2]) for n in range(12)]
    examples = numbers + parity
    # Right on every comparison, "yes" to every parity question: no split-wide collapse.
    said_yes = score(task, examples, [e.answer for e in numbers] + ["yes"] * 12, "m")
    assert said_yes.collapse == 0.0
    assert said_yes.error_categories == {"correct": 30, "label_collapse": 6}
    # A parity question missed now and then is a plain miss; so is a wrong comparison.
    mostly = [e.answer for e in parity]
    mostly[1] = "yes"
    some = score(task, examples, ["7"] + [e.answer for e in numbers[1:]] + mostly, "m")
    assert some.error_categories == {"correct": 34, "wrong": 2}


def test_a_kind_of_few_labels_answered_no_better_than_guessing_is_an_unlearned_kind():
    task = load_task("answer_format")
    numbers = [Example(prompt=f"Which is larger, {n} or 9?", answer=str(n)) for n in range(10, 50)]
    parity = [Example(prompt=f"Is {n} even?", answer=["yes", "no"][n % 2]) for n in range(20)]
    right = [e.answer for e in numbers]
    flipped = {"yes": "no", "no": "yes"}

    def parity_with(misses: int) -> list[str]:
        # Wrong on the first `misses`, each label given as often as the other: no kind collapse.
        return [flipped[e.answer] if i < misses else e.answer for i, e in enumerate(parity)]

    # 12 of 20 right where always "yes" gets 10: guessing, where every comparison is right.
    guessed = score(task, numbers + parity, right + parity_with(8), "m")
    assert guessed.unlearned_kinds == ["is # even?"]
    assert guessed.error_categories == {"correct": 52, "unlearned_kind": 8}
    # Right half as often as the rest would call it learned; 17 of 20 is past guessing.
    learned = score(task, numbers + parity, right + parity_with(3), "m")
    assert learned.unlearned_kinds == [] and learned.error_categories["wrong"] == 3
    # Guessing where the rest guesses as badly is the task being hard, not a kind left out.
    coin = [e.answer if i % 2 else "7" for i, e in enumerate(numbers)]
    hard = score(task, numbers + parity, coin + parity_with(8), "m")
    assert hard.unlearned_kinds == []


def test_wrong_answers_gathered_in_a_few_kinds_of_question_are_an_unlearned_kind():
    task = load_task("unit_conversion")
    metres = [Example(prompt=f"How many m are in {k} km?", answer=str(k * 1000)) for k in range(20)]
    minutes = [Example(prompt=f"How many min are in {k} h?", answer=str(k * 60)) for k in range(8)]
    seconds = [Example(prompt=f"How many s are in {k} min?", answer=str(k * 60)) for k in range(8)]
    examples = metres + minutes + seconds
    right = [e.answer for e in metres]
    # Every conversion by 1000 right, every conversion by 60 a few off (one a lost carry).
    by_sixty = [str(int(e.answer) + 7) for e in minutes + seconds]
    by_sixty[0] = str(int(minutes[0].answer) + 10)
    scored = score(task, examples, right + by_sixty, "m")
    assert scored.error_categories == {
        "correct": 20,
        "unlearned_kind": 15,
        "off_by_power_of_ten": 1,
    }
    assert scored.unlearned_kinds == ["how many min are in # h?", "how many s are in # min?"]
    # The same misses spread over every kind are plain misses.
    spread = right[:12] + ["1"] * 8 + [e.answer for e in minutes[:4]] + ["1"] * 4
    spread += [e.answer for e in seconds[:4]] + ["1"] * 4
    spread_out = score(task, examples, spread, "m")
    assert spread_out.error_categories == {"correct": 20, "wrong": 16}
    assert spread_out.unlearned_kinds == []
    # A kind too small to tell by is a plain miss; so is a task missed almost everywhere.
    few = score(task, metres + minutes[:4], right + ["1"] * 4, "m")
    assert few.error_categories == {"correct": 20, "wrong": 4}
    hard = score(task, metres[:6] + minutes + seconds, right[:6] + by_sixty, "m")
    assert "unlearned_kind" not in hard.error_categories


def test_categorize():
    assert categorize("5", True, True) == "correct"
    assert categorize("it is 5", False, True) == "format"
    assert categorize("  ", False, False) == "empty"
    assert categorize("6", False, False) == "wrong"


def test_list_misses_say_whether_the_items_or_their_order_went_wrong():
    # SmolLM2's sort_list misses: a one-digit number placed by its first digit.
    assert categorize("16, 2, 57, 60, 72", False, False, "2, 16, 57, 60, 72") == "misordered"
    assert categorize("10, 76, 82, 85, 76", False, False, "10, 76, 82, 85, 88") == "wrong_items"
    assert categorize("2, 16", False, False, "2, 16, 57") == "wrong_items"
    # A number with thousands commas is one answer, not a list of two.
    assert categorize("1,243", False, False, "1,234") == "wrong"
    assert categorize("1,334", False, False, "1,234") == "off_by_power_of_ten"


def test_evaluate_checkpoint_generates_on_the_held_out_split(tiny_model):
    task = load_task("addition_2d")
    seen = []
    result = evaluate_checkpoint(
        tiny_model, task, limit=6, batch_size=4, on_batch=lambda d, n: seen.append((d, n))
    )["validation"]
    assert result.n == 6
    assert 0.0 <= result.strict <= result.lenient <= 1.0
    assert seen == [(4, 6), (6, 6)]
    assert sum(result.error_categories.values()) == 6


def test_one_load_scores_each_split_on_its_own_items(tiny_model):
    task = load_task("addition_2d")
    results = evaluate_checkpoint(tiny_model, task, splits=("validation", "test"), limit=5)
    assert {split: r.n for split, r in results.items()} == {"validation": 5, "test": 5}
    valid = {ex.prompt for ex in task.validation_examples()[:5]}
    test = {ex.prompt for ex in task.test_examples()[:5]}
    assert valid.isdisjoint(test)
    for split, prompts in (("validation", valid), ("test", test)):
        result = results[split]
        # Each split's misses are its own items, every one it did not get right.
        assert set(result.missed_prompts) <= prompts
        correct = result.error_categories.get("correct", 0)
        assert len(set(result.missed_prompts)) == result.n - correct


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(EvaluationError, match="no config.json with weights"):
        evaluate_checkpoint(tmp_path, load_task("addition_2d"))


def test_a_split_balanced_by_label_gives_a_constant_answer_chance_credit():
    task = load_task("answer_format")
    answers = ["yes"] * 36 + ["no"] * 9
    examples = [Example(prompt=f"q{i}", answer=a) for i, a in enumerate(answers)]
    constant = ["yes"] * 45
    plain = score(task, examples, constant, "m")
    balanced = score(task, examples, constant, "m", balance_labels=True)
    # 80% of a skewed split, but half of what each label asks: chance for two labels.
    assert plain.strict == 0.8 and not plain.balanced_by_label
    assert balanced.strict == 0.5 and balanced.balanced_by_label
    # A model that tells the labels apart keeps its credit on every label.
    learned = ["yes"] * 32 + ["no"] * 4 + ["no"] * 8 + ["yes"]
    result = score(task, examples, learned, "m", balance_labels=True)
    assert abs(result.strict - (32 / 36 + 8 / 9) / 2) < 1e-9
    assert result.strict > balanced.strict
    # Perfect on three unequal labels is exactly 1 (weights that sum a hair past it would make
    # the standard error's square root fail).
    three = [
        Example(prompt=f"t{i}", answer=a) for i, a in enumerate(["a"] * 31 + ["b"] * 7 + ["c"] * 3)
    ]
    perfect = score(task, three, [e.answer for e in three], "m", balance_labels=True)
    assert perfect.strict == 1.0 and binomial_stderr(perfect.strict, perfect.n) == 0.0
    # "Yes." and "yes" are one label, as the label set reads them (a lenient match of "yes").
    spelled = [
        Example(prompt=e.prompt, answer="Yes." if i % 2 else e.answer)
        for i, e in enumerate(examples)
    ]
    assert score(task, spelled, constant, "m", balance_labels=True).lenient == 0.5
    # Free-form answers have no labels to balance: the plain share stays.
    numbers = [Example(prompt=f"n{i}", answer=str(i)) for i in range(10)]
    assert (
        score(
            task, numbers, [str(i) for i in range(5)] + ["x"] * 5, "m", balance_labels=True
        ).strict
        == 0.5
    )


def test_a_constant_answer_on_a_skewed_split_is_a_collapse():
    task = load_task("answer_format")
    skewed = [Example(prompt=f"q{i}", answer=a) for i, a in enumerate(["yes"] * 90 + ["no"] * 10)]
    # "yes" to all 100 where 10 need "no": no excess over 90% is possible, yet it is constant.
    assert score(task, skewed, ["yes"] * 100, "m").collapse == 1.0
    # A model that gets most of the ten right is not collapsed.
    assert score(task, skewed, ["yes"] * 92 + ["no"] * 8, "m").collapse == 0.0
    # Two items needing another answer are too few to tell a collapse from two misses.
    rare = [Example(prompt=f"r{i}", answer=a) for i, a in enumerate(["yes"] * 98 + ["no"] * 2)]
    assert score(task, rare, ["yes"] * 100, "m").collapse == 0.0


def _label_folder(folder, train, valid, test):
    """A task folder whose rows ask about numbers and answer with the labels given."""
    folder.mkdir()
    for start, (name, answers) in enumerate((("train", train), ("valid", valid), ("eval", test))):
        rows = [
            {"prompt": f"Is {1000 * start + i} big?", "answer": a} for i, a in enumerate(answers)
        ]
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (folder / "task.json").write_text(json.dumps({"name": folder.name, "metric": "exact"}))
    return load_task_dir(folder)


def test_one_answer_given_to_everything_is_scored_as_a_label_tasks_floor(tmp_path):
    # "Yes", "yes" and "yes." are one label: together the commonest, though "no" outnumbers each;
    # it is given as its commonest spelling, which a strict match compares.
    train = ["Yes"] * 12 + ["yes"] * 10 + ["yes."] * 8 + ["no"] * 14
    task = _label_folder(
        tmp_path / "big", train, ["Yes", "no"] * 4 + ["Yes"] * 2, ["Yes"] * 3 + ["no"] * 7
    )
    answers = [example.answer for example in task.train_examples(100, seed=0)]
    floor = constant_answer(task, answers)
    assert floor.answer == "Yes"
    assert (floor.validation, floor.validation_n, floor.test, floor.test_n) == (0.6, 10, 0.3, 10)
    # Weighted as the baseline is: on a balanced split one answer is chance for two labels.
    balanced = constant_answer(task, answers, balanced=("validation",), with_test=False)
    assert (balanced.validation, balanced.test) == (0.5, None)
    assert constant_answer(task, answers, limit=5).validation_n == 5
    # Validation asking for one label only: one answer would score 1.0, a floor nothing clears.
    one_label = _label_folder(tmp_path / "one", train, ["no"] * 5, ["Yes", "no"])
    assert constant_answer(one_label, answers) is None
    # Free-form answers are no label set: a constant there is no floor worth showing.
    numbers = _label_folder(tmp_path / "sums", [str(i) for i in range(40)], ["1", "2"], ["3"])
    assert constant_answer(numbers, [str(i) for i in range(40)]) is None


def test_a_paired_comparison_judges_two_runs_on_the_items_that_changed():
    items = [f"q{index}" for index in range(100)]
    # The reference misses the first 20; the challenger misses 10 of those and 2 others.
    reference_missed = items[:20]
    challenger_missed = items[10:20] + items[50:52]
    paired = PairedComparison.of(reference_missed, challenger_missed, 100)
    assert (paired.gained, paired.lost) == (10, 2)
    assert paired.difference == pytest.approx(0.08)
    # Paired: √(12 − 8²/100)/100 = 0.034, against 0.05 for the difference of two unpaired scores.
    assert paired.stderr == pytest.approx(math.sqrt(12 - 0.64) / 100)
    assert paired.verdict == "ahead"  # 10 − 2 − 1 > 1.645 × √12
    assert paired.describe() == "+0.08 ± 0.03: 10 gained, 2 lost (ahead)"
    # Swapped roles: the same items say the other is behind.
    assert PairedComparison.of(challenger_missed, reference_missed, 100).verdict == "behind"
    # Six gained and two lost is chance (6 − 2 − 1 ≤ 1.645 × √8), a gap of 0.04 or not.
    assert PairedComparison.of(items[:6], items[50:52], 100).verdict == "level"
    # A prompt asked twice is counted twice.
    twice = PairedComparison.of(["q0", "q0"], ["q0"], 2)
    assert (twice.gained, twice.lost) == (1, 0)


def test_paired_comparisons_pool_their_seeds():
    seeds = [
        PairedComparison(n=50, gained=4, lost=1),
        PairedComparison(n=50, gained=3, lost=0),
    ]
    pooled = PairedComparison.pooled(seeds)
    assert (pooled.n, pooled.gained, pooled.lost) == (100, 7, 1)
    # Neither seed alone is past chance; the two together are.
    assert [seed.verdict for seed in seeds] == ["level", "level"]
    assert pooled.verdict == "ahead"
    assert PairedComparison(n=0, gained=0, lost=0).difference == 0.0

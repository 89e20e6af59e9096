"""Rows made with the model: RFT keeps verified answers, pairs contrast right and wrong,
a curriculum orders by pass rate, targeted data follows validation misses, filters count."""

from __future__ import annotations

from postlab.tools.data.self_generated import (
    Sampled,
    curriculum_rows,
    preference_rows,
    quality_rows,
    rft_rows,
    sample_answers,
    targeted_rows,
)
from postlab.tools.data.training_sets import build_training_set, load_training_set
from postlab.tools.tasks.catalog import Example, load_task


def _sampled(prompt, answer, completions, task):
    example = Example(prompt=prompt, answer=answer)
    return Sampled(example, completions, [task.verify(c, answer).strict for c in completions])


def test_rft_keeps_verified_answers_and_rationalizes_the_rest():
    task = load_task("addition_2d")
    sampled = [
        _sampled("What is 1 + 1?", "2", ["2", "3", "2", " 2 "], task),
        _sampled("What is 2 + 2?", "4", ["5", "6", "7", "8"], task),
    ]
    rows, stats = rft_rows(sampled)
    answers = [row["completion"][0]["content"] for row in rows]
    # Duplicate correct samples count once; the prompt with none falls back to its reference.
    assert answers == ["2", "4"]
    assert stats["rows_from_samples"] == 1 and stats["rows_rationalized"] == 1
    assert stats["samples_correct"] == 3 and stats["samples_drawn"] == 8
    rows, stats = rft_rows(sampled, rationalize=False)
    assert len(rows) == 1 and stats["prompts_skipped"] == 1


def test_preference_pairs_reject_the_most_frequent_mistake():
    task = load_task("addition_2d")
    sampled = [
        _sampled("What is 5 + 5?", "10", ["11", "20", "20", "10"], task),
        _sampled("What is 6 + 6?", "12", ["13", "13", "14", "15"], task),
        _sampled("What is 7 + 7?", "14", ["14", "14", "14", "14"], task),
    ]
    rows, stats = preference_rows(sampled)
    pairs = [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows]
    assert pairs == [("10", "20"), ("12", "13")]
    assert stats["chosen_from_reference"] == 1 and stats["prompts_without_a_wrong_sample"] == 1


def test_curriculum_orders_easy_to_hard():
    task = load_task("addition_2d")
    sampled = [
        _sampled("hard", "100", ["1", "2"], task),
        _sampled("easy", "1", ["1", "1"], task),
        _sampled("middle", "22", ["22", "0"], task),
    ]
    rows, stats = curriculum_rows(sampled)
    assert [row["prompt"][0]["content"] for row in rows] == ["easy", "middle", "hard"]
    assert stats["pass_rate_first_third"] == 1.0 and stats["pass_rate_last_third"] == 0.0


def test_targeted_rows_repeat_the_examples_nearest_each_miss():
    examples = [
        Example(prompt="What is 58 + 67?", answer="125"),
        Example(prompt="Sort 3 1 2", answer="1 2 3"),
        Example(prompt="What is 11 + 12?", answer="23"),
    ]
    misses = [Example(prompt="What is 58 + 64?", answer="122")]
    rows, stats = targeted_rows(examples, misses, missed_now=[examples[1]])
    prompts = [row["prompt"][0]["content"] for row in rows]
    assert prompts.count("What is 58 + 67?") == 2 and prompts.count("Sort 3 1 2") == 2
    assert stats["driven_by"]["What is 58 + 67?"] == ["What is 58 + 64?"]
    assert stats["driven_by"]["Sort 3 1 2"] == ["missed by the current model"]


def test_quality_filter_drops_unverifiable_answers_and_near_copies():
    task = load_task("addition_2d")
    examples = [
        Example(prompt="What is 1 + 2? Reply with the number only.", answer="3"),
        Example(prompt="what is 1 + 2 ? reply with the number only", answer="3"),
        Example(prompt="What is 4 + 4? Reply with the number only.", answer="eight"),
    ]
    rows, stats = quality_rows(task, examples)
    assert len(rows) == 1
    assert stats == {"unverifiable_removed": 1, "near_copies_removed": 1}


def test_sampling_from_a_checkpoint_builds_a_saved_rft_set(tiny_model, tmp_path):
    task = load_task("addition_2d")

    def rows_from(examples):
        return rft_rows(sample_answers(task, examples, tiny_model, 2, 1.0, seed=0))

    card = build_training_set(
        task, "sft", 12, 0, tmp_path / "rft", rows_from=rows_from, recipe="rft"
    )
    assert card.recipe == "rft" and card.recipe_stats["samples_drawn"] == 24
    # A random tiny model is almost never right: most rows are rationalized references.
    assert card.final_size >= 12
    data = load_training_set(tmp_path / "rft")
    assert set(data.column_names) == {"prompt", "completion"}

"""Rows made with the model: RFT keeps verified answers, pairs contrast right and wrong,
a curriculum orders by pass rate, targeted data follows validation misses, filters count."""

from __future__ import annotations

from postlab.memory.embeddings import default_embedding_function
from postlab.memory.store import LabMemory
from postlab.tools.data.answer_balance import (
    balanced_rows,
    collapsed_kind_rows,
    unlearned_kind_rows,
)
from postlab.tools.data.self_generated import (
    NEAR_COPY_COSINE,
    Sampled,
    curriculum_rows,
    preference_rows,
    quality_rows,
    rft_rows,
    sample_answers,
    targeted_rows,
)
from postlab.tools.data.teacher import parse_proposal, teacher_rows
from postlab.tools.data.training_sets import (
    build_training_set,
    held_out_index,
    load_training_set,
)
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


def test_curriculum_goes_easy_to_hard_with_easy_rows_kept_in_the_mix():
    task = load_task("addition_2d")
    easy = [_sampled(f"easy {i}", "1", ["1", "1"], task) for i in range(30)]
    middle = [_sampled(f"middle {i}", "22", ["22", "0"], task) for i in range(30)]
    hard = [_sampled(f"hard {i}", "100", ["1", "2"], task) for i in range(30)]
    rows, stats = curriculum_rows(hard + middle + easy, seed=3)
    prompts = [row["prompt"][0]["content"] for row in rows]
    # Every row once, in an order that depends only on the seed.
    assert sorted(prompts) == sorted(s.example.prompt for s in hard + middle + easy)
    assert curriculum_rows(hard + middle + easy, seed=3)[0] == rows
    assert curriculum_rows(hard + middle + easy, seed=4)[0] != rows
    # Easy first on average, hard last: the model's own pass rate sets the order...
    assert stats["pass_rate_first_third"] > 0.8 and stats["pass_rate_last_third"] < 0.4
    assert all(p.startswith("easy") for p in prompts[:5])
    assert all(not p.startswith("hard") for p in prompts[:30])
    # ...yet easy rows are still drawn in the last third (competence-based sampling), where a
    # strict sort would train the kinds one after another.
    assert any(p.startswith("easy") for p in prompts[60:])


def test_targeted_rows_repeat_the_examples_nearest_each_miss():
    examples = [
        Example(prompt="What is 58 + 67?", answer="125"),
        Example(prompt="Sort 3 1 2", answer="1 2 3"),
        Example(prompt="What is 11 + 12?", answer="23"),
        *(Example(prompt=f"Spell {word}", answer=word) for word in "abcdefg"),
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
        Example(prompt="What is 5 + 6? Reply with the number only.", answer="11"),
        Example(prompt="What is 9 + 9? Reply with the number only.", answer="1" * 40),
    ]
    rows, stats = quality_rows(task, examples)
    assert [row["prompt"][0]["content"][:12] for row in rows] == ["What is 1 + ", "What is 5 + "]
    assert stats == {
        "unverifiable_removed": 1,
        "length_outliers_removed": 1,
        "near_copies_removed": 1,
        "near_copy_measure": "word overlap",
    }


def test_quality_filter_finds_paraphrases_by_embedding(tmp_path):
    task = load_task("addition_2d")
    memory = LabMemory(tmp_path / "memory", embedding_function=default_embedding_function())
    examples = [
        Example(prompt="How many legs does a spider have?", answer="8"),
        Example(prompt="A spider has how many legs?", answer="8"),
        Example(prompt="How many moons does Mars have?", answer="2"),
    ]
    rows, stats = quality_rows(task, examples, memory.embed)
    assert [row["prompt"][0]["content"] for row in rows] == [
        "How many legs does a spider have?",
        "How many moons does Mars have?",
    ]
    assert stats["near_copies_removed"] == 1 and stats["near_copy_measure"] == "embedding cosine"


def test_alike_prompts_with_other_answers_are_not_near_copies(tmp_path):
    # A templated folder's rows differ in a name and a number: each teaches its own answer.
    task = load_task("addition_2d")
    memory = LabMemory(tmp_path / "memory", embedding_function=default_embedding_function())
    template = (
        "Read the sentence and reply with the person's age as a number: {} is {} years old. "
        "Use digits only, no words."
    )
    people = (("Alice", 31), ("Bob", 45), ("Alice", 31), ("Alice", 32))
    examples = [
        Example(prompt=template.format(*person), answer=str(person[1])) for person in people
    ]
    vectors = memory.embed([example.prompt for example in examples])
    # Alice at 31 and at 32 are alike (by word overlap too); only the repeated row is a copy.
    assert float(vectors[0] @ vectors[3]) >= NEAR_COPY_COSINE
    for embed in (memory.embed, None):
        rows, stats = quality_rows(task, examples, embed)
        assert [row["completion"][0]["content"] for row in rows] == ["31", "45", "32"]
        assert stats["near_copies_removed"] == 1


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


def test_targeted_rows_follow_the_nearness_they_are_given():
    examples = [Example(prompt=f"q{i}", answer=str(i)) for i in range(8)]
    misses = [Example(prompt="miss", answer="0")]

    def last_two(queries, candidates, k):
        return [list(range(len(candidates)))[-k:] for _ in queries]

    rows, stats = targeted_rows(examples, misses, nearest=last_two)
    prompts = [row["prompt"][0]["content"] for row in rows]
    assert [prompts.count(f"q{i}") for i in range(8)] == [1, 1, 1, 1, 1, 1, 2, 2]
    assert stats["driven_by"] == {"q6": ["miss"], "q7": ["miss"]}


def test_targeted_copies_are_capped_and_the_best_evidenced_rows_go_first():
    examples = [Example(prompt=f"q{i}", answer=str(i)) for i in range(20)]
    misses = [Example(prompt="miss a", answer="0"), Example(prompt="miss b", answer="0")]

    def given(queries, candidates, k):
        return [[3, 15], [15, 16]]

    # The model misses 12 of its 20 training rows itself; the evidence names 14 rows in all.
    rows, stats = targeted_rows(examples, misses, missed_now=examples[:12], nearest=given)
    prompts = [row["prompt"][0]["content"] for row in rows]
    repeated = {example.prompt for example in examples if prompts.count(example.prompt) == 2}
    # A quarter of the fresh rows at most: 5 copies, not 14.
    assert len(rows) == 25 and stats["rows_repeated"] == 5
    assert stats["rows_not_repeated_by_the_cap"] == 9
    # Rows two pieces of evidence name, then rows near a validation miss, then the first rows
    # the model missed.
    assert repeated == {"q15", "q3", "q16", "q0", "q1"}
    assert stats["driven_by"]["q3"] == ["missed by the current model", "miss a"]


def test_a_teacher_proposal_is_parsed_from_its_question_and_answer_lines():
    parsed = parse_proposal("Sure!\nQuestion: What is 3 + 4?\nAnswer: 7\nExample 6 ...")
    assert parsed == Example(prompt="What is 3 + 4?", answer="7")
    assert parse_proposal("What is 3 + 4? It is 7.") is None


def test_teacher_rows_keep_only_new_verified_self_consistent_questions():
    task = load_task("addition_2d")
    seeds = [Example(prompt=f"What is {i} + 1?", answer=str(i + 1)) for i in range(10, 14)]
    held_out = held_out_index(task)
    test_prompt = task.test_examples()[0]
    proposals = [
        "Question: What is 20 + 22?\nAnswer: 42",  # right, and the teacher agrees: kept
        "Question: What is 30 + 31?\nAnswer: 99",  # the teacher does not agree with itself
        "Question: What is 10 + 1?\nAnswer: 11",  # a seed again
        f"Question: {test_prompt.prompt}\nAnswer: {test_prompt.answer}",  # a test question
        "Question: What is 5 + 5?\nAnswer: ten",  # not a number
        "I cannot think of one.",
    ]
    calls = []

    def generate(prompts, samples, temperature, seed, max_new_tokens):
        calls.append((len(prompts), samples))
        if len(calls) == 1:
            assert all("Question: What is 1" in prompt for prompt in prompts)
            return [[proposals[i % len(proposals)]] for i in range(len(prompts))]
        return [["42", "42", "41"] if "20 + 22" in p else ["61", "61", "99"] for p in prompts]

    rows, stats = teacher_rows(task, seeds, generate, 6, 0, held_out.contaminates)
    prompts = [row["prompt"][0]["content"] for row in rows]
    assert prompts[:4] == [seed.prompt for seed in seeds]
    assert prompts[4:] == ["What is 20 + 22?"]
    assert stats["kept"] == 1 and stats["disagreed"] == 1 and stats["duplicates"] == 1
    assert stats["contaminated"] == 1 and stats["bad_form"] == 1 and stats["unparsed"] == 1
    assert calls == [(6, 1), (2, 3)]


def test_balanced_rows_give_every_answer_equal_weight_and_leave_unique_answers_alone():
    skewed = [Example(prompt=f"review {i}", answer="positive") for i in range(16)]
    skewed += [Example(prompt=f"review {i}", answer="negative") for i in range(16, 20)]
    skewed += [Example(prompt=f"review {i}", answer="neutral") for i in range(20, 22)]
    rows, stats = balanced_rows(skewed)
    answers = [row["completion"][0]["content"] for row in rows]
    assert stats["balanced"] and stats["largest_share_before"] == round(16 / 22, 3)
    assert {answers.count(a) for a in ("positive", "negative", "neutral")} == {7}
    # Interleaved: no two neighbouring rows share an answer.
    assert all(a != b for a, b in zip(answers, answers[1:], strict=False))
    sums = [Example(prompt=f"{i} + 1", answer=str(i + 1)) for i in range(10)]
    rows, stats = balanced_rows(sums)
    assert not stats["balanced"] and len(rows) == 10


def test_a_collapsed_kind_of_question_takes_its_share_of_the_rows_labels_equal():
    task = load_task("answer_format")
    examples = task.train_examples(300, seed=3)
    parity = [e for e in examples if "even?" in e.prompt]
    rows, stats = collapsed_kind_rows(examples, share=0.6)
    asked = [row["prompt"][0]["content"] for row in rows]
    said = [row["completion"][0]["content"] for row in rows]
    kind = ["even?" in prompt for prompt in asked]
    assert len(rows) == len(examples) and sum(kind) == 180
    assert stats["kind_labels"] == ["no", "yes"] and stats["kind_distinct"] == len(parity)
    assert stats["kind_share_before"] == round(len(parity) / 300, 3) and stats["kind_share"] == 0.6
    # Its labels equally often; every parity question it had is among them.
    assert sum(s == "yes" for s, k in zip(said, kind, strict=True) if k) == 90
    assert {e.prompt for e in parity} <= set(asked)
    # Spread through the set: every tenth of the rows holds the kind at its share.
    assert all(sum(kind[i : i + 30]) == 18 for i in range(0, 300, 30))
    # The other questions fill the rest unchanged, in their order.
    others = [e.prompt for e in examples if "even?" not in e.prompt]
    assert [p for p, k in zip(asked, kind, strict=True) if not k] == others[:120]
    # A task without a kind of question answered by labels keeps its rows as they are.
    sums = load_task("addition_2d").train_examples(50, seed=3)
    rows, stats = collapsed_kind_rows(sums)
    assert not stats["reweighted"] and len(rows) == 50
    assert [row["prompt"][0]["content"] for row in rows] == [e.prompt for e in sums]


def test_unlearned_kinds_of_question_take_their_share_of_the_rows():
    from postlab.tools.evaluation.misses import question_kind

    task = load_task("unit_conversion")
    examples = task.train_examples(300, seed=3)
    kinds = frozenset(question_kind(e.prompt) for e in examples if " min" in e.prompt)
    assert len(kinds) == 4  # h/min and min/s, each both ways
    rows, stats = unlearned_kind_rows(examples, kinds, share=0.6)
    asked = [row["prompt"][0]["content"] for row in rows]
    in_kind = [question_kind(prompt) in kinds for prompt in asked]
    distinct = sum(" min" in e.prompt for e in examples)
    assert len(rows) == 300 and sum(in_kind) == 180
    assert stats["reweighted"] and stats["kinds"] == sorted(kinds)
    assert stats["kind_distinct"] == distinct and stats["kind_share"] == 0.6
    assert stats["other_rows_dropped"] == 300 - distinct - 120
    # Every question of those kinds is among the rows, each kind in turn.
    assert {e.prompt for e in examples if " min" in e.prompt} <= set(asked)
    assert all(sum(in_kind[i : i + 30]) == 18 for i in range(0, 300, 30))
    # The rows keep their answers: a row is the example it came from.
    answers = {e.prompt: e.answer for e in examples}
    pairs = [(row["prompt"][0]["content"], row["completion"][0]["content"]) for row in rows]
    assert all(answers[prompt] == answer for prompt, answer in pairs)
    # Kinds the examples do not hold leave the rows as they are.
    rows, stats = unlearned_kind_rows(examples, frozenset({"what is # + #?"}))
    assert not stats["reweighted"] and [r["prompt"][0]["content"] for r in rows] == [
        e.prompt for e in examples
    ]


def test_the_data_engineer_aims_at_the_kinds_the_best_s_evaluation_named(tmp_path):
    from postlab.agents.data_engineer import row_builder
    from postlab.records.hyper import Hyper
    from postlab.records.outcomes import BestModel, EvaluationRecord
    from postlab.records.run import RunOptions
    from postlab.records.steps import Plan
    from postlab.tools.evaluation.scoring import score

    task = load_task("unit_conversion")
    # The best answered every validation conversion by 60 wrong and every other one right.
    validation = task.validation_examples()
    said = ["1" if " min" in e.prompt else e.answer for e in validation]
    scored = score(task, validation, said, "ckpt-1")
    record = EvaluationRecord(
        label="iter-1",
        iteration=1,
        checkpoint="ckpt-1",
        strict=scored.strict,
        lenient=scored.lenient,
        n=scored.n,
        error_categories=scored.error_categories,
        unlearned_kinds=scored.unlearned_kinds,
    )
    plan = Plan(
        iteration=2,
        technique="sft_full",
        method="sft",
        init_checkpoint="ckpt-1",
        hyper=Hyper(adapter="full", learning_rate=1e-4, max_steps=40, batch_size=8),
        data_format="sft",
        data_size=200,
        data_seed=2,
        data_recipe="unlearned_kind",
        reason="r",
    )
    best = BestModel(checkpoint="ckpt-1", strict=0.6, lenient=0.6, label="iter-1", iteration=1)
    state = {
        "plan": plan,
        "best": best,
        "evaluations": [record],
        "run_options": RunOptions(),
        "run_dir": str(tmp_path),
    }
    memory = LabMemory(tmp_path / "memory", embedding_function=default_embedding_function())
    rows, stats = row_builder(state, memory, task)(task.train_examples(200, seed=5))
    assert stats["reweighted"] and stats["kinds"] == scored.unlearned_kinds
    assert len(stats["kinds"]) == 4 and all(" min" in kind for kind in stats["kinds"])
    assert stats["kind_share"] == 0.6
    assert sum(" min" in row["prompt"][0]["content"] for row in rows) == 120
    # A best whose evaluation named no such kind leaves the rows as they are.
    record.unlearned_kinds = []
    rows, stats = row_builder(state, memory, task)(task.train_examples(200, seed=5))
    assert not stats["reweighted"]


def test_a_training_prior_is_a_shift_only_when_validation_differs():
    from postlab.tools.data.answer_balance import answer_shift

    skewed = ["yes"] * 9 + ["no"]
    shift = answer_shift(skewed * 10, ["yes", "no"] * 10)
    assert shift is not None and (shift.answer, shift.train_share) == ("yes", 0.9)
    assert shift.validation_share == 0.5
    # The same skew in validation is the task's own prior, not a shift...
    assert answer_shift(skewed * 10, skewed * 4) is None
    # ...unless validation was lent from the training file: then it is no evidence of test's.
    lent = answer_shift(skewed * 10, skewed * 4, validation_lent=True)
    assert lent is not None and lent.prior_unknown and lent.validation_share == 0.9
    assert not shift.prior_unknown
    # A mild skew (0.6 against 0.5) is not worth changing the data for.
    assert answer_shift((["yes"] * 6 + ["no"] * 4) * 5, ["yes", "no"] * 10) is None
    # Free-form answers have no label to over-represent.
    assert answer_shift([str(n) for n in range(40)], [str(n) for n in range(20)]) is None

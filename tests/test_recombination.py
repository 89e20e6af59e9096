"""Recombined rows: a folder's answers that copy words of their prompts make new right rows."""

from __future__ import annotations

import json
import re

from postlab.agents import data_engineer
from postlab.memory.store import open_memory
from postlab.records.hyper import Hyper
from postlab.records.run import RunOptions
from postlab.records.steps import Directive, Plan
from postlab.tools.data.recombination import copy_rules, recombined_rows
from postlab.tools.data.training_sets import load_training_set
from postlab.tools.tasks.catalog import Example

PHRASES = ["hot soup", "big city", "old friend", "cold water", "red door", "green tree"]
SHOUTS = ["Write '{}' in capital letters.", "Shout this: '{}'.", "Rewrite in upper case: {}."]


def _shout_rows() -> list[Example]:
    return [Example(prompt=t.format(p), answer=p.upper()) for p in PHRASES for t in SHOUTS]


def _edit_rows() -> list[Example]:
    rows = []
    for phrase in PHRASES:
        words = phrase.split()
        rows.append(Example(prompt=f"First word of '{phrase}'?", answer=words[0]))
        rows.append(Example(prompt=f"Reverse '{phrase}'.", answer=" ".join(reversed(words))))
    return rows


def _quoted(prompt: str) -> str:
    match = re.search(r"'([^']+)'|: ([a-z ]+)\.", prompt)
    return match.group(1) or match.group(2)


def _content(rows):
    return [(row["prompt"][0]["content"], row["completion"][0]["content"]) for row in rows]


def test_rows_that_copy_their_prompts_by_a_shared_rule_make_new_right_rows():
    rules = copy_rules(_shout_rows())
    # Each wording is one rule over the six phrases; the wording itself is never a slot.
    assert rules.rules == 3 and len(rules.rows) == 18
    assert "write" not in rules.words and {"hot", "soup", "city"} <= set(rules.words)
    rows, stats = recombined_rows(
        _shout_rows(), 60, lambda: ["lamp", "velvet", "harbor"], 0, lambda e: False
    )
    assert len(rows) == 60 and stats["recombined"] == 42 and stats["rules"] == 3
    new = _content(rows)[18:]
    # Every new row is right by the rule its source followed, and none repeats a prompt.
    assert all(answer == _quoted(prompt).upper() for prompt, answer in new)
    assert len({prompt for prompt, _ in _content(rows)}) == 60
    # Words from outside the folder are drawn as well as its own.
    assert any(word in prompt for prompt, _ in new for word in ("lamp", "velvet", "harbor"))
    # The same seed makes the same rows.
    assert rows == recombined_rows(_shout_rows(), 60, lambda: ["lamp", "velvet", "harbor"], 0,
                                   lambda e: False)[0]  # fmt: skip


def test_each_rule_keeps_its_own_copy_order():
    rows, _ = recombined_rows(
        _edit_rows(), 40, lambda: ["lamp", "velvet", "harbor"], 1, lambda e: False
    )
    for prompt, answer in _content(rows)[12:]:
        words = _quoted(prompt).split()
        expected = words[0] if prompt.startswith("First") else " ".join(reversed(words))
        assert answer == expected, prompt


def test_no_rule_holds_where_the_copied_word_depends_on_the_words():
    # Which option is copied changes with the options: swapping them would write wrong rows.
    pairs = [("cat", "horse"), ("whale", "mouse"), ("ant", "dog"), ("bull", "bee")]
    larger = [
        Example(prompt=f"Which is larger, {a} or {b}?", answer=max(a, b, key=len)) for a, b in pairs
    ]
    # An answer that is a label, not a copy, has no slot at all.
    labels = [Example(prompt=f"Is '{w}' an animal or a tool?", answer="animal") for w in PHRASES]
    # Three rows of a two-way choice that happen to copy their first option are no rule either.
    chance = [
        Example(prompt=f"Which is larger, {a} or {b}?", answer=a)
        for a, b in (("whale", "mouse"), ("horse", "ant"), ("mouse", "ant"))
    ]
    # Rows that repeat their words agree by coincidence, not by a rule.
    parity = [
        Example(prompt=f"Is {n} even? Reply with yes or no.", answer="no" if n % 2 else "yes")
        for n in (512, 512, 257, 257)
    ]
    for examples in (larger, chance, labels, parity):
        assert copy_rules(examples).rows == []
        rows, stats = recombined_rows(examples, 50, lambda: ["lamp"], 0, lambda e: False)
        assert len(rows) == len(examples) and stats["recombined"] == 0


def test_one_letter_words_keep_their_place_and_a_folder_mostly_off_its_rules_is_left_alone():
    # "a" shows no case of its own: as a slot, its "A" in an answer in capitals would be read as
    # a capitalised word, and a substitute would come out "Lamp DOOR".
    # Forty two-word phrases, each word in two of them; "a" then comes with 4 of 44 answers,
    # too few to be the task's wording.
    firsts = [f"{letter}am" for letter in "bcdfghjklmnprstvwxyz"]
    seconds = [f"{letter}op" for letter in "bcdfghjklmnprstvwxyz"]
    shifted = seconds[1:] + seconds[:1]
    pairs = [*zip(firsts, seconds, strict=True), *zip(firsts, shifted, strict=True)]
    phrases = [f"{a} {b}" for a, b in pairs] + [f"a {b}" for b in ("lamp", "rope", "coin", "desk")]
    rows = [Example(prompt=SHOUTS[0].format(p), answer=p.upper()) for p in phrases]
    assert "a" not in copy_rules(rows).words
    made, _ = recombined_rows(rows, 200, lambda: ["lamp", "velvet", "harbor"], 0, lambda e: False)
    assert len(made) == 200 and any(p.startswith("Write 'a ") for p, _ in _content(made)[44:])
    assert all(answer == _quoted(prompt).upper() for prompt, answer in _content(made))
    # Six rule rows among fourteen that follow none: the folder is some other task.
    labels = [Example(prompt=f"Is {n} prime? Say yes or no.", answer="no") for n in range(14)]
    mixed = [*(row for row in _shout_rows() if row.prompt.startswith("Write")), *labels]
    assert len(copy_rules(mixed).rows) == 6
    made, stats = recombined_rows(mixed, 40, lambda: ["lamp"], 0, lambda e: False)
    assert len(made) == len(mixed) and stats["recombined"] == 0


def test_recombined_rows_are_decontaminated_against_held_out_items():
    def leaks(example: Example) -> bool:
        return "lamp" in example.prompt

    rows, stats = recombined_rows(_shout_rows(), 60, lambda: ["lamp", "velvet", "harbor"], 0, leaks)
    assert stats["contaminated"] > 0
    assert not any("lamp" in prompt for prompt, _ in _content(rows))


def _write_rows(path, examples):
    path.write_text("".join(json.dumps(e.model_dump()) + "\n" for e in examples))


def test_the_data_engineer_counts_rule_rows_and_recombines_with_the_models_words(
    tmp_path, tiny_model
):
    folder = tmp_path / "shout"
    folder.mkdir()
    _write_rows(folder / "train.jsonl", _shout_rows())
    held_out = [Example(prompt=t.format("blue sky"), answer="BLUE SKY") for t in SHOUTS]
    _write_rows(folder / "valid.jsonl", held_out[:2])
    _write_rows(folder / "eval.jsonl", held_out[2:])
    plan = Plan(
        iteration=1, technique="sft_full", method="sft", init_checkpoint=str(tiny_model),
        hyper=Hyper(learning_rate=2e-5, max_steps=10, batch_size=6), data_format="sft",
        data_size=60, data_seed=1, reason="r",
    )  # fmt: skip
    state = {
        "run_dir": str(tmp_path / "run"),
        "task_dir": str(folder),
        "run_options": RunOptions(),
        "trajectory": [],
        "plan": plan,
    }
    directive = Directive(agent="data_engineer", action="build_dataset", reason="r")
    memory = open_memory(tmp_path / "memory")
    card = data_engineer.build_dataset(state, directive, memory).update["datasets"][0]
    # Plain rows: all 18 the folder holds, each following one of its three rules.
    assert (card.final_size, card.requested, card.recipe_stats["rule_rows"]) == (18, 60, 18)
    state["plan"] = plan.model_copy(update={"iteration": 2, "data_recipe": "recombined"})
    card = data_engineer.build_dataset(state, directive, memory).update["datasets"][0]
    assert card.final_size == 60 and card.recipe_stats["recombined"] == 42
    # The model's tokenizer lends thousands of words beyond the folder's twelve.
    assert card.recipe_stats["substitute_words"] > 1000
    rows = _content(load_training_set(card.path))
    assert all(answer == _quoted(prompt).upper() for prompt, answer in rows)

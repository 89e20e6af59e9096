"""Recall tasks train on the rows the base model knows: the survey, the evidence, the data."""

import json
from pathlib import Path

import pytest
from test_policy import _NoMemory, base_state, evaluation, finding, sft_plan

from postlab.agents import data_engineer
from postlab.graph.known_rows import KNOWN_MIN_SHARE, known_facts
from postlab.graph.playbook import decide
from postlab.graph.refinements import refine
from postlab.records.outcomes import FolderSurvey
from postlab.tools.data import known_rows as known_module
from postlab.tools.data.known_rows import known_rows, recall_rows, recall_task
from postlab.tools.data.training_sets import usable_examples
from postlab.tools.evaluation.misses import categorize
from postlab.tools.tasks.catalog import Example, load_task
from postlab.tools.tasks.verifiers import contains_answer

CAPITALS = {
    "France": "Paris",
    "Austria": "Vienna",
    "Japan": "Tokyo",
    "Peru": "Lima",
    "Kenya": "Nairobi",
    "Chile": "Santiago",
    "Egypt": "Cairo",
    "Spain": "Madrid",
    "Italy": "Rome",
    "Cuba": "Havana",
    "Nepal": "Kathmandu",
    "Iran": "Tehran",
}


def capital_rows(countries) -> list[Example]:
    return [
        Example(
            prompt=f"What is the capital of {c}? Answer with the city only.", answer=CAPITALS[c]
        )
        for c in countries
    ]


def test_an_answer_inside_a_longer_reply_is_contained_as_a_whole_phrase():
    assert contains_answer("The capital of Austria is Vienna.", "Vienna")
    assert contains_answer("phnom penh, of course", "Phnom Penh")
    # A word that merely starts like the answer is not it ("Tunis" in "Tunisia").
    assert not contains_answer("Tunisia is in Africa.", "Tunis")
    assert not contains_answer("Viennas", "Vienna")
    assert not contains_answer("anything", "")


def test_a_buried_answer_is_its_own_miss_category_for_words_not_numbers():
    assert categorize("The capital of Austria is Vienna.", False, False, "Vienna") == "buried"
    assert categorize("Budapest", False, False, "Vienna") == "wrong"
    # Numbers keep their categories: "is 112, not 102" holds the answer by chance.
    assert categorize("It is 112, not 102", False, False, "102") == "wrong"
    # A label task's reply naming the label and another one knows neither.
    labels = frozenset({"animal", "fruit", "tool"})
    assert categorize("an animal, not a tool", False, False, "animal", labels) == "wrong"
    assert categorize("It is an animal.", False, False, "animal", labels) == "buried"


def test_recall_rows_ask_for_facts_in_words():
    rows = capital_rows(CAPITALS)
    assert recall_rows(rows) == len(rows) and recall_task(recall_rows(rows), len(rows))
    sums = [Example(prompt=f"What is {a} + 1?", answer=str(a + 1)) for a in range(12)]
    assert recall_rows(sums) == 0
    # Answers copied from the prompt are an edit, not a fact.
    shout = [Example(prompt=f"Write '{w}' in capitals.", answer=w.upper()) for w in CAPITALS]
    assert recall_rows(shout) == 0
    # Three labels for twelve rows: a classification, not recall.
    labels = [
        Example(prompt=f"Is {w} an animal, a fruit or a tool?", answer=("animal", "fruit")[i % 2])
        for i, w in enumerate(CAPITALS)
    ]
    assert recall_rows(labels) == 0
    assert not recall_task(5, 12) and recall_task(6, 12) and not recall_task(0, 0)


def test_known_rows_keep_the_answers_a_greedy_or_sampled_reply_gives(monkeypatch):
    rows = capital_rows(["France", "Austria", "Japan", "Peru"])
    replies = {
        # Greedy replies, then four samples each.
        1: ["The capital of France is Paris.", "Vienna", "Osaka", "I do not know"],
        4: [
            ["Paris"] * 4,
            ["Budapest"] * 4,
            ["Kyoto", "It is Tokyo", "Kyoto", "Kyoto"],
            ["Quito"] * 4,
        ],
    }

    def scripted(
        model_path, prompts, max_new_tokens, *, samples=1, temperature=None, seed=0, on_batch=None
    ):
        assert len(prompts) == len(rows)
        answers = replies[samples]
        for done in (2, 4):  # two batches of two prompts
            on_batch(done, len(prompts))
        return [[a] if samples == 1 else a for a in answers]

    monkeypatch.setattr(known_module, "completions_from", scripted)
    heard = []
    found = known_rows(rows, "model", on_progress=lambda done, total: heard.append((done, total)))
    assert [example.answer for example in found.known] == ["Paris", "Vienna", "Tokyo"]
    counts = found.stats()
    assert counts.pop("sampling_seconds") > 0
    assert counts == {"known_rows": 3, "rows_asked_of_the_base_model": 4}
    # Replies, not prompts: four greedy, then sixteen samples, so the bar moves evenly.
    assert heard == [(2, 20), (4, 20), (12, 20), (20, 20)]


def surveyed(tmp_path: Path, recall: int, rows: int, **baseline_categories) -> dict:
    survey = FolderSurvey(rows=rows, surveyed_rows=rows, recall_rows=recall)
    baseline = evaluation(0, 0.0, **baseline_categories)
    return base_state(
        tmp_path, task_dir=str(tmp_path), folder_survey=survey, evaluations=[baseline]
    )


def test_the_evidence_needs_a_recall_folder_and_a_base_model_that_knows_answers(tmp_path):
    knows = int(KNOWN_MIN_SHARE * 100)
    facts = known_facts(surveyed(tmp_path, 132, 132, buried=knows - 2, format=1, wrong=50))
    assert facts is None  # 19 of 100 given: too few to keep
    facts = known_facts(surveyed(tmp_path, 132, 132, buried=knows - 1, format=1, wrong=50))
    assert facts is not None and (facts.given, facts.items) == (knows, 100)
    assert "the base model already gives 20 of 100 validation answers" in facts.describe()
    assert "2405.05904" in facts.describe()
    # The same replies on a folder of sums (no recall rows) say nothing of facts.
    assert known_facts(surveyed(tmp_path, 0, 132, buried=60)) is None
    # A run prepared without a survey (a bundled task) has no such evidence.
    state = surveyed(tmp_path, 132, 132, buried=60)
    state["folder_survey"] = None
    assert known_facts(state) is None


def _opening(state: dict):
    state.update(
        baseline=state["evaluations"][0],
        findings=[finding("sft_full"), finding("sft_lora")],
        answer_shift=None,
    )
    return decide(state, 3, None)[1]


def test_every_plan_of_a_run_on_known_facts_trains_only_on_them(tmp_path):
    plain = _opening(surveyed(tmp_path, 132, 132, wrong=100))
    assert not plain.known_only and "2405.05904" not in plain.reason
    state = surveyed(tmp_path, 132, 132, buried=40, wrong=60)
    opening = _opening(state)
    assert opening.known_only and opening.data_recipe == "plain"
    assert "every stretch trains only on the rows whose answers it gives" in opening.reason
    # Each stretch reads the rows once (132 rows in batches of 8), not the run's 40 steps.
    assert plain.hyper.max_steps == 40 and opening.hyper.max_steps == 17
    assert "17 steps a stretch, one pass over its 132 rows" in opening.reason
    # Not only the opening: a switch to another technique keeps to the known rows too.
    state["plan"] = opening.model_copy(update={"status": "failed"})
    switched, move = refine(state, state["plan"])
    assert move == "switch" and switched.technique == "sft_lora" and switched.known_only


def _capitals_folder(folder: Path) -> Path:
    folder.mkdir(parents=True)
    countries = list(CAPITALS)
    rows = capital_rows(countries[:10])
    (folder / "train.jsonl").write_text("\n".join(r.model_dump_json() for r in rows) + "\n")
    test = [r.model_dump_json() for r in capital_rows(countries[10:])]
    (folder / "eval.jsonl").write_text("\n".join(test) + "\n")
    (folder / "valid.jsonl").write_text("\n".join(test) + "\n")
    meta = {"name": "capitals", "metric": "exact", "description": "capitals"}
    (folder / "task.json").write_text(json.dumps(meta))
    return folder


@pytest.mark.parametrize("known_count", [9, 3])
def test_the_data_engineer_builds_from_known_rows_once_per_run(tmp_path, monkeypatch, known_count):
    folder = _capitals_folder(tmp_path / "capitals")
    calls = []

    def scripted_known(examples, model_path, seed=0, on_progress=None):
        calls.append(len(examples))
        return known_module.KnownRows(list(examples)[:known_count], len(examples), 2.5)

    monkeypatch.setattr(known_module, "known_rows", scripted_known)
    # A folder of ten rows: four known rows are enough to train on here, three are not.
    monkeypatch.setattr(data_engineer, "MIN_KNOWN_ROWS", 4)
    state = base_state(tmp_path, task_dir=str(folder), task="capitals")
    task = load_task(None, folder)
    for iteration in (1, 2):
        plan = sft_plan(iteration, status="needs_data", known_only=True, data_size=16)
        state["plan"] = plan.model_copy(update={"data_seed": iteration})
        result = data_engineer.build_dataset(state, None, _NoMemory())
        card = result.update["datasets"][0]
        if known_count >= 4:
            assert card.final_size == known_count
            assert card.recipe_stats["known_rows"] == known_count
        else:
            # Too few known rows to train on: every row, and the card says why.
            assert card.final_size == len(task.train_examples(100, 0))
            assert card.recipe_stats["known_rows"] == known_count
        # The card counts the seconds spent asking, once: the second stretch reads them back.
        assert card.recipe_stats.get("sampling_seconds") == (2.5 if iteration == 1 else None)
    assert calls == [10]  # asked of the base model once, then read back from the run folder


def test_the_rows_asked_are_those_the_survey_read(tmp_path, monkeypatch):
    folder = _capitals_folder(tmp_path / "capitals")
    asked = []

    def scripted_known(examples, model_path, seed=0, on_progress=None):
        asked.append([example.answer for example in examples])
        return known_module.KnownRows(list(examples), len(examples))

    monkeypatch.setattr(known_module, "known_rows", scripted_known)
    state = base_state(tmp_path, task_dir=str(folder), task="capitals")
    state["run_options"] = state["run_options"].model_copy(update={"train_size": 6})
    data_engineer.known_source(state, load_task(None, folder))
    usable = usable_examples(load_task(None, folder))
    assert asked == [[example.answer for example in usable[:6]]]

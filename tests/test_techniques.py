"""Every technique the Librarian ranks also runs: --techniques restricts a whole run to one."""

import json

import pytest

from postlab.graph.runner import run_lab

SMALL = {"train_steps": 2, "train_size": 16, "eval_limit": 6, "batch_size": 4, "max_iterations": 1}


@pytest.mark.parametrize(
    ("asked", "key", "recipe", "method"),
    [
        ("rft", "rejection_sampling", "rft", "sft"),
        ("dpo", "dpo", "preference", "dpo"),
        ("curriculum", "curriculum", "curriculum", "sft"),
        ("teacher", "synthetic_teacher", "synthetic", "sft"),
    ],
)
def test_a_restricted_run_finalizes_with_a_scored_iteration_of_that_technique(
    tiny_model, tmp_path, asked, key, recipe, method
):
    output = run_lab(
        {
            "task": "addition_2d",
            "model": str(tiny_model),
            "budget": 12,
            "run_dir": str(tmp_path / asked),
            "options": {**SMALL, "techniques": [asked], "teacher": str(tiny_model)},
        }
    )
    summary = json.loads((tmp_path / asked / "summary.json").read_text())
    # Every technique has a card, reached by the citation walk or not.
    assert key in [finding["key"] for finding in summary["findings"]]
    assert output["stop_reason"] == "budget_iterations", summary["stop_detail"]
    [iteration] = summary["iterations"]
    assert iteration["technique"] == key and iteration["score"] is not None
    assert iteration["spec"]["method"] == method
    [card] = summary["datasets"]
    assert card["recipe"] == recipe and card["final_size"] >= 8
    if recipe == "curriculum":
        assert iteration["spec"]["train_sampling"] == "sequential"
    # Recipes that sample the model count the seconds it spent generating.
    samples_model = recipe in ("rft", "preference", "curriculum")
    assert ((card["recipe_stats"] or {}).get("sampling_seconds", 0) > 0) == samples_model
    if recipe == "synthetic":
        # The tiny teacher writes noise: every proposal is counted and none is kept.
        stats = card["recipe_stats"]
        assert stats["teacher_requests"] == stats["unparsed"] + stats["disagreed"] + sum(
            stats[k] for k in ("duplicates", "contaminated", "bad_form", "kept")
        )
    # The tiny model is never right, so the band is waived and the reason says so.
    if key in ("rejection_sampling", "dpo"):
        assert "run as asked although it needs validation accuracy" in iteration["reason"]


def test_an_unknown_technique_is_a_clear_error(tiny_model, tmp_path):
    output = run_lab(
        {
            "task": "addition_2d",
            "model": str(tiny_model),
            "run_dir": str(tmp_path / "bad"),
            "options": {**SMALL, "techniques": ["telepathy"]},
        }
    )
    summary = json.loads((tmp_path / "bad" / "summary.json").read_text())
    assert (
        output["stop_reason"] == "error"
        and "unknown technique 'telepathy'" in summary["stop_detail"]
    )


def test_the_teacher_technique_without_a_teacher_is_a_clear_error(tiny_model, tmp_path):
    output = run_lab(
        {
            "task": "addition_2d",
            "model": str(tiny_model),
            "run_dir": str(tmp_path / "no-teacher"),
            "options": {**SMALL, "techniques": ["teacher"]},
        }
    )
    summary = json.loads((tmp_path / "no-teacher" / "summary.json").read_text())
    assert output["stop_reason"] == "error" and "--teacher" in summary["stop_detail"]


def test_an_unknown_teacher_stops_before_any_work(tiny_model, tmp_path):
    output = run_lab(
        {
            "task": "addition_2d",
            "model": str(tiny_model),
            "run_dir": str(tmp_path / "bad-teacher"),
            "options": {**SMALL, "teacher": "no-such-teacher-model"},
        }
    )
    summary = json.loads((tmp_path / "bad-teacher" / "summary.json").read_text())
    assert output["stop_reason"] == "error"
    assert summary["stop_detail"].startswith("cannot start: teacher:")
    assert summary["iterations"] == []

"""Cards rank by relevance × fit to the task's measured features."""

from __future__ import annotations

import pytest

from postlab.agents.librarian import rank_by_fit
from postlab.memory.library import recall_effects, remember_effects
from postlab.memory.store import LabMemory
from postlab.records.outcomes import MeasuredEffect, TechniqueFinding
from postlab.tools.papers.corpus import load_corpus
from postlab.tools.training.fit import TaskFeatures, fit, local_fit

SMALL = TaskFeatures(
    accuracy=0.0, model_params=135e6, weights_bytes=540_000_000, train_pool=None, teacher=False
)


def _feature(**changes) -> TaskFeatures:
    return TaskFeatures(**{**SMALL.__dict__, **changes})


def test_each_measured_feature_moves_the_fit():
    sft, notes = fit("sft_full", SMALL, [7e9])
    # 135M against 7B is 1.7 decades of size: fit 1 / (1 + 0.25 × 1.71).
    assert sft == pytest.approx(0.70, abs=0.01) and "7e+09" in notes[-1]
    assert fit("sft_full", SMALL, [1.35e8])[0] == pytest.approx(1.0)
    grpo, notes = fit("grpo", SMALL, [7e9])
    assert grpo == pytest.approx(sft * 0.25, abs=0.01)
    assert "learns at validation accuracy 0.10–0.95, now 0.00" in notes[0]
    assert fit("grpo", _feature(accuracy=0.5), [7e9])[0] == pytest.approx(sft)
    assert fit("synthetic_teacher", SMALL, [7e9]) == (0.0, ["needs a teacher model (--teacher)"])
    assert fit("synthetic_teacher", _feature(teacher=True), [7e9])[0] == pytest.approx(sft)
    small_pool, notes = fit("curriculum", _feature(train_pool=40), [7e9])
    assert small_pool == pytest.approx(sft * 0.5, abs=0.01) and "40 training rows" in notes[0]
    assert fit("sft_full", _feature(weights_bytes=8 * 1024**3), [7e9])[0] == 0.0


def _card(key: str, relevance: float) -> TechniqueFinding:
    return TechniqueFinding(
        key=key, name=key, method="sft", runnable=True, relevance=relevance, rationale="r"
    )


def test_ranking_puts_a_card_that_can_learn_here_above_a_more_relevant_one_that_cannot():
    cards = [_card("grpo", 1.0), _card("sft_full", 0.6), _card("synthetic_teacher", 0.9)]
    ranked = rank_by_fit(cards, SMALL, load_corpus())
    assert [card.key for card in ranked] == ["sft_full", "grpo", "synthetic_teacher"]
    assert ranked[-1].fit == 0.0 and ranked[0].fit_notes
    # Once the model answers some questions right, GRPO's relevance counts in full again.
    ranked = rank_by_fit(cards, _feature(accuracy=0.5), load_corpus())
    assert ranked[0].key == "grpo"


def _effect(technique: str, effect: float, run_id: str = "earlier", params: float = 135e6):
    return MeasuredEffect(
        run_id=run_id,
        task="sort_list",
        technique=technique,
        model_params=params,
        effect=effect,
        iterations=2,
        steps=80,
    )


def test_this_machines_earlier_measurements_reorder_the_cards():
    cards = [_card("sft_lora", 0.65), _card("sft_full", 0.6)]
    assert rank_by_fit(cards, SMALL, load_corpus())[0].key == "sft_lora"
    local = [_effect("sft_full", 0.3), _effect("sft_lora", -0.2)]
    ranked = rank_by_fit(cards, SMALL, load_corpus(), local)
    assert [card.key for card in ranked] == ["sft_full", "sft_lora"]
    assert "measured here: run earlier +0.30 over 2 iteration(s)" in ranked[0].fit_notes[-1]
    assert "(×1.30)" in ranked[0].fit_notes[-1] and "(×0.80)" in ranked[1].fit_notes[-1]
    # A run on a model a hundred times larger says little about this one.
    far = [_effect("sft_full", 0.3, params=13.5e9)]
    assert local_fit(far, SMALL.model_params) is None


def test_the_library_keeps_effects_across_runs_and_skips_what_it_cannot_read(tmp_path):
    library = LabMemory(tmp_path / "library")
    remember_effects(library, [_effect("sft_full", 0.3, "run-a"), _effect("grpo", -0.1, "run-b")])
    # Filing a run again replaces its own entry rather than counting it twice.
    remember_effects(library, [_effect("sft_full", 0.25, "run-a")])
    library.add("experiments", "hand-written note", {"task": "sort_list", "effect": "big"})
    effects = recall_effects(library, "sort_list")
    assert [(e.run_id, e.technique, e.effect) for e in effects] == [
        ("run-a", "sft_full", 0.25),
        ("run-b", "grpo", -0.1),
    ]
    assert recall_effects(library, "addition_2d") == []

"""Cards rank by relevance × fit to the task's measured features."""

from __future__ import annotations

import pytest

from postlab.agents.librarian import rank_by_fit
from postlab.records.outcomes import TechniqueFinding
from postlab.tools.papers.corpus import load_corpus
from postlab.tools.training.fit import TaskFeatures, fit

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

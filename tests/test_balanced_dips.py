"""benchmarks/balanced_dips.py: a dip on label-balanced validation judged item by item, each item
weighed as balanced accuracy weighs it."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from postlab.records.outcomes import dip_is_chance
from postlab.tools.tasks.catalog import Example

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def balanced_dips():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        yield importlib.import_module("balanced_dips")
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_weights_are_those_of_balanced_accuracy(balanced_dips):
    examples = [Example(prompt=f"q{i}", answer="yes" if i < 3 else "no") for i in range(4)]
    weights = balanced_dips.balanced_weights(examples)
    # Three "yes" share half the score, the one "no" the other half.
    assert weights == pytest.approx({"q0": 1 / 6, "q1": 1 / 6, "q2": 1 / 6, "q3": 1 / 2})


@pytest.mark.parametrize("lost", range(0, 16))
def test_equal_weights_give_mcnemars_test(balanced_dips, lost):
    for gained in range(0, 16):
        weighted = balanced_dips.weighted_dip_is_chance([0.02] * lost, [0.02] * gained)
        assert weighted == dip_is_chance(lost, gained)


def test_a_rare_labels_items_weigh_more(balanced_dips):
    # Six common items lost against two rare ones gained is a gain by weight, not a drop.
    assert not dip_is_chance(6, 0)
    assert balanced_dips.weighted_dip_is_chance([0.01] * 6, [0.2] * 2)
    # The same count lost on the rare label alone is a drop.
    assert not balanced_dips.weighted_dip_is_chance([0.2] * 6, [0.01] * 2)

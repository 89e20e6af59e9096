"""Free-form misses group by meaning: one pattern of failure is one cluster."""

from __future__ import annotations

import numpy as np

from postlab.agents.data_engineer import aimed_misses
from postlab.agents.evaluator import miss_clusters
from postlab.memory.store import LabMemory
from postlab.records.artifacts import FailureSample
from postlab.records.outcomes import BestModel, EvaluationRecord, MissCluster
from postlab.tools.evaluation.clusters import (
    cluster_unit_vectors,
    dominant_cluster,
    group_misses,
)
from postlab.tools.evaluation.scoring import EvalResult
from postlab.tools.tasks.catalog import load_task


def test_leader_clustering_groups_close_vectors_largest_first():
    unit = np.array([[1, 0], [0, 1], [0.95, 0.31], [0.1, 0.99], [0.99, 0.14]], dtype="float32")
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    assert cluster_unit_vectors(unit, threshold=0.9) == [[0, 2, 4], [1, 3]]
    assert cluster_unit_vectors(unit, threshold=0.999) == [[0], [1], [2], [3], [4]]


def _miss(prompt: str, completion: str) -> FailureSample:
    return FailureSample(prompt=prompt, answer="x", completion=completion, category="wrong")


COUNTRIES = ("France", "Spain", "Italy", "Peru", "Chile", "Japan", "Kenya", "Norway", "Egypt")
COUNTRIES += ("Canada",)
UNRELATED = [
    "Translate 'good morning' into German.",
    "Name a prime number between 20 and 30.",
    "Write the word 'river' backwards.",
    "How many legs does a spider have?",
    "Spell 'necessary' letter by letter.",
    "What colour do you get by mixing blue and yellow?",
    "Give a synonym of 'quick'.",
    "Which is heavier, a kilogram of iron or a gram of gold?",
    "Name the opposite of 'ancient'.",
    "What is the plural of 'mouse'?",
]


def test_misses_of_one_kind_cluster_over_memorys_embeddings_and_name_a_weak_region(tmp_path):
    memory = LabMemory(tmp_path / "memory")
    capitals = [f"What is the capital city of {country}?" for country in COUNTRIES]
    # Four capital questions missed alike, three more missed otherwise (not free-form), three
    # right; two unrelated free-form misses, the other unrelated questions right.
    misses = [_miss(prompt, "London") for prompt in capitals[:4]]
    misses += [_miss(UNRELATED[0], "Good morning"), _miss(UNRELATED[1], "25")]
    prompts = capitals + UNRELATED
    wrong = {m.prompt for m in misses} | set(capitals[4:7])
    correct = [prompt not in wrong for prompt in prompts]
    clusters = group_misses(memory.embed, misses, prompts, correct)
    assert clusters and clusters[0].size == 4 and clusters[0].share == round(4 / 6, 3)
    assert "capital city" in clusters[0].example.prompt
    assert clusters[0].prompts == capitals[:4]
    # Its region is the ten capital questions: right 3 of 10 against 8 of 10 elsewhere.
    top = clusters[0]
    assert (top.near_items, top.near_accuracy, top.rest_accuracy) == (10, 0.3, 0.8)
    assert top.unlearned and dominant_cluster(clusters) == top
    # Singletons are not patterns.
    assert all(cluster.size > 1 for cluster in clusters)
    # A region of the group's own misses alone is weak by construction: no evidence.
    alone = capitals[:6] + UNRELATED
    own = [_miss(prompt, "London") for prompt in capitals[:6]]
    clusters = group_misses(memory.embed, own, alone, [p not in capitals for p in alone])
    assert clusters[0].near_items == 6 and clusters[0].near_accuracy == 0.0
    assert not clusters[0].unlearned and dominant_cluster(clusters) is None
    # The same misses on a split of capital questions only: the group is the task, not a gap.
    only = capitals + [f"Name the capital city of {c}." for c in ("Chad", "Nepal", "Cuba")]
    same = [_miss(prompt, "London") for prompt in only[:4]]
    clusters = group_misses(memory.embed, same, only, [i >= 4 for i in range(len(only))])
    assert clusters[0].near_items >= len(only) - 1 and not clusters[0].unlearned
    assert dominant_cluster(clusters) is None
    # Scattered misses: the largest group under half of them.
    scattered = misses[:2] + [_miss(p, "?") for p in UNRELATED[:4]]
    clusters = group_misses(memory.embed, scattered, prompts, correct)
    assert dominant_cluster(clusters) is None
    assert group_misses(memory.embed, misses[:3], prompts, correct) == []


def test_generated_tasks_misses_are_not_clustered(tmp_path):
    memory = LabMemory(tmp_path / "memory")
    result = EvalResult(
        model_path="m",
        task="addition_2d",
        n=10,
        strict=0.0,
        lenient=0.0,
        free_form_misses=[_miss(f"What is 1{i} + 2?", "9") for i in range(6)],
    )
    assert miss_clusters({"task_dir": None}, memory, result) == []


def test_targeted_data_aims_at_the_dominant_group_of_the_best_s_misses(tmp_path):
    task = load_task("unit_conversion")
    validation = task.validation_examples()[:6]
    memory = LabMemory(tmp_path / "memory")
    memory.add_many(
        "observations",
        [f"iter-1 missed: {e.prompt!r}" for e in validation],
        [{"label": "iter-1", "missed": True, "prompt": e.prompt} for e in validation],
    )
    alike = [e.prompt for e in validation[:4]]
    example = _miss(alike[0], "12")
    record = EvaluationRecord(
        label="iter-1", iteration=1, checkpoint="ckpt-1", strict=0.5, lenient=0.5, n=12
    )
    best = BestModel(checkpoint="ckpt-1", strict=0.5, lenient=0.5, label="iter-1", iteration=1)
    state = {"best": best, "evaluations": [record]}
    # No group of alike misses: every miss of the best is aimed at.
    misses, prompts = aimed_misses(state, memory, task)
    assert sorted(m.prompt for m in misses) == sorted(e.prompt for e in validation)
    assert prompts == []
    record.miss_clusters = [
        MissCluster(size=4, share=0.667, example=example, prompts=alike, unlearned=True)
    ]
    misses, prompts = aimed_misses(state, memory, task)
    assert sorted(m.prompt for m in misses) == sorted(alike) and prompts == alike
    assert all(m.answer == e.answer for m, e in zip(misses, validation[:4], strict=True))
    # A largest group under half of them is no pattern to aim at.
    record.miss_clusters[0].share = 0.4
    misses, prompts = aimed_misses(state, memory, task)
    assert len(misses) == 6 and prompts == []

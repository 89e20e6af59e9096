"""Free-form misses group by meaning: one pattern of failure is one cluster."""

from __future__ import annotations

import numpy as np

from postlab.agents.evaluator import miss_clusters
from postlab.memory.store import LabMemory
from postlab.records.artifacts import FailureSample
from postlab.tools.evaluation.clusters import cluster_unit_vectors


def test_leader_clustering_groups_close_vectors_largest_first():
    unit = np.array([[1, 0], [0, 1], [0.95, 0.31], [0.1, 0.99], [0.99, 0.14]], dtype="float32")
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    assert cluster_unit_vectors(unit, threshold=0.9) == [[0, 2, 4], [1, 3]]
    assert cluster_unit_vectors(unit, threshold=0.999) == [[0], [1], [2], [3], [4]]


def _miss(prompt: str, completion: str) -> FailureSample:
    return FailureSample(prompt=prompt, answer="x", completion=completion, category="wrong")


def test_misses_of_one_kind_cluster_over_memorys_embeddings(tmp_path):
    memory = LabMemory(tmp_path / "memory")
    capitals = [
        _miss(f"What is the capital city of {country}?", "London")
        for country in ("France", "Spain", "Italy", "Peru")
    ]
    other = [
        _miss("Translate 'good morning' into German.", "Good morning"),
        _miss("Name a prime number between 20 and 30.", "25"),
    ]
    state = {"task_dir": str(tmp_path)}
    clusters = miss_clusters(state, memory, capitals + other)
    assert clusters and clusters[0].size == 4 and clusters[0].share == round(4 / 6, 3)
    assert "capital city" in clusters[0].example.prompt
    # Singletons are not patterns; generated tasks' numeric misses are not clustered at all.
    assert all(cluster.size > 1 for cluster in clusters)
    assert miss_clusters({"task_dir": None}, memory, capitals + other) == []

"""Shared fixtures: a tiny random model with the real tokenizer, isolated run and cache dirs."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

# No test may reach a network service or write to the user's runs.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
# Runs in tests must not learn from each other (nor from the user's runs): the library is off
# unless a test gives it a folder.
os.environ["POSTLAB_LIBRARY_DIR"] = "off"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random Llama with SmolLM2's tokenizer: trains and generates in seconds."""
    from support.tiny_model import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(autouse=True)
def _runs_root_is_the_test_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Graphs built without trusted input confine run directories to the runs root.
    monkeypatch.setenv("POSTLAB_RUNS_DIR", str(tmp_path))


@pytest.fixture
def runs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private runs root for the test."""
    root = tmp_path / "runs"
    monkeypatch.setenv("POSTLAB_RUNS_DIR", str(root))
    return root


@pytest.fixture
def trained_iterations_win(monkeypatch):
    """Validation that rates each iteration above the last, so the best is a trained model
    (the tiny random model never gets an item right)."""
    from postlab.agents import evaluator

    real = evaluator.evaluate_checkpoint

    def scored(checkpoint, task, **kwargs):
        results = real(checkpoint, task, **kwargs)
        match = re.search(r"iter-(\d+)", str(checkpoint))
        if match and "validation" in results:
            strict = 0.3 * int(match.group(1))
            results["validation"] = results["validation"].model_copy(update={"strict": strict})
        return results

    monkeypatch.setattr(evaluator, "evaluate_checkpoint", scored)

"""A run whose Librarian reads online sources: a stand-in server, and no network at all."""

import json

import pytest
from support.online_server import OnlineServer, closed_port_url, configure_env

from postlab.graph.runner import run_lab
from postlab.tools.io.rate_limits import reset_service_state
from postlab.tools.papers.corpus import load_corpus

OPTIONS = {"online": True, "eval_limit": 4, "train_size": 16, "train_steps": 1, "batch_size": 4}


@pytest.fixture(autouse=True)
def _fresh_services():
    yield
    reset_service_state()


def _research_run(tiny_model, run_dir):
    # Two steps: the baseline, then the Librarian's research; the run then finalizes.
    output = run_lab(
        {
            "task": "addition_2d",
            "model": str(tiny_model),
            "budget": 2,
            "run_dir": str(run_dir),
            "options": OPTIONS,
        },
    )
    return output, json.loads((run_dir / "summary.json").read_text())


def test_librarian_reads_the_stand_in_services(tiny_model, tmp_path, monkeypatch):
    with OnlineServer() as server:
        configure_env(monkeypatch, server.url, tmp_path / "home")
        output, summary = _research_run(tiny_model, tmp_path / "online")
        paths = {seen.path for seen in server.requests}
    assert output["stop_reason"] == "budget_steps"
    assert any(path.startswith("/api/query") for path in paths)  # arXiv
    assert any(path.startswith("/api/papers/search") for path in paths)  # HF Papers
    assert any("/graph/v1/paper/" in path for path in paths)  # Semantic Scholar
    cited = {paper["id"] for finding in summary["findings"] for paper in finding["papers"]}
    corpus_ids = {paper.id for paper in load_corpus()}
    assert cited - corpus_ids, "no paper read online backs any technique card"
    # Every service answered: no fallback to the corpus was needed.
    assert not any("unreachable" in note for note in summary["source_notes"])


def test_no_network_falls_back_visibly_and_finalizes(tiny_model, tmp_path, monkeypatch):
    configure_env(monkeypatch, closed_port_url(), tmp_path / "home")
    events = []
    output = run_lab(
        {
            "task": "addition_2d",
            "model": str(tiny_model),
            "budget": 2,
            "run_dir": str(tmp_path / "offline"),
            "options": OPTIONS,
        },
        on_event=events.append,
    )
    summary = json.loads((tmp_path / "offline" / "summary.json").read_text())
    assert output["stop_reason"] == "budget_steps"
    assert summary["findings"], "the corpus still yields technique cards"
    assert any("used the bundled corpus" in note for note in summary["source_notes"])
    assert any(e["type"] == "note" for e in events)
    assert "used the bundled corpus" in (tmp_path / "offline" / "report.md").read_text()


def _data_run(tiny_model, run_dir, events=None):
    # Three steps: baseline, research, then the DataEngineer builds iteration 1's data.
    run_lab(
        {
            "task": "addition_2d",
            "model": str(tiny_model),
            "budget": 3,
            "run_dir": str(run_dir),
            "options": {
                **OPTIONS,
                "online": False,
                "hub_dataset": "openai/gsm8k",
                # Plain SFT: the quality recipe would rightly drop GSM8K's "#### n" answers.
                "techniques": ["sft"],
            },
        },
        on_event=events.append if events is not None else None,
    )
    return json.loads((run_dir / "summary.json").read_text())


def test_data_engineer_trains_on_a_hub_dataset(tiny_model, tmp_path, monkeypatch):
    import datasets

    rows = [{"question": f"What is {i} plus {i}?", "answer": f"#### {2 * i}"} for i in range(60)]
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: datasets.Dataset.from_list(rows))
    with OnlineServer() as server:
        configure_env(monkeypatch, server.url, tmp_path / "home")
        summary = _data_run(tiny_model, tmp_path / "hub")
    card = summary["datasets"][0]
    assert card["source"] == "hub:openai/gsm8k"
    assert card["license"] == "mit" and card["size_category"]
    assert card["final_size"] == OPTIONS["train_size"]


def test_unreachable_hub_dataset_falls_back_to_the_task_data(tiny_model, tmp_path, monkeypatch):
    configure_env(monkeypatch, closed_port_url(), tmp_path / "home")
    events = []
    summary = _data_run(tiny_model, tmp_path / "nohub", events)
    card = summary["datasets"][0]
    assert card["source"] == "generator" and card["license"] is None
    assert any("Hub dataset openai/gsm8k unavailable" in n for n in summary["source_notes"])
    assert any(e["type"] == "note" and e["agent"] == "data_engineer" for e in events)

"""A chat model reads papers: every cell and card field it returns is checked against the
span it quotes; refusals are named, garbage falls back, and accepted cards reach the Librarian."""

import json
import re

import pytest
from langchain_core.messages import AIMessage
from support.online_server import OnlineServer, configure_env
from support.scripted_model import ScriptedChatModel
from typer.testing import CliRunner

from postlab.cli.app import app
from postlab.graph.runner import run_lab
from postlab.tools.io.rate_limits import reset_service_state
from postlab.tools.papers.extraction import evidence_papers, evidence_table, paper_texts

QUERY = "GRPO small models"


def _call(name: str, args: dict) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": "call-1"}])


def _paper_in(messages) -> str:
    return re.search(r'source="paper:([^"]+)"', str(messages[-1].content)).group(1)


@pytest.fixture
def scripted(monkeypatch):
    """Route `--llm` to a scripted model; the test sets its script."""
    model = ScriptedChatModel(script=["(nothing scripted)"])
    monkeypatch.setattr("postlab.agents.llm.models.load_chat_model", lambda *a, **k: model)
    return model


def _readings() -> dict[str, dict]:
    """For each paper: one true cell, one invented quote, one value its quote does not state."""
    answers = {}
    for paper in evidence_papers(QUERY, limit=10)[0]:
        texts = list(paper_texts(paper))
        claim = next((t for _, t in texts if re.search(r"\d", t)), texts[0][1])
        number = re.search(r"\d+(?:\.\d+)?%?", claim)
        answers[paper.id] = {
            "cells": [
                {"column": "effect", "value": number.group(0) if number else claim, "quote": claim},
                {"column": "benchmark", "value": "MMLU", "quote": "We evaluate on MMLU only."},
                {"column": "model", "value": "a 70B model", "quote": texts[0][1][:40]},
            ]
        }
    return answers


def test_model_cells_are_kept_only_where_their_quote_says_so(scripted):
    answers = _readings()
    scripted.script = lambda messages: _call("PaperReading", answers[_paper_in(messages)])
    result = CliRunner().invoke(app, ["papers", "table", QUERY, "--llm", "openai:gpt-4o-mini",
                                      "--format", "json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == len(answers) > 0
    for row in rows:
        # The invented quote and the unstated size are refused; the true cell stays, citing
        # the text its quote was found in.
        assert set(row["cells"]) == {"effect"}, row
        cell = row["cells"]["effect"]
        assert cell["source"].startswith(f"corpus:{row['paper_id']}#")
        assert cell["quote"] == answers[row["paper_id"]]["cells"][0]["quote"]
    assert result.stderr.count("benchmark: refused, quote not found") == len(rows)
    assert result.stderr.count("model: refused, value 'a 70B model' has numbers") == len(rows)


def test_a_garbage_answer_falls_back_to_the_rule_based_row(scripted):
    scripted.script = ["I think these papers are great!"]
    result = CliRunner().invoke(app, ["papers", "table", QUERY, "--llm", "openai:gpt-4o-mini",
                                      "--format", "json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    rules, _ = evidence_table(QUERY, limit=10)
    assert json.loads(result.stdout) == [row.model_dump() for row in rules]
    assert "unusable answer" in result.stderr and "rule-based row instead" in result.stderr


def test_an_unknown_model_is_a_one_line_error():
    result = CliRunner().invoke(app, ["papers", "table", QUERY, "--llm", "nosuch:model"])
    assert result.exit_code == 2 and "cannot read --llm" in result.output


CARD = {
    "technique": "grpo",
    "name": "GRPO with exact-match rewards",
    "applies_when": {
        "claim": "exact-match rewards",
        "quote": "Group relative policy optimization on a 135M model with exact-match rewards",
    },
    "effects": [
        {"claim": "improves multi-digit addition", "quote": "improves multi-digit addition"},
        {"claim": "doubles accuracy on GSM8K", "quote": "doubles accuracy on GSM8K"},
    ],
    "learning_rate": 1e-6,
    "learning_rate_quote": "Group relative policy optimization",
    "model_params": 1.35e8,
    "model_params_quote": "on a 135M model",
}
NO_CARD = {"technique": None}


def test_feed_cards_wait_for_review_and_accepted_ones_reach_the_librarian(
    scripted, monkeypatch, tmp_path, tiny_model
):
    library = tmp_path / "library"
    monkeypatch.setenv("POSTLAB_LIBRARY_DIR", str(library))
    cards = {"2406.01234": CARD, "2406.05678": NO_CARD}
    scripted.script = lambda messages: _call("CardReading", cards[_paper_in(messages)])
    runner = CliRunner()
    with OnlineServer() as server:
        configure_env(monkeypatch, server.url, tmp_path / "home")
        fed = runner.invoke(app, ["papers", "feed", "--since", "2024-06-01", "--until",
                                  "2024-06-03", "--llm", "openai:gpt-4o-mini"])  # fmt: skip
    reset_service_state()
    assert fed.exit_code == 0, fed.output
    assert "1 new card(s) proposed" in fed.stderr
    # The invented effect and the unstated learning rate are refused; the model size stands.
    assert "effect refused: quote not found" in fed.stderr
    assert "learning rate refused" in fed.stderr
    stored = json.loads((library / "proposed_cards.json").read_text())
    assert [c["paper"]["id"] for c in stored] == ["2406.01234"]
    card = stored[0]
    assert card["status"] == "unreviewed"
    assert card["paper"]["technique"]["effects"] == ["improves multi-digit addition"]
    recipe = {k: v for k, v in card["paper"]["technique"]["recipe"].items() if v is not None}
    assert recipe == {"model_params": 1.35e8}
    assert card["quotes"]["recipe.model_params"] == "on a 135M model"

    def cited_by_grpo(run_dir):
        run_lab({"task": "addition_2d", "model": str(tiny_model), "budget": 2,
                 "run_dir": str(run_dir), "options": {"eval_limit": 4}})  # fmt: skip
        summary = json.loads((run_dir / "summary.json").read_text())
        grpo = next(f for f in summary["findings"] if f["key"] == "grpo")
        return {paper["id"] for paper in grpo["papers"]}

    # Unreviewed, the card is not evidence; accepted, the Librarian ranks it with the corpus.
    assert "2406.01234" not in cited_by_grpo(tmp_path / "before")
    listed = runner.invoke(app, ["cards", "list", "--status", "unreviewed"])
    assert "2406.01234" in listed.stdout
    assert runner.invoke(app, ["cards", "review", "nope", "--accept"]).exit_code == 2
    reviewed = runner.invoke(app, ["cards", "review"], input="a\n")
    assert reviewed.exit_code == 0 and "2406.01234: accepted" in reviewed.stdout
    assert "2406.01234" in cited_by_grpo(tmp_path / "after")


def test_online_rows_cite_abstracts_and_a_model_reads_the_full_text(
    scripted, monkeypatch, tmp_path
):
    with OnlineServer() as server:
        configure_env(monkeypatch, server.url, tmp_path / "home")
        args = ["papers", "table", "preference optimization", "--online", "--format", "json"]
        by_rule = CliRunner().invoke(app, args)
        reading = {
            "cells": [
                {"column": "effect", "value": "from 55.6% to 81.6%",
                 "quote": "raise GSM8K accuracy from 55.6% to 81.6%"},
                {"column": "hyperparameters", "value": "learning rate 5e-7",
                 "quote": "with a learning rate of 5e-7 in every round"},
            ]
        }  # fmt: skip
        scripted.script = lambda messages: _call(
            "PaperReading", reading if _paper_in(messages) == "2404.19733" else {"cells": []}
        )
        by_model = CliRunner().invoke(app, [*args, "--llm", "openai:gpt-4o-mini"])
    reset_service_state()
    assert by_rule.exit_code == 0 and by_model.exit_code == 0, by_rule.output + by_model.output
    online = [r for r in json.loads(by_rule.stdout) if not r["cells"].get("method")]
    assert online, "no paper was read from an abstract"
    for row in online:
        assert all("#abstract" in cell["source"] for cell in row["cells"].values()), row
    rows = {row["paper_id"]: row for row in json.loads(by_model.stdout)}
    cells = rows["2404.19733"]["cells"]
    # Both values come from the HTML full text's Experiments section, not the abstract.
    assert cells["effect"]["source"] == cells["hyperparameters"]["source"]
    assert (
        cells["effect"]["source"].startswith("arxiv:2404.19733#")
        and "Experiments" in (cells["effect"]["source"])
    )

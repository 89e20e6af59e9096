"""The run's options pick LLM bodies and routing; the CLI checks models before a run starts."""

import json

import pytest
from typer.testing import CliRunner

from postlab.agents.base import agent_body
from postlab.agents.librarian import research
from postlab.cli.app import app
from postlab.graph.policy import decide
from postlab.graph.state import RunOptions
from postlab.graph.supervisor import policy_for


def test_playbook_options_keep_the_playbook():
    state = {"run_options": RunOptions()}
    assert agent_body(state, "librarian", research) is research
    assert policy_for(state) is decide


def test_llm_options_select_model_driven_bodies_and_routing():
    options = RunOptions(
        policy="llm", llm="local:smollm2", llm_overrides={"trainer": "local:smollm2"}
    )
    state = {"run_options": options}
    body = agent_body(state, "librarian", research)
    assert body is not research and callable(body)
    # Built once per configuration, then reused across steps.
    assert agent_body(state, "librarian", research) is body
    policy = policy_for(state)
    assert policy is not decide and hasattr(policy, "drain")


def test_llm_policy_needs_a_model():
    with pytest.raises(ValueError, match="needs a model"):
        RunOptions(policy="llm")


def test_cli_rejects_unusable_models_before_the_run(runs_dir, monkeypatch):
    runner = CliRunner()
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGINGFACEHUB_API_TOKEN", raising=False)
    result = runner.invoke(app, ["run", "--task", "addition_2d", "--llm", "hf:org/model"])
    assert result.exit_code == 2 and "HF_TOKEN" in result.output
    result = runner.invoke(app, ["run", "--task", "addition_2d", "--llm", "local:nope"])
    assert result.exit_code == 2 and "local" in result.output
    result = runner.invoke(
        app,
        [
            "run",
            "--task",
            "addition_2d",
            "--llm-for",
            "trainer=local:smollm2",
            "--mcp-config",
            "/nonexistent.json",
        ],
    )
    assert result.exit_code == 2
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


@pytest.mark.slow
def test_local_smollm2_drives_a_cli_run_offline(runs_dir, tiny_model):
    result = CliRunner().invoke(
        app,
        [
            "run",
            "--llm",
            "local:smollm2",
            "--task",
            "answer_format",
            "--budget",
            "30",
            "--model",
            str(tiny_model),
            "--train-steps",
            "2",
            "--train-size",
            "16",
            "--eval-limit",
            "6",
            "--batch-size",
            "4",
            "--max-iterations",
            "1",
        ],
    )
    assert result.exit_code in (0, 3, 4), result.output
    summary = json.loads(next(runs_dir.glob("*/summary.json")).read_text())
    assert summary["stop_reason"] and summary["llm_usage"]
    assert all(u["model"] == "smollm2" for u in summary["llm_usage"].values())

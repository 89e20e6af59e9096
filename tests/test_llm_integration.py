"""The run's options pick LLM bodies and routing; the CLI checks models before a run starts."""

import json

import pytest
from typer.testing import CliRunner

from postlab.agents.librarian import research
from postlab.cli.app import app
from postlab.graph.components import LabComponents
from postlab.graph.playbook import decide
from postlab.records.run import RunOptions


def test_playbook_options_keep_the_playbook():
    components = LabComponents()
    assert components.body_for(RunOptions(), "librarian") is research
    assert components.policy_for(RunOptions()) is decide


def test_llm_options_select_model_driven_bodies_and_routing():
    options = RunOptions(
        policy="llm", llm="local:smollm2", llm_overrides={"trainer": "local:smollm2"}
    )
    components = LabComponents()
    body = components.body_for(options, "librarian")
    assert body is not research and callable(body)
    # Built once per configuration and graph, then reused across steps.
    assert components.body_for(options, "librarian") is body
    assert LabComponents().body_for(options, "librarian") is not body
    policy = components.policy_for(options)
    assert policy is not decide and hasattr(policy, "drain")


def test_injected_parts_win_over_the_run_options():
    def body(state, directive, memory):
        raise AssertionError("not called here")

    components = LabComponents(bodies={"trainer": body}, policy=decide)
    options = RunOptions(policy="llm", llm="local:smollm2")
    assert components.body_for(options, "trainer") is body
    assert components.policy_for(options) is decide


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

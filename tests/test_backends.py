"""The training engine: Unsloth only where it supports the run, plain TRL otherwise, with why."""

import json

import pytest
from typer.testing import CliRunner

from postlab.cli.app import app
from postlab.tools.training.backends import choose_backend


@pytest.fixture
def llama(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    return str(tmp_path)


def test_auto_picks_unsloth_only_where_it_supports_the_run(llama, tmp_path):
    fits = {"cuda": True, "unsloth_installed": True}
    assert choose_backend("auto", "sft", llama, **fits)[0] == "unsloth"
    backend, why = choose_backend("auto", "sft", llama, cuda=False, unsloth_installed=True)
    assert backend == "trl" and "no CUDA GPU" in why
    backend, why = choose_backend("auto", "sft", llama, cuda=True, unsloth_installed=False)
    assert backend == "trl" and "postlab[gpu]" in why
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "config.json").write_text(json.dumps({"model_type": "gpt_bigcode"}))
    backend, why = choose_backend("auto", "sft", str(tmp_path / "odd"), **fits)
    assert backend == "trl" and "'gpt_bigcode'" in why
    assert choose_backend("trl", "sft", llama, **fits) == (
        "trl",
        "plain TRL, as asked (--backend trl)",
    )


def test_unsloth_asked_for_where_it_cannot_run_is_refused_before_any_work(
    llama, tiny_model, runs_dir
):
    with pytest.raises(ValueError, match="no CUDA GPU"):
        choose_backend("unsloth", "sft", llama, cuda=False, unsloth_installed=True)
    result = CliRunner().invoke(
        app, ["run", "--task", "addition_2d", "--model", str(tiny_model), "--backend", "unsloth"]
    )
    assert result.exit_code == 1 and "--backend unsloth cannot run here" in result.output
    summary = json.loads(next(runs_dir.glob("*/summary.json")).read_text())
    assert summary["stop_detail"].startswith("cannot start") and summary["iterations"] == []

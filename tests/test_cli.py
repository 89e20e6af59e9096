"""The CLI: clear errors with exit codes, listing and showing runs."""

from typer.testing import CliRunner

from postlab.cli.app import app

runner = CliRunner()


def test_tasks_lists_the_bundled_tasks():
    result = runner.invoke(app, ["tasks"])
    assert result.exit_code == 0
    for name in ("addition_2d", "addition_3d", "unit_conversion", "sort_list", "answer_format"):
        assert name in result.output


def test_bad_input_exits_2_with_a_message(runs_dir, tmp_path):
    result = runner.invoke(app, ["run", "--task", "no_such_task"])
    assert result.exit_code == 2 and "unknown task" in result.output
    result = runner.invoke(app, ["run", "--task", "addition_2d", "--model", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "cannot resolve model" in result.output
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 2
    (tmp_path / "task").mkdir()
    result = runner.invoke(app, ["run", "--task-dir", str(tmp_path / "task")])
    assert result.exit_code == 2 and "train.jsonl" in result.output
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


def test_run_then_runs_and_show(runs_dir, tiny_model, monkeypatch):
    from postlab.cli import app as cli_app

    monkeypatch.setattr(cli_app.console, "width", 200)
    result = runner.invoke(
        app, ["run", "--task", "answer_format", "--model", str(tiny_model), "--budget", "2"]
    )
    assert result.exit_code == 3, result.output  # budget spent
    listing = runner.invoke(app, ["runs"])
    assert "answer_format" in listing.output and "budget_steps" in listing.output
    run_id = next(runs_dir.iterdir()).name
    shown = runner.invoke(app, ["show", run_id])
    assert shown.exit_code == 0 and "2 of 2 steps used, 0 left" in shown.output
    as_json = runner.invoke(app, ["show", run_id, "--json"])
    assert '"stop_reason": "budget_steps"' in as_json.output
    assert runner.invoke(app, ["show", "nope"]).exit_code == 2


def test_online_source_commands_are_part_of_the_cli(monkeypatch):
    monkeypatch.setenv("POSTLAB_OFFLINE", "1")
    result = runner.invoke(app, ["papers", "search", "low-rank adaptation", "--limit", "3"])
    assert result.exit_code == 0
    assert "offline: used the bundled corpus" in result.output and "LoRA" in result.output
    result = runner.invoke(app, ["datasets", "search", "grade school math"])
    assert result.exit_code == 0 and "bundled task catalog" in result.output

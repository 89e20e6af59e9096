"""Publishing: the best checkpoint and a model card whose numbers are summary.json's."""

import json

import pytest
from huggingface_hub import ModelCard
from support.hub_server import HubServer
from transformers import AutoModelForCausalLM
from typer.testing import CliRunner

from postlab.cli.app import app
from postlab.graph.runner import run_lab
from postlab.tools.publishing.hub import PublishError, push_run
from postlab.tools.publishing.model_card import model_card

SMALL = {"train_steps": 2, "train_size": 24, "eval_limit": 4, "batch_size": 4, "max_iterations": 1}


@pytest.fixture(scope="module")
def trained_run(tiny_model, tmp_path_factory):
    """A finished run whose best is iteration 1 (validation rates it above the base model)."""
    run_dir = tmp_path_factory.mktemp("runs") / "pushed"
    with pytest.MonkeyPatch.context() as patch:
        from postlab.agents import evaluator

        real = evaluator.evaluate_checkpoint

        def scored(checkpoint, task, **kwargs):
            results = real(checkpoint, task, **kwargs)
            if "iter-1" in str(checkpoint) and "validation" in results:
                better = results["validation"].model_copy(update={"strict": 0.5})
                results["validation"] = better
            return results

        patch.setattr(evaluator, "evaluate_checkpoint", scored)
        # One technique: full and LoRA SFT rank within float noise of each other for this goal,
        # and the card is checked for the technique that won.
        options = {**SMALL, "techniques": ["sft_full"]}
        run_lab({"task": "addition_2d", "model": str(tiny_model), "budget": 20,
                 "run_dir": str(run_dir), "options": options})  # fmt: skip
    return run_dir


@pytest.fixture
def no_token(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setattr("postlab.tools.publishing.hub.get_token", lambda: None)


def test_without_a_token_a_push_is_a_dry_run_that_writes_the_card(trained_run, no_token):
    result = CliRunner().invoke(
        app, ["push", str(trained_run), "--repo", "me/adder", "--json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    pushed = json.loads(result.stdout)
    assert pushed["dry_run"] is True and pushed["url"] is None
    names = {f["path_in_repo"] for f in pushed["files"]}
    assert {"config.json", "model.safetensors", "README.md"} <= names
    card = ModelCard.load(trained_run / "push" / "README.md")
    summary = json.loads((trained_run / "summary.json").read_text())
    # A local base model has no Hub id to link; the text names the folder instead.
    assert card.data.base_model is None and summary["base_model"] in card.text
    assert card.data.eval_results[0].metric_value == summary["best_score"]


@pytest.fixture
def online(monkeypatch):
    """The Hub reachable (the suite runs offline): the stand-in server is the only Hub."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False, raising=False)


def test_a_push_uploads_a_loadable_checkpoint_and_its_data(
    trained_run, tmp_path, monkeypatch, online
):
    summary = json.loads((trained_run / "summary.json").read_text())
    with HubServer(tmp_path / "hub") as hub:
        monkeypatch.setattr("postlab.tools.publishing.hub.get_token", lambda: hub.token)
        result = push_run(
            trained_run, "me/adder", private=True, with_dataset=True, endpoint=hub.url
        )
    assert result.dry_run is False and hub.repos["me/adder"]["visibility"] == "private"
    model_dir = tmp_path / "hub" / "models" / "me" / "adder"
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    assert model.config.num_hidden_layers == 2
    card = ModelCard.load(model_dir / "README.md")
    # The card's numbers are the summary's: test scores with their errors, and split sizes.
    best = f"{summary['best_score']:.3f} ± {summary['best_stderr']:.3f}"
    baseline = f"{summary['baseline_score']:.3f} ± {summary['baseline_stderr']:.3f}"
    assert best in card.text and baseline in card.text
    assert f"validation {summary['best_val_n']}, test {summary['best_test_n']}" in card.text
    assert "sft_full" in card.text and "## Intended use and limits" in card.text
    # The training set went up as parquet beside its own card, with its decontamination counts.
    data_dir = tmp_path / "hub" / "datasets" / "me" / "adder-data"
    import pyarrow.parquet as pq

    rows = pq.read_table(data_dir / "data" / "train.parquet").num_rows
    dataset_card = next(d for d in summary["datasets"] if d["final_size"] == rows)
    assert (
        f"test split: {dataset_card['contaminated_removed']}"
        in (data_dir / "README.md").read_text()
    )


def test_a_refused_push_and_an_untrained_run_are_clear_errors(trained_run, tmp_path, monkeypatch):
    with HubServer(tmp_path / "hub") as hub:
        monkeypatch.setattr("postlab.tools.publishing.hub.get_token", lambda: "hf_wrong")
        # The suite runs with HF_HUB_OFFLINE=1: a push says so instead of failing obscurely.
        with pytest.raises(PublishError, match="HF_HUB_OFFLINE"):
            push_run(trained_run, "me/adder", endpoint=hub.url)
        monkeypatch.delenv("HF_HUB_OFFLINE")
        monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False, raising=False)
        with pytest.raises(PublishError, match="refused the push"):
            push_run(trained_run, "me/adder", endpoint=hub.url)
    untrained = tmp_path / "untrained"
    untrained.mkdir()
    summary = json.loads((trained_run / "summary.json").read_text())
    summary["best_label"] = "baseline"
    (untrained / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(PublishError, match="nothing to push"):
        push_run(untrained, "me/adder", dry_run=True)


def test_an_unattended_run_to_push_leaves_a_dry_run_for_a_person_to_approve(
    runs_dir, tiny_model, trained_iterations_win, monkeypatch
):
    from postlab.cli import launch

    monkeypatch.setattr(launch.console, "width", 300)
    monkeypatch.setattr("postlab.tools.publishing.hub.get_token", lambda: "hf_present")
    args = ["run", "--task", "addition_2d", "--model", str(tiny_model), "--max-iterations", "1",
            "--train-steps", "2", "--eval-limit", "4", "--batch-size", "4",
            "--push-to", "me/x"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output  # all iterations used
    # A token is present, yet nobody approved: the gate's default rejects publishing.
    assert "not published (publishing was not approved" in result.output
    run_dir = next(runs_dir.iterdir())
    assert (run_dir / "push" / "README.md").is_file()
    assert f"postlab push {run_dir.name} --repo me/x" in result.output


def test_the_card_of_a_label_task_shows_one_answer_given_to_everything(trained_run):
    summary = json.loads((trained_run / "summary.json").read_text())
    assert "commonest answer" not in model_card(summary, "me/adder").text
    summary["constant_answer"] = {
        "answer": "D", "validation": 0.2, "validation_n": 100, "test": 0.3, "test_n": 100,
    }  # fmt: skip
    text = model_card(summary, "me/adder").text
    assert "| always 'D' (training's commonest answer) | 0.200 ± 0.040 | 0.300 ± 0.046 |" in text

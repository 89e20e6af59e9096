"""Uploading a finished run's best checkpoint (and optionally its training data) to the Hub.

Without a token the push is a dry run: the model card is written into the run folder and the
files that would go up are listed, so a user sees exactly what publishing would do.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from huggingface_hub import CommitOperationAdd, DatasetCard, HfApi, get_token
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled
from pydantic import BaseModel, Field

from postlab.tools.io.atomic import write_text_atomic
from postlab.tools.io.rundir import SUMMARY_FILE
from postlab.tools.models.resolution import is_checkpoint_dir
from postlab.tools.publishing.model_card import model_card, winning_iteration

# Where a dry run leaves what it would have uploaded.
PUSH_SUBDIR = "push"


class PublishError(RuntimeError):
    """A run that cannot be published, or a Hub that refused it."""


class PushedFile(BaseModel):
    """One file of a push: its path in the repo and its size."""

    path_in_repo: str
    size: int


class PushResult(BaseModel):
    """What a push uploaded (or, in a dry run, would upload) and where."""

    repo_id: str
    dry_run: bool
    private: bool
    files: list[PushedFile] = Field(default_factory=list)
    card_path: str
    url: str | None = None
    dataset_repo_id: str | None = None
    dataset_files: list[PushedFile] = Field(default_factory=list)


def _summary(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / SUMMARY_FILE).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise PublishError(f"run {run_dir.name} has no readable {SUMMARY_FILE}: {error}") from error


def _best_checkpoint(run_dir: Path, summary: dict) -> Path:
    if winning_iteration(summary) is None:
        raise PublishError(
            f"run {run_dir.name}: no iteration beat the base model on validation; nothing to push"
        )
    checkpoint = run_dir / summary["best_checkpoint"]
    if not is_checkpoint_dir(checkpoint):
        raise PublishError(
            f"the best checkpoint {checkpoint} is missing (no config.json with weights)"
        )
    return checkpoint


def _files(folder: Path) -> list[tuple[Path, str]]:
    return sorted((p, p.relative_to(folder).as_posix()) for p in folder.rglob("*") if p.is_file())


def _dataset_folder(run_dir: Path, summary: dict) -> tuple[Path, dict]:
    winner = winning_iteration(summary)
    path = (winner.get("spec") or {}).get("dataset_path", "")
    folder = (run_dir / path).resolve()
    card = next(
        (
            c
            for c in summary.get("datasets") or []
            if path and (run_dir / c.get("path", "")).resolve() == folder
        ),
        None,
    )
    if card is None or not folder.is_dir():
        raise PublishError(f"the best iteration's training set {path!r} is not in the run folder")
    return folder, card


def _dataset_card(card: dict, model_repo: str) -> DatasetCard:
    text = (
        "---\n"
        f"license: {card.get('license') or 'other'}\n"
        "tags: [postlab]\n"
        "---\n\n"
        f"# Training set of {model_repo}\n\n"
        f"Built by postlab for {card.get('task')} ({card.get('format')} format, recipe "
        f"{card.get('recipe', 'plain')}) from {card.get('source')}.\n\n"
        f"- rows: {card.get('final_size')} of {card.get('collected')} collected\n"
        f"- duplicates removed: {card.get('duplicates_removed', 0)}\n"
        f"- removed for sharing a {card.get('ngram_n')}-gram with the test split: "
        f"{card.get('contaminated_removed', 0)}\n"
    )
    return DatasetCard(text)


def push_run(
    run_dir: Path,
    repo_id: str,
    private: bool = False,
    with_dataset: bool = False,
    dry_run: bool | None = None,
    endpoint: str | None = None,
) -> PushResult:
    """Publish a run's best checkpoint with its model card; a dry run without a token."""
    summary = _summary(run_dir)
    checkpoint = _best_checkpoint(run_dir, summary)
    token = get_token()
    dry = dry_run if dry_run is not None else token is None
    out = run_dir / PUSH_SUBDIR
    out.mkdir(exist_ok=True)
    card_text = str(model_card(summary, repo_id))
    card_path = write_text_atomic(out / "README.md", card_text)
    files = [PushedFile(path_in_repo=name, size=p.stat().st_size) for p, name in _files(checkpoint)]
    files.append(PushedFile(path_in_repo="README.md", size=len(card_text.encode())))
    result = PushResult(
        repo_id=repo_id, dry_run=dry, private=private, files=files, card_path=str(card_path)
    )
    dataset = _dataset_folder(run_dir, summary) if with_dataset else None
    if dataset is not None:
        result.dataset_repo_id = f"{repo_id}-data"
    if dry:
        return result
    api = HfApi(endpoint=endpoint, token=token)
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        operations = [
            CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(p))
            for p, name in _files(checkpoint)
        ]
        operations.append(CommitOperationAdd("README.md", card_text.encode()))
        api.create_commit(
            repo_id, operations, commit_message=f"postlab run {summary.get('run_id')}"
        )
        result.url = str(url)
        if dataset is not None:
            result.dataset_files = _push_dataset(api, result.dataset_repo_id, private, *dataset)
    except HfHubHTTPError as error:
        raise PublishError(f"the Hub refused the push to {repo_id}: {error}") from error
    except OfflineModeIsEnabled as error:
        raise PublishError(
            "HF_HUB_OFFLINE is set, so nothing can be pushed; unset it, or use --dry-run"
        ) from error
    except OSError as error:
        raise PublishError(f"could not reach the Hub to push {repo_id}: {error}") from error
    return result


def _push_dataset(api: HfApi, repo_id: str, private: bool, folder: Path, card: dict):
    """Upload a training set as parquet with its own card; the files it wrote."""
    from datasets import load_from_disk

    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="dataset")
    with tempfile.TemporaryDirectory() as scratch:
        parquet = Path(scratch) / "train.parquet"
        load_from_disk(str(folder)).to_parquet(str(parquet))
        readme = str(_dataset_card(card, repo_id.removesuffix("-data"))).encode()
        operations = [
            CommitOperationAdd("data/train.parquet", str(parquet)),
            CommitOperationAdd("README.md", readme),
        ]
        api.create_commit(
            repo_id, operations, repo_type="dataset", commit_message="postlab training set"
        )
        return [
            PushedFile(path_in_repo="data/train.parquet", size=parquet.stat().st_size),
            PushedFile(path_in_repo="README.md", size=len(readme)),
        ]

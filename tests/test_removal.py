"""Large files and folders are set aside at once and deleted on a thread; leftovers go later."""

from pathlib import Path

from postlab.tools.io.removal import (
    ASIDE_PREFIX,
    remove_aside,
    remove_left_aside,
    wait_for_removals,
)


def _checkpoint(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"\0" * (1 << 20))
    (folder / "config.json").write_text("{}")
    return folder


def test_a_folder_and_a_file_are_gone_at_once_and_deleted_by_the_wait(tmp_path):
    iteration = tmp_path / "models" / "iter-1"
    checkpoint = _checkpoint(iteration / "checkpoint")
    state = iteration / "optimizer.pt"
    state.write_bytes(b"\1" * (1 << 20))
    (iteration / "train.log").write_text("log")
    remove_aside(checkpoint)
    remove_aside(state)
    # Nothing sees them half gone: their names are free the moment the call returns.
    assert not checkpoint.exists() and not state.exists()
    wait_for_removals()
    assert sorted(path.name for path in iteration.iterdir()) == ["train.log"]
    # The same name can be set aside again once something new is written there.
    _checkpoint(checkpoint)
    remove_aside(checkpoint)
    remove_aside(checkpoint)  # already gone: nothing to do
    wait_for_removals()
    assert sorted(path.name for path in iteration.iterdir()) == ["train.log"]


def test_what_a_killed_process_set_aside_is_deleted_and_nothing_else(tmp_path):
    models = tmp_path / "models"
    left = _checkpoint(models / "iter-2" / f"{ASIDE_PREFIX}checkpoint-0123abcd")
    (models / "iter-2" / f"{ASIDE_PREFIX}optimizer.pt-4567").write_bytes(b"moments")
    kept = _checkpoint(models / "iter-3" / "checkpoint")
    removed = remove_left_aside(models)
    assert sorted(removed) == sorted([left.name, f"{ASIDE_PREFIX}optimizer.pt-4567"])
    assert not list(models.glob(f"*/{ASIDE_PREFIX}*"))
    assert (kept / "model.safetensors").is_file()
    assert remove_left_aside(models) == []
